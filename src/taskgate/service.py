"""`TaskService`: every task operation, written once, over any `Connector`.

The HTTP API, every dialect, the worker runtime and the Python API all go through here.
Domain rules live here and in `taskgate.model`; the connector runs named statements.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import heapq
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
    InvalidId,
    InvalidRequest,
    TaskNotFound,
)
from taskgate.feed import ChangeFeed, Interest
from taskgate.groups import GroupSide, check_group_id
from taskgate.ids import (
    UpidFactory,
    decode_cursor,
    encode_cursor,
    new_task_id,
    parse_task_id,
    uuid7_floor,
)
from taskgate.metrics import Metrics, process_metrics
from taskgate.model import (
    TERMINAL,
    LogLine,
    LogPage,
    Page,
    State,
    Task,
    TaskFilter,
)
from taskgate.overview import OverviewSide
from taskgate.reservations import check_resource, reservation_steps, reserve
from taskgate.storage.connector import (
    CHANNEL_CHANGED,
    CHANNEL_DUE,
    RESERVED,
    Connector,
    Row,
    Step,
)
from taskgate.storage.rows import as_datetime, dumps, task_from_row
from taskgate.tracing import Tracing
from taskgate.work import NewLogLine, Progress, WorkerSide

MAX_PAGE = 500
MAX_LOG_PAGE = 5000
MAX_SEARCH = 1000
"""Most characters of a search (`TaskFilter.q`): a label is at most 100 + 1 + 500."""
MAX_ACK_IDS = 1000
"""Most task ids one `TaskService.acknowledge_many` call takes."""
ACK_BATCH = 1000
"""Tasks acknowledged per transaction when acknowledging by filter."""
PURGE_BATCH = 200
"""Tasks deleted per transaction by `TaskService.purge`: each a short write (about 15
ms with three log lines each on SQLite), so the API and the workers wait on a purge for
that long at most."""
PACE = 0.01
"""Least seconds between two batches of a long purge (`pace`)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """Everything about a new task besides its operation and parameters."""

    object_id: str | None = None
    tenant: str = "default"
    user: str = "anonymous"
    user_id: int | None = None
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
    exclusive_resources: Sequence[str] | None = None
    """Resources the task holds alone while it runs, besides its operation's."""
    shared_resources: Sequence[str] | None = None
    """Resources it holds shared (`taskgate.reservations`)."""
    traceparent: str | None = None
    """The W3C trace context to link its runs to (None: the current span's, when
    tracing is on)."""


class TaskService(GroupSide, OverviewSide, WorkerSide):
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
        self.metrics: Metrics = process_metrics()
        """This process's Prometheus metrics (`taskgate.metrics`)."""
        self.tracing: Tracing | None = None
        """Set by the HTTP application or the worker when tracing is on: a submit then
        stores the current span's trace context with its task."""
        self.feed = ChangeFeed(self.get_many)
        """Change notifications, read once and handed to the waiters and streams."""
        self._listening = False

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        await self.connector.open()
        if not self._listening:
            self.feed.open()
            self.connector.add_listener(self._on_notification)
            self._listening = True

    async def close(self) -> None:
        if self._listening:
            self.connector.remove_listener(self._on_notification)
            self._listening = False
        await self.feed.close()  # waiters answer now, streams end
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
        reservation = None
        if op.reserves or options.exclusive_resources or options.shared_resources:
            # the task's own fields win over parameters of the same name
            fields = {**clean, "tenant": options.tenant, "user": options.user}
            fields.update(object_id=object_id, type=type)
            reservation = reserve(
                op,
                fields,
                exclusive=options.exclusive_resources,
                shared=options.shared_resources,
            )
        if options.group_id is not None:
            check_group_id(options.group_id)
        task_id = new_task_id()
        fingerprint = None
        if options.idempotency_key is not None:
            fingerprint = _fingerprint(type, clean, object_id)
        traceparent = options.traceparent
        if traceparent is None and self.tracing is not None:
            traceparent = self.tracing.traceparent()
        return {
            "id": task_id,
            "upid": self.upids.new(type, object_id, options.user, now),
            "type": type,
            "object_id": object_id,
            "tenant": options.tenant,
            "user_name": options.user,
            "user_id": options.user_id,
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
            "resources": None if reservation is None else dumps(reservation.to_dict()),
            "created_at": now,
            "scheduled_at": scheduled_at,
            "due_at": due,
            "traceparent": traceparent,
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
        # workers hear of it as it commits (a replay's notification wakes them for nothing)
        if row["resources"] is None:
            rows = await self.connector.execute("insert_task", row, notify=CHANNEL_DUE)
        else:
            steps = [Step("insert_task", row), *reservation_steps([row])]
            rows = (
                await self.connector.execute_batch(steps, notify=CHANNEL_DUE, payload=RESERVED)
            )[0]
        if rows:
            self.metrics.task_submitted(type)
            return task_from_row(rows[0]), True
        return await self._replay(row), False

    async def submit_many(
        self, requests: Iterable[tuple[str, Mapping[str, Any]]], options: Submission = Submission()
    ) -> builtins.list[Task]:
        """Store many tasks in one transaction (no idempotency keys)."""
        if options.idempotency_key is not None:
            raise InvalidRequest("submit_many takes no idempotency key")
        rows = [self.prepare(type, params, options) for type, params in requests]
        return await self._insert(rows)

    async def _insert(self, rows: Sequence[dict[str, Any]]) -> builtins.list[Task]:
        """Store prepared tasks in one transaction, with their reservations."""
        if not rows:
            return []
        reserved = reservation_steps(rows)
        results = await self.connector.execute_batch(
            [Step("insert_task", many=rows), *reserved],
            notify=CHANNEL_DUE,
            payload=RESERVED if reserved else "",
        )
        tasks = [task_from_row(r) for r in results[0]]
        for task in tasks:
            self.metrics.task_submitted(task.type)
        return tasks

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
        """One task, in the hot table or in history; `TaskNotFound` if it does not exist
        or belongs to another tenant."""
        key = {"id": parse_task_id(task_id)}
        row = await self.connector.fetch_one("get_task", key)
        if row is None:
            row = await self.connector.fetch_one("get_archived_task", key)
        return self._visible(row, task_id, tenant)

    async def version(self, task_id: str, *, tenant: str | None = None) -> int:
        """The task's version, raised by every change: a cheap way to tell whether a copy
        read earlier is still current. `TaskNotFound` as for `get`."""
        key = {"id": parse_task_id(task_id)}
        row = await self.connector.fetch_one("get_task_version", key)
        if row is None:
            row = await self.connector.fetch_one("get_archived_task_version", key)
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise TaskNotFound(f"no task {task_id}")
        return int(row["version"])

    async def get_by_upid(self, upid: str, *, tenant: str | None = None) -> Task:
        row = await self.connector.fetch_one("get_task_by_upid", {"upid": upid})
        if row is None:
            row = await self.connector.fetch_one("get_archived_task_by_upid", {"upid": upid})
        return self._visible(row, upid, tenant)

    def _visible(self, row: Row | None, ref: str, tenant: str | None) -> Task:
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise TaskNotFound(f"no task {ref}")
        return task_from_row(row)

    async def list(
        self, filter: TaskFilter | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> Page:
        """A page of tasks, newest first. ``cursor`` comes from the previous page.

        ``filter.archived`` says where: the hot table (False, the default), history
        (True), or both (None: two indexed reads, merged by id)."""
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
        if filter.acknowledged is not None:
            params["acknowledged"] = int(filter.acknowledged)
            fragments.append("acknowledged")
        if filter.schedule_id is not None:
            params["schedule_id"] = filter.schedule_id
            fragments.append("schedule_id")
        if filter.group_id is not None:
            params["group_id"] = filter.group_id
            fragments.append("group_id")
        if filter.parent_id is not None:
            params["parent_id"] = filter.parent_id
            fragments.append("parent_id")
        if filter.resource is not None:
            params["resource"] = check_resource(filter.resource)
            fragments.append("resource")
        chosen = tuple(fragments)
        hot_query, history_query = "list_tasks", "list_history"
        if filter.q is not None:
            params.update(search_params(filter.q))
            hot_query, history_query = "search_tasks", "search_history"
        if filter.archived is None:
            hot, history = await asyncio.gather(
                self.connector.fetch_all(hot_query, params, chosen),
                self.connector.fetch_all(history_query, params, chosen),
            )
            rows = heapq.nlargest(limit + 1, [*hot, *history], key=lambda r: str(r["id"]))
        else:
            query = history_query if filter.archived else hot_query
            rows = await self.connector.fetch_all(query, params, chosen)
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

    async def active_counts(self) -> builtins.list[Row]:
        """The tasks not ended, per ``type`` and ``state``: ``tasks``; of the waiting
        ones, ``due`` (their time has come), ``due_reserved`` (those of them that reserve
        resources) and ``oldest_due`` (epoch seconds; None: none due)."""
        return await self.connector.fetch_all("active_task_counts", {"now": self.clock()})

    # -- change --------------------------------------------------------------------

    async def cancel(self, task_id: str, *, tenant: str | None = None) -> Task:
        """Cancel: a task not started (waiting or suspended) ends `canceled` now; a
        running one becomes `canceling`. Its children (and theirs) are canceled too.

        Canceling a task that has already ended is a `Conflict`.
        """
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.execute("request_cancel", {"id": task.id, "now": self.clock()})
        if not rows:
            current = await self.get(task.id)
            raise Conflict(f"task {task.id} has already ended ({current.state})")
        changed = task_from_row(rows[0])
        await self._changed([changed.id])
        if changed.state is State.CANCELED:
            self.metrics.task_finished(changed.type, "canceled")
        if changed.reservation is not None and changed.state is State.CANCELED:
            await self.connector.notify(CHANNEL_DUE, RESERVED)  # it no longer holds a place
        if changed.children:
            await self.cancel_children(changed.id)
        return changed

    async def suspend(self, task_id: str, *, tenant: str | None = None) -> Task:
        """Hold a waiting task: no worker claims it until `resume`. A task that has
        started (or ended, or is suspended already) is a `Conflict`."""
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.execute("suspend_task", {"id": task.id, "now": self.clock()})
        if not rows:
            current = await self.get(task.id)
            raise Conflict(f"task {task.id} is {current.state}; only a waiting task is suspended")
        changed = task_from_row(rows[0])
        await self._changed([changed.id])
        if changed.reservation is not None:  # the tasks behind it in line may go first
            await self.connector.notify(CHANNEL_DUE, RESERVED)
        return changed

    async def resume(self, task_id: str, *, tenant: str | None = None) -> Task:
        """Let a suspended task wait again (queued, or scheduled until its time). A task
        that is not suspended is a `Conflict`."""
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.execute("resume_task", {"id": task.id, "now": self.clock()})
        if not rows:
            current = await self.get(task.id)
            raise Conflict(f"task {task.id} is {current.state}, not suspended")
        changed = task_from_row(rows[0])
        await self._changed([changed.id])
        await self.connector.notify(CHANNEL_DUE, "" if changed.reservation is None else RESERVED)
        return changed

    async def delete(self, task_id: str, *, tenant: str | None = None) -> None:
        """Delete an ended task (in the hot table or in history) and its log. A task
        still going is a `Conflict`."""
        task = await self.get(task_id, tenant=tenant)
        for _ in range(2):  # a second time if it moved to history in between
            key = {"id": task.id}
            results = await self.connector.execute_batch(
                [
                    Step("delete_archived_task" if task.archived else "delete_task", key),
                    Step("delete_task_log", key),
                    Step("delete_task_resources", key),
                ]
            )
            if results[0]:
                return
            task = await self.get(task.id)
            if not (task.terminal and task.archived):
                break
        raise Conflict(f"task {task.id} is {task.state}; only an ended task can be deleted")

    async def purge(
        self,
        *,
        tenant: str | None = None,
        states: Iterable[State] = (),
        types: Iterable[str] = (),
        finished_before: datetime | None = None,
    ) -> int:
        """Delete the ended tasks (and their logs), in the hot table and in history, in
        ``states`` and of ``types`` (empty: any ended one) that finished before
        ``finished_before``; return how many. Tasks still going are never touched. Goes
        in batches of `PURGE_BATCH`, each its own short transaction, yielding between
        them."""
        wanted = sorted({s.value for s in states})
        unended = [s for s in wanted if State(s) not in TERMINAL]
        if unended:
            raise InvalidRequest(
                f"only ended tasks can be purged, not {', '.join(unended)}"
                f" (ended states: {', '.join(sorted(s.value for s in TERMINAL))})"
            )
        params: dict[str, Any] = {"limit": PURGE_BATCH, "after_id": ""}
        fragments: builtins.list[str] = []
        if tenant is not None:
            params["tenant"] = tenant
            fragments.append("tenant")
        if wanted:
            params["states"] = dumps(wanted)
            fragments.append("states")
        wanted_types = sorted(set(types))
        if wanted_types:
            params["types"] = dumps(wanted_types)
            fragments.append("types")
        if finished_before is not None:
            if finished_before.tzinfo is None:
                raise InvalidRequest("finished_before needs a time zone (e.g. a trailing Z)")
            params["finished_before"] = finished_before.timestamp()
            fragments.append("finished_before")
        total = 0
        for find, delete in (
            ("purgeable_tasks", "purge_tasks"),
            ("purgeable_history", "purge_history"),
        ):
            params["after_id"] = ""
            while True:
                started = time.monotonic()
                rows = await self.connector.fetch_all(find, params, tuple(fragments))
                if rows:
                    total += await self.delete_ids(delete, [r["id"] for r in rows])
                if len(rows) < PURGE_BATCH:
                    break
                params["after_id"] = rows[-1]["id"]
                await pace(time.monotonic() - started)
        return total

    async def delete_ids(self, query: str, ids: Sequence[str]) -> int:
        """Delete the tasks ``ids`` with ``query`` (``purge_tasks``: ended ones of the hot
        table; ``purge_history``), their logs and reservations, in one transaction; how
        many went."""
        text = dumps(list(ids))
        deleted, _, _ = await self.connector.execute_batch(
            [
                Step(query, {"ids": text}),
                Step("purge_task_logs", {"ids": text}),
                Step("purge_task_resources", {"ids": text}),
            ]
        )
        return len(deleted)

    async def wait(
        self,
        task_id: str,
        timeout: float,
        *,
        tenant: str | None = None,
        seen_version: int | None = None,
        until_ended: bool = False,
    ) -> Task:
        """The task as soon as it changes (past ``seen_version``) or ends, or after timeout.

        With ``until_ended``, only its end counts (AIP-151's WaitOperation): a client that
        wants the result makes one request instead of one per change. Returns at once if
        the task has already ended.
        """
        if timeout <= 0:
            return await self.get(task_id, tenant=tenant)
        deadline = time.monotonic() + timeout
        with self.feed.watch(Interest(ids=frozenset((parse_task_id(task_id),)))) as watch:
            # Read once the watch is registered, so that no change is missed between the
            # read and the watch; later versions come from the feed, which reads a
            # changed task once for all its watchers.
            task = await self.get(task_id, tenant=tenant)
            baseline = task.version if seen_version is None else seen_version
            if until_ended:
                baseline = -1  # no version is -1: only the end stops the wait
            while not (task.terminal or (task.version != baseline and not until_ended)):
                if not await watch.wait(deadline - time.monotonic()):
                    return await self.get(task.id)  # timed out: the task as it is now
                if watch.closed:  # the service is closing: answer now
                    return task
                if watch.overflowed:  # changes may have been missed: read the store
                    watch.overflowed = False
                    task = await self.get(task.id)
                task = watch.latest(task)
        return task

    def _on_notification(self, channel: str, payload: str) -> None:
        if channel == CHANNEL_CHANGED:
            self.feed.notify(payload)

    async def get_many(self, task_ids: Sequence[str]) -> builtins.list[Task]:
        """The tasks of ``task_ids`` that exist, in no particular order, in one read."""
        if not task_ids:
            return []
        rows = await self.connector.fetch_all("get_tasks", {"ids": dumps(list(task_ids))})
        return [task_from_row(r) for r in rows]

    async def changes(
        self, after: tuple[float, str], interest: Interest, *, limit: int = 500
    ) -> tuple[builtins.list[Task], tuple[float, str] | None]:
        """Tasks in the order they last changed, after the position ``after``
        (updated_at in epoch seconds, id), that ``interest`` selects; and the position of
        the last one, to pass as ``after`` for the next page (None: nothing more now).

        A task appears once, in its current state, at the place of its latest change.
        """
        params: dict[str, Any] = {"after_ts": after[0], "after_id": after[1], "limit": limit}
        fragments: builtins.list[str] = []
        if interest.tenant is not None:
            params["tenant"] = interest.tenant
            fragments.append("tenant")
        if interest.states:
            params["states"] = dumps(sorted(s.value for s in interest.states))
            fragments.append("states")
        if interest.types:
            params["types"] = dumps(sorted(interest.types))
            fragments.append("types")
        if interest.ids:
            params["ids"] = dumps(sorted(interest.ids))
            fragments.append("ids")
        rows = await self.connector.fetch_all("list_changes", params, tuple(fragments))
        if len(rows) < limit:
            return [task_from_row(r) for r in rows], None
        last = rows[-1]
        return [task_from_row(r) for r in rows], (float(last["updated_at"]), str(last["id"]))

    async def lines(self, task_id: str, *, start: int, limit: int) -> builtins.list[LogLine]:
        """Lines ``start+1 .. start+limit`` of a log, without reading the task (the caller
        has checked that it may see it)."""
        rows = await self.connector.fetch_all(
            "get_log", {"task_id": task_id, "start": start, "limit": limit}
        )
        return [
            LogLine(n=r["n"], t=r["text"], ts=as_datetime(r["ts"]), level=r["level"]) for r in rows
        ]

    # -- acknowledgment ---------------------------------------------------------------

    async def acknowledge(self, task_id: str, *, user: str, tenant: str | None = None) -> Task:
        """Mark a task seen by ``user`` (acknowledged_at/by); its state is unchanged.

        A task acknowledged already stays as it is: the first acknowledgment stands.
        """
        task = await self.get(task_id, tenant=tenant)
        rows = await self.connector.execute(
            "acknowledge_archived_task" if task.archived else "acknowledge_task",
            {"id": task.id, "user": user, "now": self.clock()},
        )
        if not rows:
            return await self.get(task.id)
        changed = task_from_row(rows[0])
        await self._changed([changed.id])
        return changed

    async def acknowledge_many(
        self,
        *,
        user: str,
        tenant: str | None = None,
        ids: Sequence[str] | None = None,
        states: Iterable[State] = (),
        types: Iterable[str] = (),
    ) -> int:
        """Acknowledge the tasks not acknowledged yet that are among ``ids`` (when given;
        ids not visible to ``tenant`` are skipped), in ``states`` and of ``types`` (empty:
        any); return how many. Without ids, it goes in batches of `ACK_BATCH`, each its
        own short transaction."""
        params: dict[str, Any] = {"user": user}
        fragments: builtins.list[str] = []
        if tenant is not None:
            params["tenant"] = tenant
            fragments.append("tenant")
        wanted_states = sorted({s.value for s in states})
        if wanted_states:
            params["states"] = dumps(wanted_states)
            fragments.append("states")
        wanted_types = sorted(set(types))
        if wanted_types:
            params["types"] = dumps(wanted_types)
            fragments.append("types")
        if ids is not None:
            checked = sorted({parse_task_id(i) for i in ids})
            if len(checked) > MAX_ACK_IDS:
                raise InvalidRequest(f"acknowledge at most {MAX_ACK_IDS} ids at once")
            if not checked:
                return 0
            params.update(ids=dumps(checked), now=self.clock())
            (rows,) = await self.connector.execute_batch(
                [Step("acknowledge_listed", params, fragments=tuple(fragments))]
            )
            await self._changed([r["id"] for r in rows])
            return len(rows)
        total = 0
        params.update(limit=ACK_BATCH, after_id="")
        while True:
            params["now"] = self.clock()
            (rows,) = await self.connector.execute_batch(
                [Step("acknowledge_tasks", dict(params), fragments=tuple(fragments))]
            )
            done = [str(r["id"]) for r in rows]
            total += len(done)
            await self._changed(done)
            if len(done) < ACK_BATCH:
                return total
            params["after_id"] = max(done)

    def operation(self, type: str) -> Operation:
        return self.app.get(type)


# -- helpers ----------------------------------------------------------------------


async def pace(took: float) -> None:
    """Between two batches of a long purge or archive: three times as long as the last
    one took, at least `PACE` seconds, so that it holds the store (and its share of the
    machine) a quarter of the time at most, leaving the rest to the API and the workers,
    in this process or another. A batch slowed by a busy store backs off as much."""
    await asyncio.sleep(max(PACE, 3 * took))


def search_params(q: str) -> dict[str, Any]:
    """The parameters of ``search_tasks`` for the search ``q`` (`TaskFilter.q`)."""
    if not q or len(q) > MAX_SEARCH:
        raise InvalidFilter(f"a search must be 1 to {MAX_SEARCH} characters")
    try:
        q_id: str | None = parse_task_id(q.strip())
    except InvalidId:
        q_id = None
    key, sep, value = q.partition("=")
    return {
        "q": q,
        "q_id": q_id,
        "q_key": key if sep and key else None,
        "q_value": value if sep and key else None,
    }


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


__all__ = ["NewLogLine", "Progress", "Submission", "TaskService"]
