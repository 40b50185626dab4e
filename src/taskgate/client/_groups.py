"""The group calls (``/v1/groups``) both clients send, built and read here once, as
``_base.py`` does for tasks: a group submitted as one (`GroupTask` bodies), its path,
its summary, and `GroupPoll`, which reads the summary until every task has ended."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict
from urllib.parse import quote

import httpx

from taskgate.client._base import (
    Call,
    GroupRef,
    dumps,
    group_id_of,
    json_of,
    seconds_value,
    time_value,
    values_of,
)
from taskgate.client._models import Group, SubmittedGroup
from taskgate.client._retry import Retry

GROUP_POLL = 2.0
"""Most seconds between two reads of a group's summary while `wait_group` waits."""
FIRST_POLL = 0.1
"""Seconds before the second read; the gap doubles from there up to ``poll``."""


class GroupTask(TypedDict, total=False):
    """One task of `submit_group`: what ``POST /v1/tasks`` takes, without ``group_id``
    (the group makes its own) nor an idempotency key."""

    type: Required[str]
    """The operation."""
    params: Mapping[str, Any]
    object_id: str | int
    priority: int
    labels: Mapping[str, str]
    delay: float | timedelta
    """Seconds from now before it may start."""
    scheduled_at: datetime | str
    timeout: float | timedelta
    """Seconds its handler may run."""
    max_attempts: int
    exclusive_resources: Iterable[str]
    shared_resources: Iterable[str]


def group_path(group: GroupRef, suffix: str = "") -> str:
    return f"/v1/groups/{quote(group_id_of(group), safe='')}{suffix}"


def _task_body(item: GroupTask | Mapping[str, Any], n: int) -> dict[str, Any]:
    """One item as JSON: durations as seconds, times as RFC 3339, mappings and resource
    lists made plain. What the server accepts is the server's to say (a 422 naming
    ``tasks.{n}.field``)."""
    if not isinstance(item, Mapping):
        raise TypeError(f"tasks[{n}] must be a mapping like a POST /v1/tasks body, not {item!r}")
    fields: Mapping[str, Any] = item
    type = fields.get("type")
    if not isinstance(type, str) or not type:
        raise ValueError(f"tasks[{n}] needs a 'type': the name of an operation")
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("delay", "timeout") and value is not None:
            value = seconds_value(f"tasks[{n}].{name}", value)
        elif name == "scheduled_at" and value is not None:
            value = time_value(f"tasks[{n}].scheduled_at", value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif name in ("exclusive_resources", "shared_resources") and value is not None:
            value = values_of(value)
        body[name] = value
    return body


def submit_group_call(tasks: Iterable[GroupTask | Mapping[str, Any]]) -> Call:
    """``POST /v1/groups``. Not repeatable (the API takes no idempotency key for a
    group), so it is retried only when it cannot have reached the server."""
    if isinstance(tasks, Mapping | str):
        raise TypeError("tasks must be a list of task bodies (mappings), not one")
    items = [_task_body(item, n) for n, item in enumerate(tasks)]
    if not items:
        raise ValueError("a group needs at least one task")
    return Call("POST", "/v1/groups", (), dumps({"tasks": items}))


def group_of(response: httpx.Response) -> Group:
    return Group.from_json(json_of(response))


def submitted_group_of(response: httpx.Response) -> SubmittedGroup:
    return SubmittedGroup.from_json(json_of(response))


class GroupPoll:
    """Reads a group's summary (``GET /v1/groups/{id}``) until every task of it has ended
    or a deadline passes.

    The API has no long poll for a group, so the reads are spaced out: `FIRST_POLL`
    apart at first, the gap doubling (with jitter, as `Retry` backs off) up to ``poll``
    seconds, and never past the deadline. Each read is an ordinary request: the clients
    retry it after a connection error or a 503 (honouring ``Retry-After``) as any other.
    """

    def __init__(self, group: GroupRef, timeout: float | None, poll: float) -> None:
        if timeout is not None and (not math.isfinite(timeout) or timeout < 0):
            raise ValueError("timeout must be a number of seconds >= 0, or None")
        if not (math.isfinite(poll) and poll > 0):
            raise ValueError("poll must be a positive number of seconds")
        self.path = group_path(group)
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.group: Group | None = None
        """The summary as last read."""
        self.pause = 0.0
        """Seconds to wait before the next read."""
        self._spacing = Retry(backoff=min(FIRST_POLL, poll), max_backoff=poll)
        self._reads = 0

    def next_call(self) -> Call | None:
        """The next read, or None once the deadline has passed (after at least one)."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return None if late and self.group is not None else Call("GET", self.path)

    def feed(self, response: httpx.Response) -> Group | None:
        """The summary when it differs from the last one read (None: unchanged)."""
        group = group_of(response)
        changed = group != self.group
        self.group = group
        self._reads += 1
        pause = self._spacing.backoff_delay(self._reads)
        if self.deadline is not None:
            pause = min(pause, max(0.0, self.deadline - time.monotonic()))
        self.pause = pause
        return group if changed else None
