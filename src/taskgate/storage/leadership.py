"""Leadership: one holder at a time, per store, of a named role (the scheduler).

Some work must be done by one process of a deployment, not by each (the reaper).
Every worker is a candidate: it asks its connector for a
`Leadership` and calls `Leadership.try_acquire` now and then; the one that gets the role
runs the duties, calls `Leadership.confirm` often, and stops them as soon as confirm
says no. The holder's row in the ``leaders`` table (name, holder, node, pid, since,
renewed_at) shows who leads.

How each store decides, and frees the role of a holder that is gone:

- PostgreSQL (`LockedLeadership` over `taskgate.storage.postgres_leadership`): an
  advisory lock on a connection of its own decides; the row only shows it. A holder
  that dies closes the connection (the role is free at once); one that freezes stops
  confirming and the server ends its session after the timeout. No clocks are compared,
  so the nodes' clocks may disagree.
- SQLite and memory (`LeaseLeadership`): the row is a lease. The holder renews it at
  every confirmation; a candidate takes a row not renewed for the timeout. A holder
  that dies or freezes loses the role after the timeout (at once when ``serve`` saw its
  worker die: `WorkerSide.recover_lost` forgets the row); one that stops cleanly
  deletes its row, and the next takes over at once. One machine, so one clock. (A file lock
  would free the role of a dead holder at once, but a frozen one would keep it, and
  with it every frozen worker's tasks, which the reaper must recover.)

Closing a connector releases every candidate it made, as the end of a process would
(`Candidates`). There is no fencing token: a holder that stalled past the timeout may
run its duties for a moment beside the next holder, until its next confirmation. The
duties' writes are conditional, so that is harmless.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import weakref
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from taskgate.errors import ConfigurationError, StorageError

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
TIMEOUT = 5.0
"""Default seconds after which a holder that stopped confirming loses the role."""
RENEW_EVERY = 5.0
"""Seconds between renewals of a lock holder's row (the row is only shown)."""


def check_name(name: str) -> str:
    """``name`` if it can name a role (a lower-case identifier), else an error."""
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"a leadership name is a lower-case identifier of at most 63 characters, not {name!r}"
        )
    return name


@dataclass(frozen=True, slots=True)
class Candidate:
    """Who stands for a role, as its row in ``leaders`` shows it."""

    holder: str
    """Unique among the store's candidates: a worker id."""
    node: str
    pid: int


class Leadership(Protocol):
    """One candidate for the role ``name`` on one store. One task (the elector) drives
    it: it is not safe for concurrent use."""

    name: str

    async def try_acquire(self) -> bool:
        """Take the role if nobody holds it; True if this candidate holds it now.

        Raises `taskgate.errors.StorageError` when the store cannot be asked."""

    async def confirm(self) -> bool:
        """True while this candidate still holds the role. Call it often (well within
        the timeout, or the role is lost); it is cheap. False also when it cannot tell
        (the store is unreachable): the holder must then stop its duties at once."""

    async def release(self) -> None:
        """Let the role go, so that another takes it at once (a no-op when not held)."""


class Lock(Protocol):
    """A store's own mutual exclusion, which knows no holder's name (PostgreSQL's
    advisory lock): `try_acquire`, `confirm` and `release` as in `Leadership`."""

    async def try_acquire(self) -> bool: ...

    async def confirm(self) -> bool: ...

    async def release(self) -> None: ...


class Store(Protocol):
    """What a leadership needs of its connector: its named writes."""

    async def execute(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...


L = TypeVar("L", bound=Leadership)


class Candidates:
    """The candidates one connector made: closing the connector releases them."""

    def __init__(self) -> None:
        self._all: weakref.WeakSet[Leadership] = weakref.WeakSet()

    def add(self, candidate: L) -> L:
        self._all.add(candidate)
        return candidate

    async def release_all(self) -> None:
        for candidate in list(self._all):
            await candidate.release()


class _Row:
    """The candidate's row in ``leaders``, written through the store's named queries."""

    def __init__(self, store: Store, name: str, candidate: Candidate) -> None:
        self.name = check_name(name)
        self.store = store
        self.candidate = candidate

    async def take(self, now: float, stale_before: float) -> bool:
        """Write the row over one renewed before ``stale_before`` (or our own)."""
        c = self.candidate
        params = {"name": self.name, "holder": c.holder, "node": c.node, "pid": c.pid}
        rows = await self.store.execute(
            "take_leader", {**params, "now": now, "stale_before": stale_before}
        )
        return bool(rows)

    async def renew(self, now: float, stale_before: float) -> bool:
        """Renew our row, unless it was last renewed before ``stale_before``."""
        params = {"name": self.name, "holder": self.candidate.holder}
        rows = await self.store.execute(
            "renew_leader", {**params, "now": now, "stale_before": stale_before}
        )
        return bool(rows)

    async def drop(self) -> None:
        """Delete our row (the lease, if it is one, then runs out by itself anyway)."""
        with contextlib.suppress(StorageError):
            await self.store.execute(
                "drop_leader", {"name": self.name, "holder": self.candidate.holder}
            )


class LeaseLeadership:
    """The row is the lease (SQLite, memory): held while renewed within ``timeout``."""

    def __init__(self, store: Store, name: str, candidate: Candidate, *, timeout: float) -> None:
        self._row = _Row(store, name, candidate)
        self.name = self._row.name
        self.timeout = timeout
        self._held = False

    async def try_acquire(self) -> bool:
        if self._held:
            return await self.confirm()
        now = time.time()
        self._held = await self._row.take(now, now - self.timeout)
        return self._held

    async def confirm(self) -> bool:
        if not self._held:
            return False
        now = time.time()
        try:
            self._held = await self._row.renew(now, now - self.timeout)
        except StorageError:
            self._held = False
        return self._held

    async def release(self) -> None:
        if self._held:
            self._held = False
            await self._row.drop()


class LockedLeadership:
    """The store's `Lock` decides (PostgreSQL); the row only shows the holder, renewed
    every `RENEW_EVERY` seconds."""

    def __init__(self, store: Store, lock: Lock, name: str, candidate: Candidate) -> None:
        self._row = _Row(store, name, candidate)
        self.name = self._row.name
        self.lock = lock
        self._shown_at: float | None = None
        """When the row was last written (monotonic); None while not held."""

    async def try_acquire(self) -> bool:
        if not await self.lock.try_acquire():
            return False
        if self._shown_at is None:
            # the lock decided: whatever row is there (a dead holder's) is out of date
            await self._show(self._row.take(time.time(), math.inf))
        return True

    async def confirm(self) -> bool:
        if not await self.lock.confirm():
            await self.release()  # the row goes too, unless a new holder's replaced it
            return False
        if self._shown_at is not None and time.monotonic() - self._shown_at >= RENEW_EVERY:
            await self._show(self._row.renew(time.time(), -math.inf))
        return True

    async def release(self) -> None:
        await self.lock.release()
        if self._shown_at is not None:
            self._shown_at = None
            await self._row.drop()

    async def _show(self, write: Coroutine[Any, Any, bool]) -> None:
        """Write the row; it is only shown, so a failure changes nothing else."""
        self._shown_at = time.monotonic()
        with contextlib.suppress(StorageError):
            await write
