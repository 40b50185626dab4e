"""What workers do to tasks: claim, heartbeat, report, log, end, retry, recover; and
the record of who leads (`Leader`).

`WorkerSide` is the part of `TaskService` the runtime uses; it lives here so that each
module stays one concern. Every write is conditional on the worker and attempt that hold
the task, so a stale attempt (its lease ran out, the task recovered elsewhere) changes
nothing.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from taskgate.errors import InvalidRequest
from taskgate.metrics import Metrics
from taskgate.model import LOG_LEVELS, TERMINAL, WORKER_LOST, ErrorInfo, State, Task
from taskgate.reservations import candidates, choose
from taskgate.storage.connector import (
    CHANNEL_CHANGED,
    CHANNEL_DUE,
    RESERVED,
    Connector,
    Row,
    Step,
)
from taskgate.storage.rows import dumps, task_from_row


@dataclass(frozen=True, slots=True)
class Progress:
    """What a running handler reported since the last flush (None: unchanged)."""

    progress: float | None = None
    progress_detail: dict[str, Any] | None = None
    message: str | None = None
    detailed_state: str | None = None
    created_resources: dict[str, list[str]] | None = None
    warnings: int = 0


@dataclass(frozen=True, slots=True)
class NewLogLine:
    text: str
    level: str = "info"
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class Leader:
    """Who holds a role (the scheduler): its row in ``leaders``
    (`taskgate.storage.leadership`).

    Written when the holder takes over, renewed (at least every few seconds) while it
    holds the role, deleted when it lets go. A holder that died leaves its row until the
    next one takes over (PostgreSQL: at once; SQLite: once the row's lease ran out)."""

    name: str
    holder: str
    """The worker id."""
    node: str
    pid: int
    """The holder's process id on its node."""
    since: float
    renewed_at: float


class WorkerSide:
    """The worker-facing half of `TaskService` (which supplies these attributes)."""

    connector: Connector
    clock: Callable[[], float]
    node: str
    metrics: Metrics

    async def _changed(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            await self.connector.notify(CHANNEL_CHANGED, ",".join(task_ids))

    # -- worker side ---------------------------------------------------------------

    async def claim(self, worker: str, limit: int, lease: float) -> builtins.list[Task]:
        """Take up to ``limit`` due tasks for ``worker``, leased for ``lease`` seconds."""
        now = self.clock()
        rows = await self.connector.execute(
            "claim_tasks",
            {"worker": worker, "now": now, "lease_expires_at": now + lease, "limit": limit},
        )
        waited = self.metrics.waited
        for r in rows:
            if r["attempt"] == 1:  # a retry's wait would include its earlier attempts
                waited(r["type"], now - _due(r))
        tasks = sorted((task_from_row(r) for r in rows), key=lambda t: (-t.priority, t.id))
        await self._changed([t.id for t in tasks])
        return tasks

    async def claim_reserved(self, worker: str, limit: int, lease: float) -> builtins.list[Task]:
        """Take up to ``limit`` due tasks that reserve resources or count against limits,
        none of which conflicts with a task that runs or waits ahead of it in line
        (`taskgate.reservations`)."""
        now = self.clock()
        waiting, holding = await asyncio.gather(
            self.connector.fetch_all("reserved_candidates", {"now": now}),
            self.connector.fetch_all("reservation_holders", {}),
        )
        holders = {(str(r["mode"]), str(r["resource"])): int(r["holders"]) for r in holding}
        lined_up = candidates(waiting)
        chosen = choose(lined_up, holders, limit)
        if not chosen:
            return []
        params = {
            "ids": dumps(chosen),
            "worker": worker,
            "now": now,
            "lease_expires_at": now + lease,
        }
        _, rows = await self.connector.execute_batch(
            [Step("lock_reserved_claims"), Step("claim_reserved_tasks", params)]
        )
        due = {c.id: c.due_at for c in lined_up}
        for r in rows:
            self.metrics.lock_waited(r["type"], now - due.get(str(r["id"]), now))
            if r["attempt"] == 1:
                self.metrics.waited(r["type"], now - _due(r))
        tasks = sorted((task_from_row(r) for r in rows), key=lambda t: (-t.priority, t.id))
        await self._changed([t.id for t in tasks])
        return tasks

    async def next_due(self) -> tuple[float | None, float | None]:
        """When the next waiting task that reserves nothing falls due, and the next
        reserved one not due yet (None: none); a reserved task due already, which waits
        for another to end, counts for nothing (that end notifies)."""
        row = await self.connector.fetch_one("next_due_at", {"now": self.clock()})
        if row is None:
            return None, None
        plain, reserved = row["due_at"], row["reserved_due_at"]
        return (
            None if plain is None else float(plain),
            None if reserved is None else float(reserved),
        )

    async def next_due_at(self) -> float | None:
        """When the next waiting task falls due (as `next_due` tells)."""
        known = [t for t in await self.next_due() if t is not None]
        return min(known) if known else None

    async def register_worker(self, worker: str, *, pid: int, concurrency: int) -> None:
        await self.connector.execute(
            "upsert_worker",
            {
                "id": worker,
                "node": self.node,
                "pid": pid,
                "concurrency": concurrency,
                "now": self.clock(),
            },
        )

    async def unregister_worker(self, worker: str) -> None:
        await self.connector.execute("delete_worker", {"id": worker})

    async def heartbeat(
        self,
        worker: str,
        *,
        lease: float,
        pid: int,
        concurrency: int,
        task_ids: Collection[str],
    ) -> None:
        """Renew ``worker``'s record, and the leases of the tasks it holds: those of
        ``task_ids`` still under its name. A task claimed for it that it does not know
        of (the claim's answer was lost) runs out of lease and is recovered."""
        now = self.clock()
        await self.connector.execute_batch(
            [
                Step(
                    "renew_leases",
                    {
                        "worker": worker,
                        "lease_expires_at": now + lease,
                        "ids": dumps(sorted(task_ids)),
                    },
                ),
                Step(
                    "upsert_worker",
                    {
                        "id": worker,
                        "node": self.node,
                        "pid": pid,
                        "concurrency": concurrency,
                        "now": now,
                    },
                ),
            ]
        )

    async def list_workers(self) -> builtins.list[Row]:
        return await self.connector.fetch_all("list_workers", {})

    # -- who leads ------------------------------------------------------------------

    async def leaders(self) -> builtins.list[Leader]:
        """Who holds each role, by name."""
        rows = await self.connector.fetch_all("list_leaders", {})
        return [
            Leader(
                name=r["name"],
                holder=r["holder"],
                node=r["node"],
                pid=int(r["pid"]),
                since=float(r["since"]),
                renewed_at=float(r["renewed_at"]),
            )
            for r in rows
        ]

    async def report(self, task: Task, progress: Progress) -> None:
        """Store what a running handler reported (ignored once the attempt has ended)."""
        await self.connector.execute(
            "update_progress",
            {
                "id": task.id,
                "worker": task.worker,
                "attempt": task.attempt,
                "progress": progress.progress,
                "progress_detail": _dumps_or_none(progress.progress_detail),
                "message": progress.message,
                "detailed_state": progress.detailed_state,
                "created_resources": _dumps_or_none(progress.created_resources),
                "warnings": progress.warnings,
                "now": self.clock(),
            },
        )
        await self._changed([task.id])

    async def append_log(self, task_id: str, lines: Sequence[NewLogLine]) -> None:
        """Append lines to a task's log, numbered after the lines already there."""
        if not lines:
            return
        now = self.clock()
        count = len(lines)
        for line in lines:
            if line.level not in LOG_LEVELS:
                raise InvalidRequest(f"log level must be one of {', '.join(LOG_LEVELS)}")
        await self.connector.execute_batch(
            [
                Step("reserve_log_lines", {"task_id": task_id, "count": count, "now": now}),
                Step(
                    "append_log_line",
                    many=[
                        {
                            "task_id": task_id,
                            "count": count,
                            "i": i,
                            "ts": line.ts if line.ts is not None else now,
                            "level": line.level,
                            "text": line.text,
                        }
                        for i, line in enumerate(lines, start=1)
                    ],
                ),
            ]
        )
        await self._changed([task_id])

    async def finish(
        self,
        task: Task,
        state: State,
        *,
        result: Any = None,
        error: ErrorInfo | None = None,
        message: str | None = None,
    ) -> Task | None:
        """End the attempt ``task`` holds in ``state``; None if it no longer holds it."""
        if state not in TERMINAL:
            raise ValueError(f"{state} is not a terminal state")
        now = self.clock()
        rows = await self.connector.execute(
            "finish_task",
            {
                "id": task.id,
                "worker": task.worker,
                "attempt": task.attempt,
                "state": state.value,
                "result": None if result is None else dumps(result),
                "error": None if error is None else dumps(error.to_dict()),
                "message": message,
                "now": now,
            },
        )
        if not rows:
            return None
        self.metrics.task_finished(task.type, state.value)
        if task.started_at is not None:
            self.metrics.attempt_ran(task.type, now - task.started_at.timestamp())
        await self._changed([task.id])
        if task.reservation is not None:  # the tasks waiting for what it held may go
            await self.connector.notify(CHANNEL_DUE, RESERVED)
        return task_from_row(rows[0])

    async def retry(self, task: Task, *, delay: float, error: ErrorInfo) -> Task | None:
        """Give the task back for another attempt after ``delay`` seconds."""
        now = self.clock()
        rows = await self.connector.execute(
            "retry_task",
            {
                "id": task.id,
                "worker": task.worker,
                "attempt": task.attempt,
                "due_at": now + delay,
                "error": dumps(error.to_dict()),
                "now": now,
            },
        )
        if not rows:
            return None
        self.metrics.retried(task.type)
        if task.started_at is not None:
            self.metrics.attempt_ran(task.type, now - task.started_at.timestamp())
        await self._changed([task.id])
        await self.connector.notify(CHANNEL_DUE, "" if task.reservation is None else RESERVED)
        return task_from_row(rows[0])

    async def recover_lost(self, *, worker: str | None = None) -> builtins.list[Task]:
        """End or re-queue the tasks of workers whose lease ran out.

        With ``worker``, that worker is known to be gone: its leases end now, and the
        roles it held (the scheduler) are free at once.
        """
        now = self.clock()
        if worker is not None:
            await self.connector.execute("expire_worker_leases", {"worker": worker, "now": now})
            await self.connector.execute("delete_worker", {"id": worker})
            await self.connector.execute("forget_leader", {"holder": worker})
        rows = await self.connector.execute(
            "recover_lost_tasks",
            {
                "now": now + (1e-6 if worker is not None else 0.0),
                "error": dumps(
                    ErrorInfo(WORKER_LOST, "worker lost: it stopped renewing its lease").to_dict()
                ),
            },
        )
        tasks = [task_from_row(r) for r in rows]
        for t in tasks:
            if t.state in TERMINAL:
                self.metrics.task_finished(t.type, t.state.value)
            if t.state is State.QUEUED:
                line = f"worker lost during attempt {t.attempt}; queued again"
            elif t.state is State.CANCELED:
                line = "worker lost while canceling; task canceled"
            else:
                line = "worker lost: it stopped renewing its lease"
            await self.append_log(t.id, [NewLogLine(line, "error")])
        if any(t.reservation is not None for t in tasks):
            await self.connector.notify(CHANNEL_DUE, RESERVED)
        elif any(t.state is State.QUEUED for t in tasks):
            await self.connector.notify(CHANNEL_DUE)
        await self._changed([t.id for t in tasks])
        return tasks

    async def promote_starved(self, aging: float, *, limit: int = 500) -> builtins.list[str]:
        """Raise the tasks due for more than ``aging`` seconds behind higher priorities
        to the highest priority waiting, so that they start before anything due after
        them; their ids. Each says so in its log."""
        row = await self.connector.fetch_one("top_waiting_priority", {})
        if row is None or row["priority"] is None:
            return []
        now = self.clock()
        top = int(row["priority"])
        rows = await self.connector.execute(
            "promote_starved",
            {"top": top, "starved_before": now - aging, "now": now, "limit": limit},
        )
        ids = [str(r["id"]) for r in rows]
        for task_id in ids:
            line = (
                f"waited more than {aging:g} s behind higher priorities: priority raised to {top}"
            )
            await self.append_log(task_id, [NewLogLine(line, "warning")])
        if ids:
            await self.connector.notify(CHANNEL_DUE)
        return ids


def _due(row: Row) -> float:
    """When a task claimed for its first attempt fell due: its submit, or its time."""
    created = float(row["created_at"])
    scheduled = row["scheduled_at"]
    return created if scheduled is None or scheduled < created else float(scheduled)


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)
