"""`TaskService`: every task operation, written once, over any `Connector`.

The HTTP API, every dialect, the worker runtime and the Python API all go through here.
Domain rules live here and in `taskgate.model`; the connector runs named statements.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from taskgate.app import App, Operation
from taskgate.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidFilter,
    InvalidRequest,
    TaskNotFound,
)
from taskgate.ids import (
    UpidFactory,
    decode_cursor,
    encode_cursor,
    new_task_id,
    parse_task_id,
    uuid7_floor,
)
from taskgate.model import (
    LOG_LEVELS,
    TERMINAL,
    WORKER_LOST,
    ErrorInfo,
    LogLine,
    LogPage,
    Page,
    State,
    Task,
    TaskFilter,
    epoch,
)
from taskgate.storage.connector import CHANNEL_CHANGED, CHANNEL_DUE, Connector, Row, Step
from taskgate.storage.rows import as_datetime, dumps, task_from_row

MAX_PAGE = 500
MAX_LOG_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Submission:
    """Everything about a new task besides its operation and parameters."""

    object_id: str | None = None
    tenant: str = "default"
    user: str = "anonymous"
    priority: int | None = None
    labels: Mapping[str, str] | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    scheduled_at: datetime | None = None
    delay: float | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    group_id: str | None = None
    parent_id: str | None = None
    schedule_id: str | None = None


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


class TaskService:
    """Submit, read, list, cancel, wait on and end tasks."""

    def __init__(
        self,
        connector: Connector,
        app: App | None = None,
        *,
        node: str | None = None,
        clock: Any = time.time,
    ) -> None:
        self.connector = connector
        self.app = app or App()
        self.upids = UpidFactory(node)
        self.node = self.upids.node
        self.clock = clock
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._listening = False

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        await self.connector.open()
        if not self._listening:
            self.connector.add_listener(self._on_notification)
            self._listening = True

    async def close(self) -> None:
        if self._listening:
            self.connector.remove_listener(self._on_notification)
            self._listening = False
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()
        await self.connector.close()

    async def __aenter__(self) -> TaskService:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- submit ---------------------------------------------------------------------

    def prepare(
        self, type: str, params: Mapping[str, Any], options: Submission = Submission()
    ) -> dict[str, Any]:
        """Validate a submission and build its row (no I/O). Raises 4xx errors."""
        op = self.app.get(type)
        clean = op.validate(params)
        now = self.clock()
        due = now
        scheduled_at: float | None = None
        if options.scheduled_at is not None and options.delay is not None:
            raise InvalidRequest("give scheduled_at or delay, not both")
        if options.scheduled_at is not None:
            if options.scheduled_at.tzinfo is None:
                raise InvalidRequest("scheduled_at needs a time zone (e.g. a trailing Z)")
            scheduled_at = options.scheduled_at.timestamp()
        elif options.delay is not None:
            if options.delay < 0:
                raise InvalidRequest("delay must not be negative")
            scheduled_at = now + options.delay
        if scheduled_at is not None and scheduled_at > now:
            due = scheduled_at
            state = State.SCHEDULED
        else:
            state = State.QUEUED
        timeout = options.timeout if options.timeout is not None else op.timeout
        if timeout is not None and timeout <= 0:
            raise InvalidRequest("timeout must be positive")
        max_attempts = (  # 0 is refused below, not taken for "not given"
            options.max_attempts if options.max_attempts is not None else op.retry.max_attempts
        )
        if max_attempts < 1:
            raise InvalidRequest("max_attempts must be at least 1")
        labels = dict(options.labels or {})
        for key, value in labels.items():
            _check_label(key, value)
        object_id = options.object_id if options.object_id is not None else op.object_id_of(clean)
        task_id = new_task_id()
        fingerprint = None
        if options.idempotency_key is not None:
            fingerprint = _fingerprint(type, clean, object_id)
        return {
            "id": task_id,
            "upid": self.upids.new(type, object_id, options.user, now),
            "type": type,
            "object_id": object_id,
            "tenant": options.tenant,
            "user_name": options.user,
            "node": self.node,
            "state": state.value,
            "params": dumps(clean),
            "max_attempts": max_attempts,
            "timeout": timeout,
            "retry_on_worker_loss": op.retry_on_worker_loss,
            "priority": options.priority if options.priority is not None else op.priority,
            "idempotency_key": options.idempotency_key,
            "request_fingerprint": fingerprint,
            "request_id": options.request_id,
            "group_id": options.group_id,
            "parent_id": options.parent_id,
            "schedule_id": options.schedule_id,
            "labels": dumps(labels) if labels else None,
            "created_at": now,
            "scheduled_at": scheduled_at,
            "due_at": due,
        }

    async def submit(
        self, type: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Task:
        """Validate and store a new task; it is on disk when this returns."""
        task, _ = await self.submit_one(type, params or {}, Submission(**options))
        return task

    async def submit_one(
        self, type: str, params: Mapping[str, Any], options: Submission = Submission()
    ) -> tuple[Task, bool]:
        """Store a task; return it and whether it is new (False: idempotent replay)."""
        row = self.prepare(type, params, options)
        rows = await self.connector.execute("insert_task", row)
        if rows:
            task = task_from_row(rows[0])
            await self.connector.notify(CHANNEL_DUE)
            return task, True
        return await self._replay(row), False

    async def submit_many(
        self, requests: Iterable[tuple[str, Mapping[str, Any]]], options: Submission = Submission()
    ) -> builtins.list[Task]:
        """Store many tasks in one transaction (no idempotency keys)."""
        if options.idempotency_key is not None:
            raise InvalidRequest("submit_many takes no idempotency key")
        rows = [self.prepare(type, params, options) for type, params in requests]
        if not rows:
            return []
        results = await self.connector.execute_batch([Step("insert_task", many=rows)])
        await self.connector.notify(CHANNEL_DUE)
        return [task_from_row(r) for r in results[0]]

    async def _replay(self, row: Mapping[str, Any]) -> Task:
        found = await self.connector.fetch_one(
            "get_task_by_idempotency_key",
            {"tenant": row["tenant"], "idempotency_key": row["idempotency_key"]},
        )
        if found is None:  # the conflict was on something else (a UPID, in theory)
            raise Conflict("the task could not be stored; submit again")
        if found["request_fingerprint"] != row["request_fingerprint"]:
            raise IdempotencyConflict(
                f"Idempotency-Key {row['idempotency_key']!r} was used for another request"
            )
        return task_from_row(found)

    # -- read -----------------------------------------------------------------------

    async def get(self, task_id: str, *, tenant: str | None = None) -> Task:
        """One task; `TaskNotFound` if it does not exist or belongs to another tenant."""
        row = await self.connector.fetch_one("get_task", {"id": parse_task_id(task_id)})
        return self._visible(row, task_id, tenant)

    async def version(self, task_id: str, *, tenant: str | None = None) -> int:
        """The task's version, raised by every change: a cheap way to tell whether a copy
        read earlier is still current. `TaskNotFound` as for `get`."""
        row = await self.connector.fetch_one("get_task_version", {"id": parse_task_id(task_id)})
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise TaskNotFound(f"no task {task_id}")
        return int(row["version"])

    async def get_by_upid(self, upid: str, *, tenant: str | None = None) -> Task:
        row = await self.connector.fetch_one("get_task_by_upid", {"upid": upid})
        return self._visible(row, upid, tenant)

    def _visible(self, row: Row | None, ref: str, tenant: str | None) -> Task:
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise TaskNotFound(f"no task {ref}")
        return task_from_row(row)

    async def list(
        self, filter: TaskFilter | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> Page:
        """A page of tasks, newest first. ``cursor`` comes from the previous page."""
        filter = filter or TaskFilter()
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidFilter(f"limit must be between 1 and {MAX_PAGE}")
        params: dict[str, Any] = {"limit": limit + 1}
        fragments: list[str] = []
        if cursor is not None:
            params["before_id"] = decode_cursor(cursor)
            fragments.append("before")
        if filter.created_since is not None:
            params["since_id"] = uuid7_floor(filter.created_since)
            fragments.append("since")
        if filter.created_until is not None:
            params["until_id"] = uuid7_floor(filter.created_until)
            fragments.append("until")
        if filter.tenant is not None:
            params["tenant"] = filter.tenant
            fragments.append("tenant")
        if filter.states:
            params["states"] = dumps([s.value for s in filter.states])
            fragments.append("states")
        if filter.types:
            params["types"] = dumps(list(filter.types))
            fragments.append("types")
        if filter.object_id is not None:
            params["object_id"] = filter.object_id
            fragments.append("object_id")
        if filter.labels:
            for key, value in filter.labels:
                _check_label(key, value)
            params["labels"] = dumps(dict(filter.labels))
            fragments.append("labels")
        rows = await self.connector.fetch_all("list_tasks", params, tuple(fragments))
        items = [task_from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    async def log(
        self, task_id: str, *, start: int = 0, limit: int = 50, tenant: str | None = None
    ) -> LogPage:
        """Lines ``start+1 .. start+limit`` of a task's log, and how many there are."""
        if start < 0:
            raise InvalidFilter("start must not be negative")
        if not 1 <= limit <= MAX_LOG_PAGE:
            raise InvalidFilter(f"limit must be between 1 and {MAX_LOG_PAGE}")
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.fetch_all(
            "get_log", {"task_id": task.id, "start": start, "limit": limit}
        )
        lines = [
            LogLine(n=r["n"], t=r["text"], ts=as_datetime(r["ts"]), level=r["level"]) for r in rows
        ]
        return LogPage(lines, task.log_count)

    # -- change --------------------------------------------------------------------

    async def cancel(self, task_id: str, *, tenant: str | None = None) -> Task:
        """Cancel: a waiting task ends `canceled` now; a running one becomes `canceling`.

        Canceling a task that has already ended is a `Conflict`.
        """
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.execute("request_cancel", {"id": task.id, "now": self.clock()})
        if not rows:
            current = await self.get(task.id)
            raise Conflict(f"task {task.id} has already ended ({current.state})")
        changed = task_from_row(rows[0])
        await self._changed([changed.id])
        return changed

    async def delete(self, task_id: str, *, tenant: str | None = None) -> None:
        """Delete an ended task and its log. A task still going is a `Conflict`."""
        task = await self.get(task_id, tenant=tenant)
        results = await self.connector.execute_batch(
            [Step("delete_task", {"id": task.id}), Step("delete_task_log", {"id": task.id})]
        )
        if not results[0]:
            raise Conflict(f"task {task.id} is {task.state}; only an ended task can be deleted")

    async def wait(
        self,
        task_id: str,
        timeout: float,
        *,
        tenant: str | None = None,
        seen_version: int | None = None,
    ) -> Task:
        """The task as soon as it changes (past ``seen_version``) or ends, or after timeout.

        Returns at once if the task has already ended.
        """
        task = await self.get(task_id, tenant=tenant)
        baseline = task.version if seen_version is None else seen_version
        if task.terminal or task.version != baseline or timeout <= 0:
            return task
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return task
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._waiters.setdefault(task.id, set())
            waiters.add(fut)
            try:
                # Re-read after registering, so a change in between is not missed.
                task = await self.get(task.id)
                if task.terminal or task.version != baseline:
                    return task
                try:
                    await asyncio.wait_for(fut, remaining)
                except TimeoutError:
                    return await self.get(task.id)
            finally:
                waiters.discard(fut)
                if not waiters:
                    self._waiters.pop(task.id, None)
            if not self._listening:  # woken by close(): answer now instead of waiting on
                return task
            task = await self.get(task.id)
            if task.terminal or task.version != baseline:
                return task

    def _on_notification(self, channel: str, payload: str) -> None:
        if channel != CHANNEL_CHANGED or not self._waiters:
            return
        for task_id in payload.split(","):
            for fut in self._waiters.get(task_id, ()):
                if not fut.done():
                    fut.set_result(None)

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
        tasks = sorted((task_from_row(r) for r in rows), key=lambda t: (-t.priority, t.id))
        await self._changed([t.id for t in tasks])
        return tasks

    async def next_due_at(self) -> float | None:
        row = await self.connector.fetch_one("next_due_at", {})
        return None if row is None or row["due_at"] is None else float(row["due_at"])

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

    async def heartbeat(self, worker: str, *, lease: float, pid: int, concurrency: int) -> None:
        """Renew the leases of every task ``worker`` holds, and its own record."""
        now = self.clock()
        await self.connector.execute_batch(
            [
                Step("renew_leases", {"worker": worker, "lease_expires_at": now + lease}),
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
                "now": self.clock(),
            },
        )
        if not rows:
            return None
        await self._changed([task.id])
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
        await self._changed([task.id])
        await self.connector.notify(CHANNEL_DUE)
        return task_from_row(rows[0])

    async def recover_lost(self, *, worker: str | None = None) -> builtins.list[Task]:
        """End or re-queue the tasks of workers whose lease ran out.

        With ``worker``, that worker is known to be gone and its leases end now.
        """
        now = self.clock()
        if worker is not None:
            await self.connector.execute("expire_worker_leases", {"worker": worker, "now": now})
            await self.connector.execute("delete_worker", {"id": worker})
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
            if t.state is State.QUEUED:
                line = f"worker lost during attempt {t.attempt}; queued again"
            elif t.state is State.CANCELED:
                line = "worker lost while canceling; task canceled"
            else:
                line = "worker lost: it stopped renewing its lease"
            await self.append_log(t.id, [NewLogLine(line, "error")])
        if any(t.state is State.QUEUED for t in tasks):
            await self.connector.notify(CHANNEL_DUE)
        await self._changed([t.id for t in tasks])
        return tasks

    def operation(self, type: str) -> Operation:
        return self.app.get(type)


# -- helpers ----------------------------------------------------------------------


def _fingerprint(type: str, params: Mapping[str, Any], object_id: str | None) -> str:
    data = orjson.dumps([type, params, object_id], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _check_label(key: str, value: str) -> None:
    if not isinstance(key, str) or not key or len(key) > 100 or not _label_key_ok(key):
        raise InvalidRequest(f"label key {key!r}: use 1-100 letters, digits, '_', '-', '.', '/'")
    if not isinstance(value, str) or len(value) > 500:
        raise InvalidRequest(f"label {key}: the value must be a string of at most 500 chars")


def _label_key_ok(key: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "_-./") for c in key)


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


__all__ = ["NewLogLine", "Progress", "Submission", "TaskService", "epoch"]
