"""The PostgreSQL backend: psycopg 3, a connection pool, LISTEN/NOTIFY.

Every read runs on a pooled connection in autocommit mode. Writes (a batch,
`execute_batch`, runs in one transaction, all or nothing) and notifications go through
`GroupCommit` (`taskgate.storage.group_commit`): those asked for at the same moment share
one transaction, one round trip and one WAL flush. Claims lock their rows with
``FOR UPDATE SKIP LOCKED`` (``sql/postgres.sql``), so any number of workers on any number
of machines claim concurrently without waiting for one another.

Notifications go through ``pg_notify`` on channels prefixed ``taskgate_``; one dedicated
connection LISTENs to them and hands each to the listeners on the event loop, this
process's own notifications included. It reconnects by itself when the server goes
away, and then tells listeners on every channel to look again (what was sent meanwhile
is lost: an empty payload means "anything may have changed").

When the server restarts, or cannot be reached:

- a pooled connection the server has closed is never handed to a request: before use,
  each is checked for pending input (an idle connection has none; a closed one has an
  end of file or the server's goodbye), a poll with no round trip, and replaced;
- a request that finds the server gone fails at once with `StorageUnavailable` (HTTP
  503 with Retry-After) instead of waiting ``pool_timeout`` for a connection: while an
  outage is suspected and no connection is idle, a request first tries a connection of
  its own, at most one every `PROBE_INTERVAL` (refused: it fails in a millisecond);
- the pool gives up a background reconnection after `RECONNECT_FOR` seconds, and the
  next request starts another: connections come back within about a second of the
  server, not after an exponential backoff grown during the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import AsyncIterator, Sequence

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from taskgate.errors import ConfigurationError, StorageError, StorageUnavailable
from taskgate.storage import migrations
from taskgate.storage.connector import (
    CHANNEL_CHANGED,
    CHANNEL_DUE,
    CHANNEL_KEYS,
    CHANNEL_SCHEDULES,
    Listener,
    Params,
    Row,
    Step,
)
from taskgate.storage.group_commit import GroupCommit
from taskgate.storage.leadership import TIMEOUT, Candidate, Candidates, LockedLeadership
from taskgate.storage.postgres_leadership import AdvisoryLock
from taskgate.storage.queries import Statements

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "taskgate_"
CHANNELS = (CHANNEL_DUE, CHANNEL_CHANGED, CHANNEL_KEYS, CHANNEL_SCHEDULES)
MIGRATION_LOCK = 0x7461736B67617465  # "taskgate": the advisory lock migrations hold
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds between tries to re-establish the LISTEN connection."""
RECONNECT_FOR = 2.0
"""Seconds the pool keeps retrying one lost connection in the background (attempts 1 s
apart at most) before giving up; a request waiting for a connection starts a new try."""
PROBE_INTERVAL = 0.2
"""Seconds between connection tries of requests while the server seems down."""

Connection = psycopg.AsyncConnection[Row]


def translate(exc: BaseException) -> StorageError:
    """A driver error as taskgate's: unavailable (retry later) or plain storage error."""
    if isinstance(exc, StorageError):
        return exc
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout | OSError):
        return StorageUnavailable(f"PostgreSQL is unavailable: {text}")
    return StorageError(f"PostgreSQL: {text}")


class PostgresConnector:
    """A `Connector` on PostgreSQL (``postgresql://user@host:port/dbname``)."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        apply_migrations: bool = True,
        pool_size: int = 10,
        pool_timeout: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if pool_size < 1 or pool_timeout <= 0 or connect_timeout <= 0:
            raise ConfigurationError(
                "PostgreSQL: pool_size must be at least 1, and the timeouts more than 0"
            )
        self.url = url
        self.apply_migrations = apply_migrations
        self.pool_size = pool_size
        """Most connections this process opens for statements (LISTEN has its own)."""
        self.pool_timeout = pool_timeout
        """Seconds a statement waits for a free connection before failing as unavailable."""
        self.connect_timeout = connect_timeout
        """Seconds to wait for the server when opening, and for one new connection."""
        self._sql = Statements("postgres").sql
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._listeners: list[Listener] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._outage = False
        """A request found the server gone: until one gets through, requests that find
        no idle connection try their own first (`_probe`) instead of waiting."""
        self._next_probe = 0.0
        self._candidates = Candidates()
        self._group = GroupCommit(self._connection)

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": self._libpq_timeout(),
            },
            timeout=self.pool_timeout,
            reconnect_timeout=RECONNECT_FOR,
            open=False,
            name="taskgate",
        )
        try:
            await pool.open()
            await self._first_connection(pool)
        except psycopg.Error as exc:
            await pool.close()
            raise translate(exc) from exc
        self._pool = pool
        try:
            if self.apply_migrations:
                await self.migrate()
            self._listening = asyncio.Event()
            self._listen_task = asyncio.create_task(self._listen(), name="taskgate-pg-listen")
            try:
                await asyncio.wait_for(self._listening.wait(), self.connect_timeout)
            except TimeoutError:
                raise StorageUnavailable(
                    "PostgreSQL: the LISTEN connection did not start"
                ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._group.drain()  # queued notifications are sent, not dropped
        await self._candidates.release_all()
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
            self._listen_task = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _require_pool(self) -> psycopg_pool.AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise StorageUnavailable("the PostgreSQL store is not open")
        return self._pool

    def _libpq_timeout(self) -> int:
        """``connect_timeout`` as libpq takes it: whole seconds, 2 at least."""
        return max(2, round(self.connect_timeout))

    # -- connections --------------------------------------------------------------

    async def _first_connection(self, pool: psycopg_pool.AsyncConnectionPool[Connection]) -> None:
        """Wait up to ``connect_timeout`` for the server. In short waits: each starts a
        connection try if the last one gave up (after `RECONNECT_FOR`). If none gets
        through, one more try of our own raises the server's reason (refused, a wrong
        password...), not a pool timeout."""
        deadline = time.monotonic() + self.connect_timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                conn = await pool.getconn(timeout=min(left, RECONNECT_FOR / 2))
            except psycopg_pool.PoolTimeout:
                continue
            await pool.putconn(conn)
            return
        conn = await psycopg.AsyncConnection.connect(
            self.url, connect_timeout=self._libpq_timeout()
        )
        await conn.close()  # it answers now, after all

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled connection the server has not closed, given back afterwards.

        Raises `psycopg.Error` (translated by the callers): soon, when the server is
        down; after ``pool_timeout``, when every connection stays busy.
        """
        pool = self._require_pool()
        conn = await self._acquire(pool)
        try:
            yield conn
        except psycopg.OperationalError as exc:
            if conn.broken:
                self._lost(exc)
            raise
        finally:
            await pool.putconn(conn)
        if self._outage:
            self._back()

    async def _acquire(self, pool: psycopg_pool.AsyncConnectionPool[Connection]) -> Connection:
        while True:
            if self._outage and not pool.get_stats().get("pool_available"):
                await self._probe()
            try:
                conn = await pool.getconn()
            except psycopg_pool.PoolTimeout as exc:
                self._lost(exc)
                raise
            if not _closed_by_server(conn):
                return conn
            # A restart, or this one session ended: `_probe` tells which if no other
            # connection is idle. Closed, the connection is replaced by the pool.
            self._lost("the server closed an idle connection")
            try:
                await conn.close()
            finally:
                await pool.putconn(conn)

    async def _probe(self) -> None:
        """Whether the server answers now, on a connection of our own: raise
        `psycopg.OperationalError` if not (or if another request has just tried)."""
        now = time.monotonic()
        if now < self._next_probe:
            raise psycopg.OperationalError("the server is unreachable; reconnecting")
        self._next_probe = now + PROBE_INTERVAL
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=self._libpq_timeout()
        )
        await conn.close()
        self._back()

    def _lost(self, reason: object) -> None:
        if not self._outage:
            self._outage = True
            log.warning(
                "PostgreSQL does not answer (%s): until it does, a request that finds no"
                " idle connection tries one of its own first, and fails at once (503) if"
                " that is refused",
                reason,
            )

    def _back(self) -> None:
        self._outage = False
        log.info("PostgreSQL answers again")

    # -- migrations ---------------------------------------------------------------

    async def migrate(self) -> list[str]:
        try:
            async with self._connection() as conn, conn.transaction():
                # concurrent starters wait here, then find the work done
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at DOUBLE PRECISION NOT NULL)"
                )
                cur = await conn.execute("SELECT MAX(version) AS v FROM schema_version")
                row = await cur.fetchone()
                current = int(row["v"] or 0) if row else 0
                applied: list[str] = []
                for migration in migrations.pending("postgres", current):
                    for statement in migrations.statements(migration.sql):
                        await conn.execute(statement.encode())
                    await conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, time.time()),
                    )
                    applied.append(migration.name)
                return applied
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def schema_version(self) -> int:
        row = await self._fetch_sql("SELECT to_regclass('schema_version') IS NOT NULL AS x")
        if not row or not row["x"]:
            return 0
        row = await self._fetch_sql("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    async def _fetch_sql(self, sql: str) -> Row | None:
        try:
            async with self._connection() as conn:
                cur = await conn.execute(sql.encode())
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- statements ---------------------------------------------------------------

    async def fetch_one(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> Row | None:
        sql = self._sql(query, fragments)
        try:
            async with self._connection() as conn:
                cur = await conn.execute(sql.encode(), params)
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def fetch_all(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> list[Row]:
        sql = self._sql(query, fragments)
        try:
            async with self._connection() as conn:
                cur = await conn.execute(sql.encode(), params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def execute(
        self, query: str, params: Params, *, notify: str | None = None, payload: str = ""
    ) -> list[Row]:
        return (await self.execute_batch([Step(query, params)], notify=notify, payload=payload))[0]

    async def execute_batch(
        self, steps: Sequence[Step], *, notify: str | None = None, payload: str = ""
    ) -> list[list[Row]]:
        statements = [(self._sql(step.query, step.fragments), step) for step in steps]
        # the notification goes in the same transaction: heard as it commits
        notes = [] if notify is None else [(self._channel(notify), payload)]
        try:
            return await self._group.write(statements, notes)
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- notifications ------------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> None:
        self._require_pool()
        # queued: sent with the next group of writes (or alone), after this call returns
        self._group.notify(self._channel(channel), payload)

    @staticmethod
    def _channel(channel: str) -> str:
        if channel not in CHANNELS:
            raise ConfigurationError(f"unknown notification channel {channel!r}")
        return CHANNEL_PREFIX + channel

    def _deliver(self, channel: str, payload: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(channel, payload)
            except Exception:  # one failing listener must not deafen the others
                log.exception("a notification listener failed")

    async def _listen(self) -> None:
        """Keep one connection LISTENing; reconnect whenever it is lost."""
        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=self._libpq_timeout()
                )
            except (psycopg.Error, OSError) as exc:
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("cannot LISTEN on PostgreSQL (%s); again in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            try:
                async with conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {CHANNEL_PREFIX}{channel}".encode())
                    if failures or self._listening.is_set():
                        # what was notified while we were away is lost: look again
                        for channel in CHANNELS:
                            self._deliver(channel, "")
                    failures = 0
                    self._listening.set()
                    async for note in conn.notifies():
                        name = note.channel.removeprefix(CHANNEL_PREFIX)
                        self._deliver(name, note.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("the PostgreSQL LISTEN connection was lost: %s", exc)
                await asyncio.sleep(RECONNECT_DELAYS[0])

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- leadership ---------------------------------------------------------------

    def leadership(
        self, name: str, candidate: Candidate, *, timeout: float = TIMEOUT
    ) -> LockedLeadership:
        """A candidate whose advisory lock, on a connection of its own, decides
        (`taskgate.storage.postgres_leadership`): freed when its holder dies, or stops
        confirming for ``timeout`` seconds."""
        lock = AdvisoryLock(self.url, name, timeout=timeout, connect_timeout=self.connect_timeout)
        return self._candidates.add(LockedLeadership(self, lock, name, candidate))


def _closed_by_server(conn: Connection) -> bool:
    """Whether the server has closed this idle connection (or is closing it).

    An idle connection has nothing to read: if it has, that is an end of file or the
    server's goodbye (``terminating connection due to administrator command``). One
    poll, no round trip. (An unsolicited ParameterStatus, after a reload that changed a
    reported setting, also counts: the connection is replaced, which does no harm.)
    """
    if conn.closed:
        return True
    poller = select.poll()  # not select(): a busy API process has fds past FD_SETSIZE
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))
