"""`ChangeFeed`: task changes, handed to the waiters and streams that care about them.

Every process hears `CHANNEL_CHANGED` notifications (payload: the ids of tasks that
changed). One API process may hold ten thousand ``?wait`` long polls and event streams
at once, so a notification must cost in proportion to what it concerns, not to what is
open:

- a `Watch` of given task ids is indexed by each id; any other watch (a whole tenant,
  maybe narrowed by type or state) sits in one set per tenant, admins' under None;
- a notification only adds ids to a pending set, keeping those some watch could want;
  one flush task at a time reads them, a chunk per query, each task once however many
  watch it, and hands the resulting `Change` to the watches it concerns;
- a watch keeps the latest change per task: a stream that falls behind skips
  intermediate states, never the latest one. Past ``limit`` tasks it drops them and is
  marked ``overflowed``: its owner catches up from the store instead of from memory;
- an empty payload means "anything may have changed" (the store's notifications were
  interrupted, e.g. PostgreSQL's LISTEN connection was re-established): every watch is
  marked ``overflowed`` and woken, so each waiter and stream re-reads the store.

An idle watch is a small object in one or two dicts; waiting on it costs a future and a
timer, no task of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from taskgate.model import State, Task

log = logging.getLogger("taskgate.feed")

READ_CHUNK = 256
"""Ids per read: a large batch is read in slices, letting the loop run in between."""
REMEMBERED = 65536
"""Tasks whose last delivered version the feed remembers, to drop repeated deliveries."""
WATCH_LIMIT = 1000
"""Tasks a watch holds undelivered before it overflows."""

Reader = Callable[[list[str]], Awaitable[list[Task]]]
"""Reads the tasks of some ids (those that exist), in any order."""


@dataclass(frozen=True, slots=True)
class Interest:
    """Which changes a watch wants. Empty fields select everything; ``tenant`` None means
    every tenant (an admin's view)."""

    ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    states: frozenset[State] = frozenset()
    tenant: str | None = None

    def matches(self, task: Task) -> bool:
        return (
            (self.tenant is None or task.tenant == self.tenant)
            and (not self.ids or task.id in self.ids)
            and (not self.types or task.type in self.types)
            and (not self.states or task.state in self.states)
        )


class Change:
    """A task as read after a change notification, shared by every watch it reaches.

    ``rendered`` caches one rendering of it (an SSE event, say), made by whichever
    consumer needs it first: a change fanned out to a thousand streams is encoded once.
    """

    __slots__ = ("rendered", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.rendered: bytes | None = None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Watch:
    """One subscriber's view of the feed: the changes it has not taken yet.

    Use it as a context manager (or call `close`) so it leaves the feed's indexes.
    """

    __slots__ = ("_feed", "_waiter", "closed", "interest", "limit", "overflowed", "pending")

    def __init__(self, feed: ChangeFeed, interest: Interest, limit: int) -> None:
        self._feed = feed
        self.interest = interest
        self.limit = limit
        self.pending: dict[str, Change] = {}
        self.overflowed = False
        """Changes were dropped (more than ``limit`` pending): catch up from the store."""
        self.closed = False
        """The watch, or the whole feed, was closed: nothing more will come."""
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, change: Change) -> None:
        pending = self.pending
        task_id = change.task.id
        pending.pop(task_id, None)  # the newest change goes last: delivery order
        pending[task_id] = change
        if len(pending) > self.limit:
            pending.clear()
            self.overflowed = True
        self._wake()

    def take(self) -> list[Change]:
        """The pending changes, oldest first; the watch is empty afterwards."""
        if not self.pending:
            return []
        changes = list(self.pending.values())
        self.pending.clear()
        return changes

    def latest(self, task: Task) -> Task:
        """``task``, or a newer version of it among the pending changes (taken)."""
        change = self.pending.pop(task.id, None)
        if change is not None and change.task.version > task.version:
            return change.task
        return task

    @property
    def ready(self) -> bool:
        """Something to take, or a reason to stop waiting."""
        return bool(self.pending) or self.overflowed or self.closed

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until `ready`, at most ``timeout`` seconds; return `ready`."""
        if self.ready:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiter = future
        timer = None if timeout is None else loop.call_later(max(timeout, 0.0), _wake, future)
        try:
            await future
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
        return self.ready

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake(self._waiter)

    def end(self) -> None:
        """Mark closed and wake a waiter (the feed is closing)."""
        self.closed = True
        self._wake()

    def close(self) -> None:
        """Leave the feed; idempotent."""
        if not self.closed:
            self.end()
        self._feed.remove(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChangeFeed:
    """Fans change notifications out to the watches they concern (see the module doc)."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._by_id: dict[str, set[Watch]] = {}
        self._by_tenant: dict[str | None, set[Watch]] = {}
        self._pending: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._delivered: dict[str, int] = {}
        self.closed = False

    # -- watches --------------------------------------------------------------------

    def watch(self, interest: Interest, *, limit: int | None = None) -> Watch:
        """A new watch, registered at once: changes notified from now on reach it.
        ``limit``: changes it holds before it overflows (default `WATCH_LIMIT`)."""
        watch = Watch(self, interest, WATCH_LIMIT if limit is None else limit)
        if self.closed:
            watch.end()
            return watch
        if interest.ids:
            for task_id in interest.ids:
                self._by_id.setdefault(task_id, set()).add(watch)
        else:
            self._by_tenant.setdefault(interest.tenant, set()).add(watch)
        return watch

    def remove(self, watch: Watch) -> None:
        if watch.interest.ids:
            for task_id in watch.interest.ids:
                _discard(self._by_id, task_id, watch)
        else:
            _discard(self._by_tenant, watch.interest.tenant, watch)

    def watching(self, task_id: str) -> int:
        """How many watches name this task (tenant-wide ones do not count)."""
        return len(self._by_id.get(task_id, ()))

    def __len__(self) -> int:
        """How many watches are open."""
        return len({w for ws in self._by_id.values() for w in ws}) + sum(
            len(ws) for ws in self._by_tenant.values()
        )

    # -- notifications --------------------------------------------------------------

    def notify(self, payload: str) -> None:
        """Take a `CHANNEL_CHANGED` payload (comma-separated task ids; empty: any task
        may have changed)."""
        if self.closed or not (self._by_id or self._by_tenant):
            return
        if not payload:
            self.resync()
            return
        ids = payload.split(",")
        if self._by_tenant:  # a tenant-wide watch may want any task
            self._pending.update(i for i in ids if i)
        else:
            by_id = self._by_id
            self._pending.update(i for i in ids if i in by_id)
        if self._pending and self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def resync(self) -> None:
        """Changes may have been missed: every watch catches up from the store."""
        for watches in (*self._by_id.values(), *self._by_tenant.values()):
            for watch in watches:
                watch.overflowed = True
                watch._wake()

    async def _flush(self) -> None:
        try:
            while self._pending and not self.closed:
                wanted = self._wanted()
                if not wanted:
                    continue
                try:
                    tasks = await self._read(wanted)
                except Exception:
                    # A lost batch costs latency, not correctness: waiters time out and
                    # re-read, streams resume from the store.
                    log.warning("could not read %d changed task(s)", len(wanted), exc_info=True)
                    continue
                for task in tasks:
                    self._dispatch(task)
                if self._pending:
                    await asyncio.sleep(0)  # reads are synchronous: let the loop run
        finally:
            self._flusher = None

    def _wanted(self) -> list[str]:
        """Up to `READ_CHUNK` pending ids that a watch may still want."""
        pending = self._pending
        chunk = [pending.pop() for _ in range(min(READ_CHUNK, len(pending)))]
        if self._by_tenant:
            return chunk
        by_id = self._by_id
        return [i for i in chunk if i in by_id]

    def _dispatch(self, task: Task) -> None:
        delivered = self._delivered
        last = delivered.get(task.id)
        if last is not None and last >= task.version:
            return  # handed out already (two notifications, one read after both)
        if len(delivered) >= REMEMBERED:
            delivered.clear()  # forgetting costs at most a repeated delivery
        delivered[task.id] = task.version
        change = Change(task)
        for watch in self._by_id.get(task.id, ()):
            if watch.interest.matches(task):
                watch.deliver(change)
        by_tenant = self._by_tenant
        if by_tenant:
            for watch in _chain(by_tenant.get(task.tenant), by_tenant.get(None)):
                if watch.interest.matches(task):
                    watch.deliver(change)

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        """End every watch (their waiters wake and see ``closed``) and stop flushing."""
        self.closed = True
        for watches in (*self._by_id.values(), *self._by_tenant.values()):
            for watch in watches:
                watch.end()
        self._by_id.clear()
        self._by_tenant.clear()
        self._pending.clear()
        self._delivered.clear()
        flusher = self._flusher
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher


def _discard(index: dict[Any, set[Watch]], key: Any, watch: Watch) -> None:
    watches = index.get(key)
    if watches is not None:
        watches.discard(watch)
        if not watches:
            del index[key]


def _chain(*groups: Iterable[Watch] | None) -> Iterable[Watch]:
    for group in groups:
        if group:
            yield from group


__all__ = ["Change", "ChangeFeed", "Interest", "Watch"]
