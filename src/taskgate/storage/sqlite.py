"""The embedded SQLite backend: WAL, ``synchronous=FULL``, group commit.

All writes of a process go through one writer thread. It takes every write waiting in
its queue, runs them in one transaction (each in its own savepoint, so one failing write
does not undo the others) and commits once: many submits, claims and completions share
one fsync, and a write's future resolves only after its commit is on disk.

Reads run on a per-thread read connection, straight on the caller's thread: an indexed
lookup costs tens of microseconds, less than a hop to another thread. WAL lets them run
while the writer writes, in this process or another.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgate.errors import ConfigurationError, StorageError, StorageUnavailable
from taskgate.storage import migrations
from taskgate.storage.bus import LocalBus, bus_directory
from taskgate.storage.connector import Listener, Params, Row, Step
from taskgate.storage.leadership import TIMEOUT, Candidate, Candidates, LeaseLeadership
from taskgate.storage.queries import Statements

MAX_BATCH = 2000
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _translate(exc: sqlite3.Error) -> StorageError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "unable to open" in text
    ):
        return StorageUnavailable(f"SQLite is busy: {text}")
    return StorageError(f"SQLite: {text}")


@dataclass(slots=True)
class _Job:
    steps: Sequence[Step]
    future: asyncio.Future[list[list[Row]]]
    loop: asyncio.AbstractEventLoop


class SQLiteConnector:
    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        apply_migrations: bool = True,
        bus: bool = True,
    ) -> None:
        self.path = Path(path)
        if synchronous.upper() not in SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.apply_migrations = apply_migrations
        self._sql = Statements("sqlite").sql
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_ready = threading.Event()
        self._writer_error: BaseException | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._use_bus = bus
        self._bus: LocalBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._candidates = Candidates()

    # -- connections --------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        conn.row_factory = _dict_row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_ready.clear()
        self._writer = threading.Thread(target=self._write_loop, name="taskgate-sqlite-writer")
        self._writer.daemon = True
        self._writer.start()
        await asyncio.to_thread(self._writer_ready.wait)
        if self._writer_error is not None:
            error, self._writer, self._writer_error = self._writer_error, None, None
            if isinstance(error, sqlite3.Error):
                raise _translate(error) from error
            raise error
        if self.apply_migrations:
            await self.migrate()
        self._loop = asyncio.get_running_loop()
        if self._use_bus:
            self._bus = LocalBus(bus_directory(self.path), self._deliver)
            self._bus.start(self._loop)

    async def close(self) -> None:
        await self._candidates.release_all()
        if self._bus is not None:
            self._bus.stop()
            self._bus = None
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        self._local = threading.local()

    # -- migrations ---------------------------------------------------------------

    async def migrate(self) -> list[str]:
        applied: list[str] = await self._call_writer(self._migrate)
        return applied

    def _migrate(self, conn: sqlite3.Connection) -> list[str]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            row = conn.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
            current = row["v"] or 0
            applied = []
            for migration in migrations.pending("sqlite", current):
                for statement in migrations.statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.name)
            conn.execute("COMMIT")
            return applied
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def schema_version(self) -> int:
        # a store never migrated has no schema_version table: it is at version 0
        if not await self.fetch_one_sql(
            "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ):
            return 0
        row = await self.fetch_one_sql("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    async def fetch_one_sql(self, sql: str) -> Row | None:
        try:
            result: Row | None = self._reader().execute(sql).fetchone()
            return result
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    # -- reads --------------------------------------------------------------------

    async def fetch_one(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> Row | None:
        try:
            row: Row | None = self._reader().execute(self._sql(query, fragments), params).fetchone()
            return row
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def fetch_all(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> list[Row]:
        try:
            rows: list[Row] = self._reader().execute(self._sql(query, fragments), params).fetchall()
            return rows
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    # -- writes -------------------------------------------------------------------

    async def execute(
        self, query: str, params: Params, *, notify: str | None = None, payload: str = ""
    ) -> list[Row]:
        return (await self.execute_batch([Step(query, params)], notify=notify, payload=payload))[0]

    async def execute_batch(
        self, steps: Sequence[Step], *, notify: str | None = None, payload: str = ""
    ) -> list[list[Row]]:
        if self._writer is None:
            raise StorageUnavailable("the SQLite store is not open")
        for step in steps:
            self._sql(step.query, step.fragments)  # unknown names fail here, not in the writer
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[list[Row]]] = loop.create_future()
        self._jobs.put(_Job(steps, future, loop))
        rows = await future
        if notify is not None:
            await self.notify(notify, payload)
        return rows

    async def _call_writer(self, fn: Any) -> Any:
        """Run ``fn(conn)`` on the writer thread, outside any batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job([Step("__call__", {"fn": fn})], future, loop))
        return await future

    def _run_steps(self, conn: sqlite3.Connection, steps: Sequence[Step]) -> list[list[Row]]:
        results: list[list[Row]] = []
        for step in steps:
            sql = self._sql(step.query, step.fragments)
            if step.many is not None:
                if "RETURNING" in sql:
                    rows: list[Row] = []
                    for params in step.many:
                        rows.extend(conn.execute(sql, params).fetchall())
                    results.append(rows)
                else:
                    conn.executemany(sql, step.many)
                    results.append([])
            else:
                results.append(conn.execute(sql, step.params).fetchall())
        return results

    def _write_loop(self) -> None:
        try:
            conn = self._connect()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or next(iter(mode.values())).lower() != "wal":
                raise ConfigurationError(f"{self.path}: SQLite could not switch to WAL mode")
        except BaseException as exc:
            self._writer_error = exc
            self._writer_ready.set()
            return
        self._writer_ready.set()
        stop = False
        while not stop:
            job = self._jobs.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            calls = [j for j in batch if j.steps and j.steps[0].query == "__call__"]
            writes = [j for j in batch if not (j.steps and j.steps[0].query == "__call__")]
            for call in calls:
                try:
                    _resolve(call, call.steps[0].params["fn"](conn))
                except BaseException as exc:
                    _fail(call, _translate(exc) if isinstance(exc, sqlite3.Error) else exc)
            if writes:
                self._commit_batch(conn, writes)
        conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[list[list[Row]] | BaseException] = []
        single = len(batch) == 1
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in batch:
                _fail(job, _translate(exc))
            return
        try:
            for job in batch:
                if single:
                    try:
                        outcomes.append(self._run_steps(conn, job.steps))
                    except sqlite3.Error as exc:
                        conn.execute("ROLLBACK")
                        _fail(job, _translate(exc))
                        return
                    continue
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append(self._run_steps(conn, job.steps))
                    conn.execute("RELEASE job")
                except (sqlite3.Error, ConfigurationError) as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append(_translate(exc) if isinstance(exc, sqlite3.Error) else exc)
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = _translate(exc) if isinstance(exc, sqlite3.Error) else exc
            for job in batch:
                _fail(job, error)
            return
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _fail(job, outcome)
            else:
                _resolve(job, outcome)

    # -- notifications ------------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> None:
        if self._bus is not None:
            self._bus.publish(channel, payload)
        else:
            self._deliver(channel, payload)

    def _deliver(self, channel: str, payload: str) -> None:
        for listener in list(self._listeners):
            listener(channel, payload)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- leadership ---------------------------------------------------------------

    def leadership(
        self, name: str, candidate: Candidate, *, timeout: float = TIMEOUT
    ) -> LeaseLeadership:
        """A candidate whose row in ``leaders`` is its lease, renewed at every
        confirmation and lost when not renewed for ``timeout`` seconds."""
        return self._candidates.add(LeaseLeadership(self, name, candidate, timeout=timeout))


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _resolve(job: _Job, value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the caller's loop has closed
        job.loop.call_soon_threadsafe(_set_result, job.future, value)


def _fail(job: _Job, exc: BaseException) -> None:
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(_set_exception, job.future, exc)
