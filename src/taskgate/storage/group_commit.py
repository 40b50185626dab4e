"""Group commit on PostgreSQL: the writes one process asks for at the same moment share
one transaction, sent as one pipeline; its notifications go along, merged.

Each PostgreSQL commit costs a WAL flush, and each statement a round trip. Worse, a
transaction that notifies holds a cluster-wide lock from its commit until it is flushed,
so notifying commits happen one at a time, across every process and machine. Under load a
process asks for many small writes at once (submits, claims, task endings) and a
notification after almost each; one commit and one ``pg_notify`` per group, instead of
one each, is what lets PostgreSQL keep up.

`GroupCommit` works like SQLite's writer thread (`taskgate.storage.sqlite`):

- What is asked for within one event-loop turn is taken together. A group has at most
  `MAX_GROUP` writes; one group at a time is in flight, and whatever arrives meanwhile
  waits and forms the next one. A write resolves only once its group has committed.
- A lone write (one statement) runs as before: one statement in autocommit mode, so an
  idle store answers as fast as ever. A group is one pipeline whose statements, up to
  its one Sync, form one implicit transaction: one round trip, no BEGIN or COMMIT.
- A write may carry notifications of its own (a submit's ``due``): they go in its
  transaction, so listeners hear them as it commits, without a round trip of their own.
- Notifications are queued and sent with the next group, as SQLite's local bus queues
  them (`taskgate.storage.bus`): the caller does not wait, and they are delivered on a
  later turn of the loop, never inside the call. PostgreSQL delivers them when the group
  commits: ``changed`` task ids merged into as few payloads as fit, other channels once
  per distinct payload. With no write to go with, they go alone, in a transaction whose
  commit need not wait for a WAL flush. If they cannot be sent they are logged and
  dropped, as the bus drops what a peer refuses for too long: workers also poll slowly,
  waiters re-read the task at their timeout, and streams resume from the store.
- One failing statement aborts the whole transaction. The server has then undone the
  group, and each of its writes (with its own notifications) runs again alone, then the
  queued notifications, so a write fails only for its own error. A lost connection
  fails the whole group: as for a single statement, whether it committed is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import ExecStatus
from psycopg.rows import tuple_row

from taskgate.storage.connector import CHANNEL_CHANGED, Params, Row, Step

log = logging.getLogger(__name__)

TUPLES_OK = ExecStatus.TUPLES_OK
MAX_GROUP = 256
"""Most writes in one transaction."""
MAX_PAYLOAD = 7900
"""Bytes of one NOTIFY payload (PostgreSQL refuses 8000 and more); longer id lists are
sent in several notifications, split at commas."""

Connection = psycopg.AsyncConnection[Row]
Lease = Callable[[], contextlib.AbstractAsyncContextManager[Connection]]
"""Lends a pooled connection (autocommit mode) for the duration of a ``with`` block."""
Statement = tuple[str, Step]
"""The SQL text of a step, and the step."""


def split_payload(payload: str, limit: int = MAX_PAYLOAD) -> list[str]:
    """``payload`` in pieces of at most ``limit`` bytes, cut at commas."""
    if len(payload.encode()) <= limit:
        return [payload]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for item in payload.split(","):
        extra = len(item.encode()) + (1 if current else 0)
        if current and size + extra > limit:
            pieces.append(",".join(current))
            current, size = [], 0
            extra = len(item.encode())
        current.append(item)
        size += extra
    if current:
        pieces.append(",".join(current))
    return pieces


NOTIFY = "SELECT pg_notify(c, p) FROM unnest(%(channels)s::text[], %(payloads)s::text[]) AS n(c, p)"
NOTIFY_ALONE = NOTIFY + ", set_config('synchronous_commit', 'off', true)"
"""Notifications in a transaction of their own. It writes no task, so its commit need
not wait for a WAL flush: only this transaction's commit is asynchronous, and the writes
its notifications tell of were committed and flushed before. (A notifying commit holds
PostgreSQL's notification lock until it is flushed: this also keeps that short.)"""


@dataclass(slots=True)
class _Write:
    statements: Sequence[Statement]
    future: asyncio.Future[list[list[Row]]] | None
    """Resolved with the rows of each statement; None for notifications."""
    notes: Sequence[tuple[str, str]] = ()
    """(channel, payload) to notify in the same transaction."""

    def settle(self, rows: list[list[Row]], error: BaseException | None) -> None:
        if self.future is None or self.future.done():
            return
        elif isinstance(error, asyncio.CancelledError):
            self.future.cancel()
        elif error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(rows)


class _Notes:
    """Notifications waiting for the next group: payloads by channel, in order."""

    def __init__(self) -> None:
        self.payloads: dict[str, dict[str, None]] = {}

    def add(self, channel: str, payload: str) -> None:
        self.payloads.setdefault(channel, {})[payload] = None

    def write(self, *, alone: bool) -> _Write:
        """One statement sending them all (``changed`` ids merged), as a write; ``alone``:
        the only one of its transaction."""
        channels: list[str] = []
        payloads: list[str] = []
        for channel, wanted in self.payloads.items():
            if channel.endswith(CHANNEL_CHANGED):
                pieces = split_payload(",".join(p for p in wanted if p)) if any(wanted) else []
                pieces += [""] if "" in wanted else []
            else:
                pieces = [piece for p in wanted for piece in split_payload(p)]
            channels += [channel] * len(pieces)
            payloads += pieces
        step = Step("notify", {"channels": channels, "payloads": payloads})
        return _Write([(NOTIFY_ALONE if alone else NOTIFY, step)], None)


class GroupCommit:
    """Runs one process's writes and notifications in shared transactions."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        self._writes: list[_Write] = []
        self._notes = _Notes()
        self._scheduled = False
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(
        self, statements: Sequence[Statement], notes: Sequence[tuple[str, str]] = ()
    ) -> list[list[Row]]:
        """Run ``statements`` in one transaction, all or nothing; rows per statement.
        ``notes``, (channel, payload) pairs, are notified in that transaction: listeners
        hear them as it commits, with no round trip of their own. Raises the driver's
        error when the statements fail."""
        future: asyncio.Future[list[list[Row]]] = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(statements, future, notes))
        self._schedule()
        return await future

    def notify(self, channel: str, payload: str) -> None:
        """Queue ``payload`` on ``channel`` (the full name) for the next group."""
        self._notes.add(channel, payload)
        self._schedule()

    async def drain(self) -> None:
        """Wait until what was asked for so far has been sent (before closing)."""
        while self._tasks or self._writes or self._notes.payloads:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            else:  # a group starts on the next turn of the loop
                await asyncio.sleep(0)

    def _schedule(self) -> None:
        if not self._scheduled and not self._busy:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._busy or not (self._writes or self._notes.payloads):
            return
        writes, self._writes = self._writes[:MAX_GROUP], self._writes[MAX_GROUP:]
        queued, self._notes = self._notes, _Notes()
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._commit(writes, queued))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy = False
        if self._writes or self._notes.payloads:
            self._start()

    async def _commit(self, writes: list[_Write], queued: _Notes) -> None:
        """Commit ``writes`` and their notifications, with those ``queued`` alone."""
        notes = _Notes()
        notes.payloads = {channel: dict(wanted) for channel, wanted in queued.payloads.items()}
        for write in writes:
            for channel, payload in write.notes:
                notes.add(channel, payload)
        group = [*writes, notes.write(alone=not writes)] if notes.payloads else list(writes)
        try:
            if len(group) == 1:
                results = [await self._alone(group[0].statements)]
            else:
                results = await self._together([w.statements for w in group])
        except psycopg.Error as exc:
            if (len(writes) > 1 or (writes and queued.payloads)) and _undone(exc):
                # the server undid the group: each write alone (with its own
                # notifications) fails for its own error
                for write in writes:
                    await self._commit([write], _Notes())
                if queued.payloads:
                    await self._commit([], queued)
                return
            _fail(writes, exc, queued)
        except BaseException as exc:
            _fail(writes, exc, queued)
            if not isinstance(exc, Exception):
                raise
        else:
            for write, rows in zip(group, results, strict=True):
                write.settle(rows, None)

    async def _alone(self, statements: Sequence[Statement]) -> list[list[Row]]:
        if len(statements) > 1 or statements[0][1].many is not None:
            (rows,) = await self._together([statements])
            return rows
        # one statement commits by itself: no BEGIN/COMMIT round trips
        sql, step = statements[0]
        async with self._lease() as conn, conn.cursor() as cur:
            await cur.execute(sql.encode(), step.params)
            return [await _rows(cur)]

    async def _together(self, writes: Sequence[Sequence[Statement]]) -> list[list[list[Row]]]:
        """Every write in one transaction, in one pipeline; the rows of each write's
        statements.

        No BEGIN or COMMIT: on a connection in autocommit mode, what a pipeline sends
        up to its one Sync (at its end) is one implicit transaction, committed at the
        Sync and undone entirely if a statement fails. So a group of one write and its
        notifications costs one round trip, as a lone statement does.

        The writes that are one statement each are sent as one ``executemany`` per
        statement text (psycopg then converts each text once): the writes of a group
        were all waiting at once, so none depends on another, and any order is theirs.
        A statement run once is a plain execute: ``executemany`` waits for its results
        before going on, a round trip worth it only for many runs.
        """
        results: list[list[list[Row]]] = [[[] for _ in w] for w in writes]
        alike: dict[str, list[tuple[int, Params]]] = {}
        steps: list[tuple[int, int, str, Sequence[Params]]] = []
        for i, write in enumerate(writes):
            if len(write) == 1 and write[0][1].many is None:
                alike.setdefault(write[0][0], []).append((i, write[0][1].params))
                continue
            for j, (sql, step) in enumerate(write):
                steps.append((i, j, sql, [step.params] if step.many is None else step.many))
        sent: list[tuple[psycopg.AsyncCursor[tuple[Any, ...]], list[tuple[int, int]]]] = []
        async with self._lease() as conn:
            try:
                async with conn.pipeline():
                    for sql, items in alike.items():
                        cur = await _run(conn, sql, [p for _, p in items])
                        sent.append((cur, [(i, 0) for i, _ in items]))
                    for i, j, sql, runs in steps:
                        cur = await _run(conn, sql, runs)
                        sent.append((cur, [(i, j)] * len(runs)))
            except psycopg.Error:
                # the server skipped what followed the failure, statements psycopg
                # meant to prepare included, yet psycopg counts them as prepared: this
                # connection would fail them later; the pool replaces it
                await conn.close()
                raise
        for cur, owners in sent:
            names: list[str] | None = None
            for n, (i, j) in enumerate(owners):
                if n:
                    cur.nextset()
                result = cur.pgresult
                if result is None or result.status != TUPLES_OK:
                    continue
                if names is None:  # every result of one statement has the same columns
                    names = [column.name for column in cur.description or ()]
                rows = await cur.fetchall()
                results[i][j].extend(dict(zip(names, row, strict=True)) for row in rows)
        return results


async def _run(
    conn: Connection, sql: str, runs: Sequence[Params]
) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    """Queue ``sql`` once per mapping of ``runs`` on the connection's pipeline; the
    cursor that will hold the results, one set per run."""
    cur = _cursor(conn)
    if len(runs) == 1:
        await cur.execute(sql.encode(), runs[0])
    else:
        await cur.executemany(sql.encode(), runs, returning=True)
    return cur


def _cursor(conn: Connection) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    """A cursor for many results: binary (numbers need no parsing either side) and
    tuple rows, made dicts with column names read once, not once per result."""
    return conn.cursor(binary=True, row_factory=tuple_row)


async def _rows(cur: psycopg.AsyncCursor[Row]) -> list[Row]:
    """The rows of the cursor's current result ([] for a statement without any)."""
    result = cur.pgresult
    if result is None or result.status != TUPLES_OK:
        return []
    return await cur.fetchall()


def _undone(exc: psycopg.Error) -> bool:
    """Whether the group surely did not commit, so that its writes may run again: the
    server refused a statement, or the client did before sending it; not when the
    connection was lost or the server went down (no SQLSTATE, or classes 08 and 57P),
    where whether it committed is unknown."""
    if not isinstance(exc, psycopg.OperationalError):
        return True
    state = exc.sqlstate
    return state is not None and not state.startswith(("08", "57P"))


def _fail(writes: list[_Write], exc: BaseException, queued: _Notes) -> None:
    """The writes fail with ``exc``; their own notifications go with them (they were for
    a commit), and those ``queued`` are logged as dropped."""
    for write in writes:
        write.settle([], exc)
    if queued.payloads:
        log.warning("notifications could not be sent and are dropped: %s", exc)
