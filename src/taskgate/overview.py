"""What an operator's view of the store asks for (the dashboard): the workers with the
tasks each runs, an overview of the tasks (states, queue, endings over time), and a new
run of a task that ended badly.

`OverviewSide` is mixed into `TaskService` (as `GroupSide` and `WorkerSide` are), which
supplies its attributes. Every count here is one grouped query on an index: the state
counts read the hot table only (history holds ended tasks alone), the endings over time
read one range of ``tasks_finished`` and ``task_history_finished`` (migration 8).
"""

from __future__ import annotations

import asyncio
import builtins
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taskgate.errors import Conflict, InvalidRequest
from taskgate.model import TERMINAL, State, Task, utc
from taskgate.storage.connector import Connector

if TYPE_CHECKING:
    from taskgate.service import Submission

MAX_WINDOW = 7 * 86400
"""Longest window of `OverviewSide.stats`, in seconds."""
MAX_BUCKETS = 200
"""Most buckets of `OverviewSide.stats`."""
ENDINGS: tuple[State, ...] = tuple(s for s in State if s in TERMINAL)
"""The ended states, in declaration order: succeeded, failed, canceled, timed_out."""
RETRYABLE: frozenset[State] = TERMINAL - {State.SUCCEEDED}
"""What `OverviewSide.rerun` takes: any ending but success."""
RETRY_OF = "retry_of"
"""The label a rerun carries: the id of the task it runs again."""


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker as the store knows it, with the tasks it runs now."""

    id: str
    node: str
    pid: int
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age: float
    """Seconds since its last heartbeat."""
    running: int
    """Its tasks running or canceling (a canceling task's handler has not stopped)."""
    alive: bool
    """Its last heartbeat is at most a lease old: the reaper has not taken (and would
    not yet take) its tasks."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """The task waiting longest for a worker."""

    id: str
    type: str
    created_at: datetime
    due_at: datetime
    wait_seconds: float
    """Seconds since it became due."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """How many tasks ended in ``[start, start + bucket_seconds)``, per ending."""

    start: datetime
    counts: Mapping[State, int]


@dataclass(frozen=True, slots=True)
class Stats:
    """The overview of one tenant's tasks (or every tenant's)."""

    states: Mapping[State, int]
    """Tasks of the hot table per state, every state (0 for none)."""
    queue_depth: int
    """Tasks due and waiting for a worker: queued, and scheduled whose time has come."""
    oldest_waiting: Waiting | None
    window_start: datetime
    window_end: datetime
    bucket_seconds: int
    series: list[Bucket]
    """Tasks that ended in each bucket, in both tables, oldest bucket first."""


def window(now: float, seconds: int, buckets: int) -> tuple[int, int, int]:
    """(start, end, bucket size) of a window of at least ``seconds`` in at most
    ``buckets`` whole-second buckets, aligned to multiples of the size since the epoch so
    that buckets stay put between two looks; it ends with the bucket holding ``now``."""
    if not 1 <= seconds <= MAX_WINDOW:
        raise InvalidRequest(f"the window must be 1 to {MAX_WINDOW} seconds")
    if not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidRequest(f"buckets must be 1 to {MAX_BUCKETS}")
    size = max(1, math.ceil(seconds / buckets))
    count = math.ceil(seconds / size)
    end = (math.floor(now / size) + 1) * size
    return end - count * size, end, size


class OverviewSide:
    """The overview half of `TaskService` (which supplies these attributes)."""

    connector: Connector
    clock: Callable[[], float]

    if TYPE_CHECKING:

        async def get(self, task_id: str, *, tenant: str | None = None) -> Task: ...

        async def submit_one(
            self, type: str, params: Mapping[str, Any], options: Submission = ...
        ) -> tuple[Task, bool]: ...

    async def worker_statuses(self, *, lease: float) -> builtins.list[WorkerStatus]:
        """Every worker the store knows, by node then id, with how many tasks it runs
        (one grouped query) and whether it is alive: heartbeat at most ``lease`` seconds
        ago, the reaper's own rule (a heartbeat renews leases to ``lease`` from then)."""
        workers, running = await asyncio.gather(
            self.connector.fetch_all("list_workers", {}),
            self.connector.fetch_all("running_per_worker", {}),
        )
        counts = {str(r["worker"]): int(r["running"]) for r in running}
        now = self.clock()
        out = []
        for r in workers:
            age = max(0.0, now - float(r["heartbeat_at"]))
            out.append(
                WorkerStatus(
                    id=str(r["id"]),
                    node=str(r["node"]),
                    pid=int(r["pid"]),
                    concurrency=int(r["concurrency"]),
                    started_at=_utc(r["started_at"]),
                    heartbeat_at=_utc(r["heartbeat_at"]),
                    heartbeat_age=age,
                    running=counts.get(str(r["id"]), 0),
                    alive=age <= lease,
                )
            )
        return sorted(out, key=lambda w: (w.node, w.id))

    async def stats(
        self, *, tenant: str | None = None, seconds: int = 3600, buckets: int = 60
    ) -> Stats:
        """The overview of ``tenant``'s tasks (None: every tenant): states, queue depth,
        the task waiting longest, and the tasks that ended per bucket over the last
        ``seconds`` (see `window`)."""
        now = self.clock()
        start, end, size = window(now, seconds, buckets)
        fragments: tuple[str, ...] = () if tenant is None else ("tenant",)
        scope: dict[str, Any] = {} if tenant is None else {"tenant": tenant}
        span = {"window_start": start, "window_end": end, "bucket_seconds": size, **scope}
        waiting = {"now": now, **scope}
        fetch = self.connector.fetch_all
        states, depth, oldest, hot, history = await asyncio.gather(
            fetch("state_counts", scope, fragments),
            fetch("queue_depth", waiting, fragments),
            fetch("oldest_waiting", waiting, fragments),
            fetch("ended_counts", span, fragments),
            fetch("archived_ended_counts", span, fragments),
        )
        count = (end - start) // size
        series: list[dict[State, int]] = [dict.fromkeys(ENDINGS, 0) for _ in range(count)]
        for r in (*hot, *history):
            bucket = int(r["bucket"])
            if 0 <= bucket < count:
                series[bucket][State(r["state"])] += int(r["count"])
        by_state = dict.fromkeys(State, 0)
        for r in states:
            by_state[State(r["state"])] = int(r["count"])
        first = None
        if oldest:
            r = oldest[0]
            due = float(r["due_at"]) if r["due_at"] is not None else float(r["created_at"])
            first = Waiting(
                id=str(r["id"]),
                type=str(r["type"]),
                created_at=_utc(r["created_at"]),
                due_at=_utc(due),
                wait_seconds=max(0.0, now - due),
            )
        return Stats(
            states=by_state,
            queue_depth=int(depth[0]["count"]) if depth else 0,
            oldest_waiting=first,
            window_start=_utc(start),
            window_end=_utc(end),
            bucket_seconds=size,
            series=[Bucket(_utc(start + i * size), c) for i, c in enumerate(series)],
        )

    async def rerun(self, task_id: str, options: Submission, *, tenant: str | None = None) -> Task:
        """Submit a new task that runs ``task_id`` again (a task of ``tenant``, when
        given): its type, parameters, object id, priority and labels, plus the label
        ``retry_of`` naming it, in its tenant (an admin retrying another tenant's task
        makes a task of that tenant); the rest (user, request id) from ``options``, as
        for any submit. Only a task that ended other than succeeded is run again (in the
        hot table or in history); any other is a `Conflict`."""
        task = await self.get(task_id, tenant=tenant)
        if task.state not in RETRYABLE:
            raise Conflict(
                f"task {task.id} is {task.state}; only a task that ended"
                f" {', '.join(s.value for s in ENDINGS if s in RETRYABLE)} can be retried"
            )
        again = replace(
            options,
            tenant=task.tenant,
            object_id=task.object_id,
            priority=task.priority,
            labels={**task.labels, RETRY_OF: task.id},
        )
        created, _ = await self.submit_one(task.type, task.params, again)
        return created


def _utc(ts: Any) -> datetime:
    moment = utc(float(ts))
    assert moment is not None
    return moment
