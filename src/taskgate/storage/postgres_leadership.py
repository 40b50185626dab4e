"""Leadership on PostgreSQL: `AdvisoryLock`, held in one long transaction on a
connection of the candidate's own (not the pool's). It decides who leads; the holder's
row in ``leaders`` only shows it (`taskgate.storage.leadership.LockedLeadership`).

Why this shape:

- A *transaction* advisory lock in a transaction left open, with
  ``idle_in_transaction_session_timeout`` set for that transaction only
  (``set_config(..., true)``). A holder that dies closes its connection: the lock is
  freed at once. A holder that freezes (SIGSTOP, a stalled event loop) keeps its socket
  open but stops confirming; its session then sits idle in its transaction and the
  server ends it after the timeout, freeing the lock. `confirm` takes the lock again
  inside the same transaction (a no-op for the holder), which also resets that timer.
- TCP keepalives and ``tcp_user_timeout`` on the connection notice a vanished server or
  network, and a statement that does not come back within the timeout counts as lost:
  the holder steps down rather than wait.
- Statements carry no parameters and are never prepared (the simple query protocol):
  after an extended-protocol statement the idle session keeps a snapshot, whose xmin
  would hold back vacuum in the whole database for as long as the role is held. A test
  checks that the holder's session has no xmin.

Every candidate keeps one connection, shown as application ``taskgate leader``; the
holder's is ``idle in transaction`` (no transaction id, no snapshot) as long as it
leads. Through PgBouncer, this connection needs session pooling, or transaction pooling
(the role lives inside one transaction, so its server connection stays with it; not
tested here); statement pooling cannot hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import psycopg
from psycopg import sql

from taskgate.errors import StorageUnavailable
from taskgate.storage.leadership import check_name

BEGIN = sql.SQL("BEGIN")
ROLLBACK = sql.SQL("ROLLBACK")


def lock_key(name: str) -> int:
    """The advisory lock key of leadership ``name`` (64 bits of a hash of it)."""
    digest = hashlib.sha256(f"taskgate leader {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """The lock of role ``name`` on the PostgreSQL database at ``url``, for one candidate."""

    def __init__(self, url: str, name: str, *, timeout: float, connect_timeout: float) -> None:
        self.name = check_name(name)
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        key = sql.Literal(lock_key(name))
        self._acquire = sql.SQL(
            "SELECT set_config('idle_in_transaction_session_timeout', {}, true),"
            " pg_try_advisory_xact_lock({})"
        ).format(sql.Literal(str(max(1, round(timeout * 1000)))), key)
        self._confirm = sql.SQL("SELECT pg_try_advisory_xact_lock({})").format(key)
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._held = False

    async def try_acquire(self) -> bool:
        if self._held:
            return await self.confirm()
        try:
            conn = await self._connection()
            async with asyncio.timeout(self.timeout):
                await conn.execute(BEGIN)
                held = await _true(conn, self._acquire)
                if not held:
                    await conn.execute(ROLLBACK)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self.release()
            text = str(exc).strip() or type(exc).__name__
            raise StorageUnavailable(f"PostgreSQL is unavailable: {text}") from exc
        self._held = held
        return held

    async def confirm(self) -> bool:
        conn = self._conn
        if not self._held or conn is None:
            return False
        try:
            async with asyncio.timeout(self.timeout):
                held = await _true(conn, self._confirm)
        except (psycopg.Error, OSError, TimeoutError):
            held = False
        if not held:
            await self.release()
        return held

    async def release(self) -> None:
        """End the transaction by closing the connection: the lock goes with it."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            seconds = max(1, round(self.timeout))
            self._conn = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name="taskgate leader",
                keepalives=1,
                keepalives_idle=seconds,
                keepalives_interval=1,
                keepalives_count=3,
                tcp_user_timeout=seconds * 1000,
            )
        return self._conn


async def _true(conn: psycopg.AsyncConnection[tuple[Any, ...]], query: sql.Composed) -> bool:
    """Whether ``query``'s last column came back true."""
    cur = await conn.execute(query)
    row = await cur.fetchone()
    return bool(row and row[-1])
