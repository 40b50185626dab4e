"""The PostgreSQL backend: psycopg 3, a connection pool, LISTEN/NOTIFY.

Every statement runs on a pooled connection in autocommit mode; a batch
(`execute_batch`) runs in one transaction, all or nothing. Claims lock their rows with
``FOR UPDATE SKIP LOCKED`` (``sql/postgres.sql``), so any number of workers on any number
of machines claim concurrently without waiting for one another.

Notifications go through ``pg_notify`` on channels prefixed ``taskgate_``; one dedicated
connection LISTENs to them and hands each to the listeners on the event loop, this
process's own notifications included. It reconnects by itself when the server goes
away, and then tells listeners that tasks may be due (what was sent meanwhile is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from taskgate.errors import ConfigurationError, StorageError, StorageUnavailable
from taskgate.storage import migrations
from taskgate.storage.connector import (
    CHANNEL_CHANGED,
    CHANNEL_DUE,
    CHANNEL_KEYS,
    Listener,
    Params,
    Row,
    Step,
)
from taskgate.storage.queries import Query, load

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "taskgate_"
CHANNELS = (CHANNEL_DUE, CHANNEL_CHANGED, CHANNEL_KEYS)
MAX_PAYLOAD = 7900
"""Bytes of one NOTIFY payload (PostgreSQL refuses 8000 and more); longer id lists are
sent in several notifications, split at commas."""
MIGRATION_LOCK = 0x7461736B67617465  # "taskgate": the advisory lock migrations hold
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

Connection = psycopg.AsyncConnection[Row]


def translate(exc: BaseException) -> StorageError:
    """A driver error as taskgate's: unavailable (retry later) or plain storage error."""
    if isinstance(exc, StorageError):
        return exc
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout | OSError):
        return StorageUnavailable(f"PostgreSQL is unavailable: {text}")
    return StorageError(f"PostgreSQL: {text}")


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


class PostgresConnector:
    """A `Connector` on PostgreSQL (``postgresql://user@host:port/dbname``)."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        apply_migrations: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.apply_migrations = apply_migrations
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.queries: dict[str, Query] = load("postgres")
        self._sql_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._listeners: list[Listener] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=self.connect_timeout,
            open=False,
            name="taskgate",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
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

    # -- migrations ---------------------------------------------------------------

    async def migrate(self) -> list[str]:
        pool = self._require_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
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
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql.encode())
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- statements ---------------------------------------------------------------

    def _sql(self, name: str, fragments: tuple[str, ...] = ()) -> str:
        key = (name, fragments)
        sql = self._sql_cache.get(key)
        if sql is None:
            try:
                query = self.queries[name]
            except KeyError:
                raise ConfigurationError(f"no query named {name!r} for postgres") from None
            sql = self._sql_cache[key] = query.compose(fragments)
        return sql

    async def fetch_one(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> Row | None:
        sql = self._sql(query, fragments)
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql.encode(), params)
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def fetch_all(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> list[Row]:
        sql = self._sql(query, fragments)
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql.encode(), params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def execute(self, query: str, params: Params) -> list[Row]:
        return (await self.execute_batch([Step(query, params)]))[0]

    async def execute_batch(self, steps: Sequence[Step]) -> list[list[Row]]:
        statements = [(step, self._sql(step.query, step.fragments)) for step in steps]
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                if len(statements) == 1 and statements[0][0].many is None:
                    # one statement commits by itself: no BEGIN/COMMIT round trips
                    step, sql = statements[0]
                    return [await _run(conn, sql, step)]
                async with conn.transaction():
                    return [await _run(conn, sql, step) for step, sql in statements]
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- notifications ------------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> None:
        if channel not in CHANNELS:
            raise ConfigurationError(f"unknown notification channel {channel!r}")
        pool = self._require_pool()
        pieces = split_payload(payload)
        try:
            async with pool.connection() as conn:
                await conn.execute(
                    "SELECT pg_notify(%s, piece) FROM unnest(%s::text[]) AS piece",
                    (CHANNEL_PREFIX + channel, pieces),
                )
        except psycopg.Error as exc:
            raise translate(exc) from exc

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
                    self.url, autocommit=True, connect_timeout=int(self.connect_timeout)
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
                        self._deliver(CHANNEL_DUE, "")
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


async def _run(conn: Connection, sql: str, step: Step) -> list[Row]:
    query = sql.encode()
    async with conn.cursor() as cur:
        if step.many is None:
            await cur.execute(query, step.params)
            return await cur.fetchall() if cur.description else []
        rows: list[Row] = []
        if "RETURNING" not in sql:
            await cur.executemany(query, step.many)
            return rows
        for params in step.many:
            await cur.execute(query, params)
            rows.extend(await cur.fetchall())
        return rows
