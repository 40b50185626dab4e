"""Groups and children: tasks that belong together.

- A *group* (Pulp's ``job_id``, a task group) is the tasks submitted with one
  ``group_id``: `GroupSide.submit_group` submits several at once under a new id, in one
  transaction. A group has a summary (how many tasks are in each state, in the hot table
  and in history), and is canceled, suspended or resumed as one.
- A *child* is a task spawned by a running handler (``ctx.spawn``): its ``parent_id``
  is the spawning task, it joins the parent's group, and the parent lists it in
  ``children``. Canceling a task cancels its children, and theirs.

Every change goes in batches of `BATCH` tasks, each its own short transaction, so that
a group of a hundred thousand tasks never holds the store for long.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from taskgate.errors import Conflict, GroupNotFound, IdempotencyConflict, InvalidRequest
from taskgate.feed import ChangeFeed, Interest
from taskgate.ids import new_task_id
from taskgate.metrics import Metrics
from taskgate.model import TERMINAL, Page, State, Task, TaskFilter
from taskgate.reservations import reservation_steps
from taskgate.storage.connector import CHANNEL_DUE, RESERVED, Connector, Row, Step
from taskgate.storage.rows import task_from_row

if TYPE_CHECKING:
    from taskgate.service import Submission

BATCH = 500
"""Tasks changed per transaction by a group's cancel, suspend or resume."""
MAX_GROUP_SUBMIT = 1000
"""Most tasks one `GroupSide.submit_group` call submits."""
MAX_SPAWN_KEY = 200
RECHECK = 5.0
"""Seconds between re-reads of the children a parent waits for (notifications wake it
sooner; this covers one that was lost)."""
GROUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}")


def check_group_id(group_id: Any) -> str:
    """A group id: 1-255 letters, digits and ``._:@-``. `InvalidRequest` otherwise."""
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        raise InvalidRequest(
            "group_id: 1 to 255 letters, digits, '.', '_', ':', '@' or '-', starting with a"
            " letter or digit"
        )
    return group_id


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """How many tasks of a group are in each state (Pulp 2's state summary)."""

    id: str
    states: dict[str, int]
    """Every state, with 0 for those no task of the group is in."""

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def ended(self) -> bool:
        """Every task of the group has ended."""
        return all(self.states[s.value] == 0 for s in State if s not in TERMINAL)


class GroupSide:
    """The group half of `TaskService` (which supplies these attributes)."""

    connector: Connector
    clock: Callable[[], float]
    feed: ChangeFeed
    metrics: Metrics

    if TYPE_CHECKING:

        def prepare(
            self, type: str, params: Mapping[str, Any], options: Submission = ...
        ) -> dict[str, Any]: ...

        async def _insert(self, rows: Sequence[dict[str, Any]]) -> builtins.list[Task]: ...

        async def _replay(self, row: Mapping[str, Any]) -> Task: ...

        async def _changed(self, task_ids: Sequence[str]) -> None: ...

        async def get_many(self, task_ids: Sequence[str]) -> builtins.list[Task]: ...

        async def list(
            self, filter: TaskFilter | None = None, *, cursor: str | None = None, limit: int = 50
        ) -> Page: ...

    async def submit_group(
        self, requests: Sequence[tuple[str, Mapping[str, Any], Submission]]
    ) -> tuple[str, builtins.list[Task]]:
        """Submit ``requests`` (type, parameters, options) as one new group, in one
        transaction: all are stored or none. Returns the group's id and the tasks, in
        the order given. Idempotency keys and group ids of their own are refused."""
        if not requests:
            raise InvalidRequest("a group needs at least one task")
        if len(requests) > MAX_GROUP_SUBMIT:
            raise InvalidRequest(f"a group is submitted with at most {MAX_GROUP_SUBMIT} tasks")
        group_id = new_task_id()
        rows = []
        for type, params, options in requests:
            if options.idempotency_key is not None or options.group_id is not None:
                raise InvalidRequest("a task of a new group takes no idempotency key or group_id")
            rows.append(self.prepare(type, params, _in_group(options, group_id)))
        return group_id, await self._insert(rows)

    async def group(self, group_id: str, *, tenant: str | None = None) -> GroupSummary:
        """The group's summary; `GroupNotFound` if no task of ``tenant`` has that id."""
        params: dict[str, Any] = {"group_id": check_group_id(group_id)}
        fragments: tuple[str, ...] = ()
        if tenant is not None:
            params["tenant"] = tenant
            fragments = ("tenant",)
        hot, history = await asyncio.gather(
            self.connector.fetch_all("group_states", params, fragments),
            self.connector.fetch_all("archived_group_states", params, fragments),
        )
        states = {s.value: 0 for s in State}
        for row in (*hot, *history):
            states[row["state"]] += int(row["count"])
        summary = GroupSummary(group_id, states)
        if summary.total == 0:
            raise GroupNotFound(f"no group {group_id}")
        return summary

    async def cancel_group(self, group_id: str, *, tenant: str | None = None) -> GroupSummary:
        """Cancel every task of the group still going (as `TaskService.cancel` does
        one); the summary after."""
        await self.group(group_id, tenant=tenant)
        await self._cancel_where("group_id", group_id, tenant)
        return await self.group(group_id, tenant=tenant)

    async def cancel_children(self, parent_id: str) -> int:
        """Cancel the children of ``parent_id`` still going, and theirs; how many."""
        total = 0
        parents = [parent_id]
        while parents:
            rows = await self._cancel_where("parent_id", parents.pop(), None)
            total += len(rows)
            parents += [r["id"] for r in rows if r["children"]]
        return total

    async def suspend_group(self, group_id: str, *, tenant: str | None = None) -> GroupSummary:
        """Suspend every waiting task of the group (`TaskService.suspend`); the summary."""
        await self.group(group_id, tenant=tenant)
        await self._each_batch("suspend_tasks", group_id, tenant)
        return await self.group(group_id, tenant=tenant)

    async def resume_group(self, group_id: str, *, tenant: str | None = None) -> GroupSummary:
        """Resume every suspended task of the group (`TaskService.resume`); the summary."""
        await self.group(group_id, tenant=tenant)
        await self._each_batch("resume_tasks", group_id, tenant)
        await self.connector.notify(CHANNEL_DUE, RESERVED)
        return await self.group(group_id, tenant=tenant)

    # -- children ----------------------------------------------------------------------

    async def spawn(
        self,
        parent: Task,
        type: str,
        params: Mapping[str, Any],
        options: Submission,
        *,
        key: str | None = None,
    ) -> Task:
        """A child of the running attempt ``parent``: its tenant, user, request id and
        group, ``parent_id`` the parent, listed in the parent's ``children``. Stored only
        while that attempt holds the parent (else `Conflict`). With ``key``, spawning
        the same key again (a retried parent) returns the child spawned the first time.
        """
        if key is not None and not (isinstance(key, str) and 1 <= len(key) <= MAX_SPAWN_KEY):
            raise InvalidRequest(f"a spawn key is a string of 1 to {MAX_SPAWN_KEY} characters")
        options = replace(
            options,
            tenant=parent.tenant,
            user=parent.user,
            user_id=parent.user_id,
            request_id=parent.request_id,
            group_id=parent.group_id,
            parent_id=parent.id,
            idempotency_key=None if key is None else f"child:{parent.id}:{key}",
        )
        row = self.prepare(type, params, options)
        row.update(parent_worker=parent.worker, parent_attempt=parent.attempt)
        steps = [
            Step("insert_child_task", row),
            *reservation_steps([row]),
            Step("add_child", {"id": parent.id, "child_id": row["id"], "now": self.clock()}),
        ]
        results = await self.connector.execute_batch(
            steps, notify=CHANNEL_DUE, payload="" if row["resources"] is None else RESERVED
        )
        if results[0]:
            await self._changed([parent.id])
            self.metrics.task_submitted(type)
            return task_from_row(results[0][0])
        if key is not None:
            try:
                return await self._replay(row)
            except IdempotencyConflict:
                raise
            except Conflict:
                pass  # no such key: the insert was refused for the parent's sake
        raise Conflict(
            f"task {parent.id}: attempt {parent.attempt} no longer holds it; nothing spawned"
        )

    async def children(self, parent_id: str) -> builtins.list[Task]:
        """The children of ``parent_id`` (hot or archived), oldest first."""
        found: builtins.list[Task] = []
        cursor = None
        while True:
            page = await self.list(
                TaskFilter(parent_id=parent_id, archived=None), cursor=cursor, limit=500
            )
            found += page.items
            if page.next_cursor is None:
                return found[::-1]
            cursor = page.next_cursor

    async def wait_children(
        self, parent_id: str, timeout: float | None = None
    ) -> builtins.list[Task]:
        """The children of ``parent_id`` once every one has ended, or as they are after
        ``timeout`` seconds (None: no limit); oldest first."""
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        children = await self.children(parent_id)
        while True:
            going = frozenset(c.id for c in children if not c.terminal)
            remaining = deadline - time.monotonic()
            if not going or remaining <= 0:
                return children
            with self.feed.watch(Interest(ids=going)) as watch:
                # read again with the watch in place: no end is missed in between
                fresh = {t.id: t for t in await self.get_many(sorted(going))}
                if all(t.terminal for t in fresh.values()) and len(fresh) == len(going):
                    children = [fresh.get(c.id, c) for c in children]
                    continue
                await watch.wait(min(remaining, RECHECK))
            children = await self.children(parent_id)

    async def _cancel_where(self, field: str, value: str, tenant: str | None) -> builtins.list[Row]:
        rows = await self._each_batch("cancel_tasks", value, tenant, field=field)
        for row in rows:
            if row["state"] == "canceled":
                self.metrics.task_finished(str(row["type"]), "canceled")
        if any(r["resources"] is not None and r["state"] == "canceled" for r in rows):
            await self.connector.notify(CHANNEL_DUE, RESERVED)
        return rows

    async def _each_batch(
        self, query: str, value: str, tenant: str | None, *, field: str = "group_id"
    ) -> builtins.list[Row]:
        """Run the batched ``query`` over the tasks whose ``field`` is ``value`` until a
        batch comes back short; the rows of every batch."""
        params: dict[str, Any] = {field: value, "limit": BATCH, "after_id": ""}
        fragments = (field,) if tenant is None else (field, "tenant")
        if tenant is not None:
            params["tenant"] = tenant
        done: builtins.list[Row] = []
        while True:
            params["now"] = self.clock()
            (rows,) = await self.connector.execute_batch(
                [Step(query, dict(params), fragments=fragments)]
            )
            done += rows
            await self._changed([str(r["id"]) for r in rows])
            if len(rows) < BATCH:
                return done
            params["after_id"] = max(str(r["id"]) for r in rows)


def _in_group(options: Submission, group_id: str) -> Submission:
    return replace(options, group_id=group_id)
