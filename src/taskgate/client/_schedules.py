"""The schedule calls (``/v1/schedules``) both clients send, built and read here once, as
``_base.py`` does for tasks: a schedule named by id, name or record; the JSON of its
fields; the list's query; and `SchedulePager`, which follows ``next_after``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypedDict
from urllib.parse import quote

import httpx

from taskgate.client._base import Call, dumps, json_of, repeated_param, seconds_value
from taskgate.client._models import Schedule, SchedulePage

ScheduleRef = str | Schedule
"""A schedule's id or name, or a `Schedule` (its id is used)."""


class RunOptions(TypedDict, total=False):
    """The task options a schedule gives each of its runs."""

    object_id: str | int
    priority: int
    labels: Mapping[str, str]
    timeout: float | timedelta
    """Seconds each run's handler may take."""
    max_attempts: int


class ScheduleChanges(TypedDict, total=False):
    """What `update_schedule` may change; a field not given stays as it is. ``None``
    removes a threshold; ``options`` and ``params`` replace the old ones whole."""

    params: Mapping[str, Any]
    recurrence: str
    timezone: str
    enabled: bool
    overlap: str
    failure_threshold: int | None
    schedule_threshold: float | timedelta | None
    options: RunOptions | Mapping[str, Any] | None


SCHEDULE_CHANGES = frozenset(ScheduleChanges.__optional_keys__)


def schedule_key_of(schedule: ScheduleRef) -> str:
    key = schedule.id if isinstance(schedule, Schedule) else schedule
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"a schedule id or name must be a non-empty string, not {key!r}")
    return key.strip()


def schedule_path(schedule: ScheduleRef, suffix: str = "") -> str:
    return f"/v1/schedules/{quote(schedule_key_of(schedule), safe='')}{suffix}"


def _run_options(options: RunOptions | Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of task options, not {options!r}")
    out = dict(options)
    if isinstance(out.get("timeout"), timedelta):
        out["timeout"] = seconds_value("options['timeout']", out["timeout"])
    if isinstance(out.get("labels"), Mapping):
        out["labels"] = dict(out["labels"])
    return out


def _schedule_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON of schedule fields (creating or changing): numbers and mappings made
    plain; what the server accepts is the server's to say (422 naming each field)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "params":
            if not isinstance(value, Mapping):
                raise TypeError(f"params must be a mapping of parameter names, not {value!r}")
            value = dict(value)
        elif name == "options" and value is not None:
            value = _run_options(value)
        elif name == "schedule_threshold" and value is not None:
            value = seconds_value("schedule_threshold", value)
        body[name] = value
    return body


def create_schedule_call(
    name: str,
    type: str,
    recurrence: str,
    params: Mapping[str, Any] | None,
    *,
    timezone: str | None,
    enabled: bool | None,
    overlap: str | None,
    failure_threshold: int | None,
    schedule_threshold: float | timedelta | None,
    options: RunOptions | Mapping[str, Any] | None,
) -> Call:
    """``POST /v1/schedules``; the fields given as None are not sent (the server's
    defaults apply: UTC, enabled, skip, no thresholds, no options)."""
    for what, value in (("name", name), ("operation type", type), ("recurrence", recurrence)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the schedule's {what} must be a non-empty string, not {value!r}")
    optional = {
        "params": params,
        "timezone": timezone,
        "enabled": enabled,
        "overlap": overlap,
        "failure_threshold": failure_threshold,
        "schedule_threshold": schedule_threshold,
        "options": options,
    }
    fields: dict[str, Any] = {"name": name, "type": type, "recurrence": recurrence}
    fields.update((k, v) for k, v in optional.items() if v is not None)
    return Call("POST", "/v1/schedules", (), dumps(_schedule_fields(fields)))


def update_schedule_call(schedule: ScheduleRef, changes: Mapping[str, Any]) -> Call:
    """``PATCH /v1/schedules/{ref}``: a JSON merge of ``changes`` (None is sent as null)."""
    for name in changes:
        if name not in SCHEDULE_CHANGES:
            known = ", ".join(sorted(SCHEDULE_CHANGES))
            raise TypeError(f"a schedule cannot change {name!r}; it can change {known}")
    return Call("PATCH", schedule_path(schedule), (), dumps(_schedule_fields(changes)))


def schedule_filters(
    *, type: str | Iterable[str] | None = None, enabled: bool | None = None
) -> list[tuple[str, str]]:
    """The query of ``GET /v1/schedules`` for these filters (None: not filtered)."""
    query = repeated_param("type", type)
    if enabled is not None:
        query.append(("enabled", "true" if enabled else "false"))
    return query


def schedule_list_call(
    filters: Sequence[tuple[str, str]], after: str | None, page_size: int
) -> Call:
    query = [*filters, ("limit", str(page_size))]
    if after is not None:
        query.append(("after", after))
    return Call("GET", "/v1/schedules", query)


def schedule_of(response: httpx.Response) -> Schedule:
    return Schedule.from_json(json_of(response))


class SchedulePager:
    """Follows ``next_after`` through the schedule list."""

    def __init__(self, filters: Sequence[tuple[str, str]], page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.filters = filters
        self.page_size = page_size
        self.after: str | None = None
        self.done = False

    def next_call(self) -> Call | None:
        return None if self.done else schedule_list_call(self.filters, self.after, self.page_size)

    def feed(self, response: httpx.Response) -> list[Schedule]:
        page = SchedulePage.from_json(json_of(response))
        if page.next_after is None or page.next_after == self.after:
            self.done = True
        self.after = page.next_after
        return page.items
