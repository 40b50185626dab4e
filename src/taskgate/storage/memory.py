"""The in-memory backend: a test double that imitates the SQLite database.

Like procrastinate's ``InMemoryConnector``, it has one Python function per named query
(`taskgate.storage.memory_queries`, with the names of ``sql/sqlite.sql``) and answers
with the rows SQLite would give: every column of the table in table order, JSON columns
as text, times as float epoch seconds, integers for booleans. It enforces what the
schema enforces (``NOT NULL``, the unique ``upid`` and ``(tenant, idempotency_key)``;
``ON CONFLICT DO NOTHING`` then returns no row) and each conditional update tests
exactly what the SQL's ``WHERE`` tests, with SQL's NULL rules. It decides nothing:
domain rules stay in `TaskService`, so a test that passes here tests the service, not
this double.

A batch is atomic: every change is journaled and undone if a step fails. Each call
yields to the event loop once before it runs, so concurrent callers interleave between
statements as they would against a database, never inside one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taskgate.errors import ConfigurationError, StorageError, StorageUnavailable
from taskgate.storage import (
    memory_orchestration,
    memory_overview,
    memory_queries,
    memory_schedules,
    migrations,
)
from taskgate.storage.connector import Listener, Params, Row, Step
from taskgate.storage.leadership import TIMEOUT, Candidate, Candidates, LeaseLeadership
from taskgate.storage.memory_queries import (
    ENDED,
    Bound,
    Composed,
    Fragment,
    Statement,
    affinity,
)

QUERIES: dict[str, Statement] = {
    **memory_queries.QUERIES,
    **memory_orchestration.QUERIES,
    **memory_overview.QUERIES,
    **{fn.__name__: fn for fn in memory_schedules.SCHEDULE_QUERIES},
}
"""Every named query, by the name it has in ``sql/sqlite.sql``."""
FRAGMENTS: dict[str, dict[str, Fragment]] = {
    **memory_queries.FRAGMENTS,
    **memory_orchestration.FRAGMENTS,
    **memory_overview.FRAGMENTS,
    "list_schedules": memory_schedules.SCHEDULE_FRAGMENTS,
}
"""The optional ``WHERE`` fragments of the composed queries."""
COMPOSED: dict[str, Composed] = {
    **memory_queries.COMPOSED,
    **memory_orchestration.COMPOSED,
    **memory_overview.COMPOSED,
    **memory_schedules.SCHEDULE_COMPOSED,
}
WRITES = (
    frozenset(QUERIES)
    - memory_queries.READS
    - memory_orchestration.READS
    - memory_overview.READS
    - memory_schedules.SCHEDULE_READS
)
"""The statements a read-only connection refuses (SQLite's are ``query_only``)."""

Column = tuple[str, str, bool, Any]
"""(name, type affinity, NOT NULL, default), as ``PRAGMA table_info`` gives them."""

# The tables of sql/migrations/sqlite/*.sql, in column order. A unit test compares them
# with the schema the migrations build, so they cannot drift apart.
TASK_COLUMNS: tuple[Column, ...] = (
    ("id", "TEXT", False, None),
    ("upid", "TEXT", True, None),
    ("type", "TEXT", True, None),
    ("object_id", "TEXT", False, None),
    ("tenant", "TEXT", True, None),
    ("user_name", "TEXT", True, None),
    ("node", "TEXT", False, None),
    ("worker", "TEXT", False, None),
    ("state", "TEXT", True, None),
    ("detailed_state", "TEXT", False, None),
    ("progress", "REAL", False, None),
    ("progress_detail", "TEXT", False, None),
    ("message", "TEXT", False, None),
    ("params", "TEXT", True, None),
    ("result", "TEXT", False, None),
    ("error", "TEXT", False, None),
    ("warnings", "INTEGER", True, 0),
    ("created_resources", "TEXT", False, None),
    ("attempt", "INTEGER", True, 0),
    ("max_attempts", "INTEGER", True, 1),
    ("timeout", "REAL", False, None),
    ("retry_on_worker_loss", "INTEGER", True, 0),
    ("cancel_requested_at", "REAL", False, None),
    ("cancel_attempts", "INTEGER", True, 0),
    ("priority", "INTEGER", True, 0),
    ("idempotency_key", "TEXT", False, None),
    ("request_fingerprint", "TEXT", False, None),
    ("request_id", "TEXT", False, None),
    ("group_id", "TEXT", False, None),
    ("parent_id", "TEXT", False, None),
    ("schedule_id", "TEXT", False, None),
    ("labels", "TEXT", False, None),
    ("acknowledged_at", "REAL", False, None),
    ("acknowledged_by", "TEXT", False, None),
    ("created_at", "REAL", True, None),
    ("scheduled_at", "REAL", False, None),
    ("started_at", "REAL", False, None),
    ("updated_at", "REAL", True, None),
    ("finished_at", "REAL", False, None),
    ("lease_expires_at", "REAL", False, None),
    ("due_at", "REAL", False, None),
    ("archived", "INTEGER", True, 0),
    ("log_count", "INTEGER", True, 0),
    ("version", "INTEGER", True, 1),
    ("user_id", "INTEGER", False, None),  # 0002_api_keys
    ("resources", "TEXT", False, None),  # 0007_orchestration
    ("children", "TEXT", False, None),
    ("traceparent", "TEXT", False, None),  # 0009_tracing
)
HISTORY_COLUMNS: tuple[Column, ...] = tuple(  # 0007_orchestration: archived is 1 there
    (name, kind, notnull, 1 if name == "archived" else default)
    for name, kind, notnull, default in TASK_COLUMNS
)
RESOURCE_COLUMNS: tuple[Column, ...] = (  # 0007_orchestration
    ("task_id", "TEXT", True, None),
    ("mode", "TEXT", True, None),
    ("resource", "TEXT", True, None),
    ("capacity", "INTEGER", False, None),
    ("held", "INTEGER", True, 1),
)
LOG_COLUMNS: tuple[Column, ...] = (
    ("task_id", "TEXT", True, None),
    ("n", "INTEGER", True, None),
    ("ts", "REAL", True, None),
    ("level", "TEXT", True, None),
    ("text", "TEXT", True, None),
)
WORKER_COLUMNS: tuple[Column, ...] = (
    ("id", "TEXT", False, None),
    ("node", "TEXT", True, None),
    ("pid", "INTEGER", True, None),
    ("concurrency", "INTEGER", True, None),
    ("started_at", "REAL", True, None),
    ("heartbeat_at", "REAL", True, None),
)
KEY_COLUMNS: tuple[Column, ...] = (
    ("id", "TEXT", False, None),
    ("tenant", "TEXT", True, None),
    ("user_name", "TEXT", True, None),
    ("user_id", "INTEGER", False, None),
    ("role", "TEXT", True, None),
    ("secret_hash", "TEXT", True, None),
    ("description", "TEXT", False, None),
    ("created_at", "REAL", True, None),
    ("expires_at", "REAL", False, None),
    ("revoked_at", "REAL", False, None),
)
SECRET_COLUMNS: tuple[Column, ...] = (  # 0005_secrets
    ("name", "TEXT", False, None),
    ("value", "TEXT", True, None),
    ("created_at", "REAL", True, None),
)
LEADER_COLUMNS: tuple[Column, ...] = (  # 0004_leaders
    ("name", "TEXT", True, None),
    ("holder", "TEXT", True, None),
    ("node", "TEXT", True, None),
    ("pid", "INTEGER", True, None),
    ("since", "REAL", True, None),
    ("renewed_at", "REAL", True, None),
)
SCHEDULE_COLUMNS: tuple[Column, ...] = (  # 0006_schedules
    ("id", "TEXT", True, None),
    ("name", "TEXT", True, None),
    ("tenant", "TEXT", True, None),
    ("user_name", "TEXT", True, None),
    ("user_id", "INTEGER", False, None),
    ("type", "TEXT", True, None),
    ("params", "TEXT", True, None),
    ("options", "TEXT", False, None),
    ("recurrence", "TEXT", True, None),
    ("timezone", "TEXT", True, None),
    ("enabled", "INTEGER", True, 1),
    ("overlap", "TEXT", True, None),
    ("failure_threshold", "INTEGER", False, None),
    ("schedule_threshold", "REAL", False, None),
    ("consecutive_failures", "INTEGER", True, 0),
    ("total_run_count", "INTEGER", True, 0),
    ("remaining_runs", "INTEGER", False, None),
    ("first_run", "REAL", False, None),
    ("next_run", "REAL", False, None),
    ("last_run_at", "REAL", False, None),
    ("last_task_id", "TEXT", False, None),
    ("last_task_open", "INTEGER", True, 0),
    ("pending_run", "REAL", False, None),
    ("disabled_reason", "TEXT", False, None),
    ("created_at", "REAL", True, None),
    ("updated_at", "REAL", True, None),
    ("version", "INTEGER", True, 1),
)
LABEL_COLUMNS: tuple[Column, ...] = (  # 0008_overview
    ("task_id", "TEXT", True, None),
    ("key", "TEXT", True, None),
    ("value", "TEXT", True, None),
)
TABLES: dict[str, tuple[Column, ...]] = {
    "tasks": TASK_COLUMNS,
    "task_logs": LOG_COLUMNS,
    "workers": WORKER_COLUMNS,
    "api_keys": KEY_COLUMNS,
    "leaders": LEADER_COLUMNS,
    "secrets": SECRET_COLUMNS,
    "schedules": SCHEDULE_COLUMNS,
    "task_history": HISTORY_COLUMNS,
    "task_resources": RESOURCE_COLUMNS,
    "task_labels": LABEL_COLUMNS,
}


class MemoryConnector:
    """Tasks, logs and workers in dictionaries, answering the named queries of SQLite.

    Data lives as long as the object: closing and opening it again is a restart that
    keeps the store, as reopening a database file would.
    """

    dialect = "memory"

    def __init__(self, *, apply_migrations: bool = True) -> None:
        self.apply_migrations = apply_migrations
        self.tasks: dict[str, Row] = {}
        self.logs: dict[str, dict[int, Row]] = {}
        self.workers: dict[str, Row] = {}
        self.api_keys: dict[str, Row] = {}  # in insertion (rowid) order
        self.leaders: dict[str, Row] = {}
        self.secrets: dict[str, Row] = {}
        self.schedules: dict[str, Row] = {}
        self.history: dict[str, Row] = {}
        self.resources: dict[str, dict[tuple[str, str], Row]] = {}  # by task, (mode, resource)
        self.sorted_ids: list[str] = []  # task ids, sorted: ORDER BY id
        self.history_ids: list[str] = []  # the same for task_history
        self.history_upids: dict[str, str] = {}
        self.upid_index: dict[str, str] = {}
        self.key_index: dict[tuple[str, str], str] = {}
        self._version = 0
        self._open = False
        self._journal: list[tuple[str, Any, Row | None]] | None = None
        self._listeners: list[Listener] = []
        self._candidates = Candidates()

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        if self._open:
            return
        self._open = True
        if self.apply_migrations:
            await self.migrate()

    async def close(self) -> None:
        await self._candidates.release_all()
        self._open = False

    async def migrate(self) -> list[str]:
        """Bring the imitated schema to the newest SQLite migration."""
        pending = migrations.pending("sqlite", self._version)
        if pending:
            self._version = pending[-1].version
        return [m.name for m in pending]

    async def schema_version(self) -> int:
        return self._version

    # -- statements ----------------------------------------------------------------

    def _query(self, name: str, fragments: tuple[str, ...]) -> Statement:
        query = QUERIES.get(name)
        if query is None:
            raise ConfigurationError(f"no query named {name!r} for memory")
        known = FRAGMENTS.get(name)
        if fragments and known is None:
            raise ConfigurationError(f"query {name} takes no fragments")
        for fragment in fragments:
            if known is None or fragment not in known:
                raise ConfigurationError(f"query {name} has no fragment {fragment!r}")
        return query

    def _run(self, name: str, params: Params, fragments: tuple[str, ...]) -> list[Row]:
        query = self._query(name, fragments)
        if self._version < 1:
            raise StorageError("no such table: tasks")
        p = Bound(name, params)
        if fragments:
            return COMPOSED[name](self, p, fragments)
        return query(self, p)

    async def fetch_one(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> Row | None:
        rows = await self.fetch_all(query, params, fragments)
        return rows[0] if rows else None

    async def fetch_all(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> list[Row]:
        self._query(query, fragments)
        if query in WRITES:  # SQLite reads on a query_only connection
            raise StorageError("attempt to write a readonly database")
        await asyncio.sleep(0)
        return self._run(query, params, fragments)

    async def execute(
        self, query: str, params: Params, *, notify: str | None = None, payload: str = ""
    ) -> list[Row]:
        return (await self.execute_batch([Step(query, params)], notify=notify, payload=payload))[0]

    async def execute_batch(
        self, steps: Sequence[Step], *, notify: str | None = None, payload: str = ""
    ) -> list[list[Row]]:
        if notify is not None:
            done = await self.execute_batch(steps)
            await self.notify(notify, payload)
            return done
        if not self._open:
            raise StorageUnavailable("the memory store is not open")
        for step in steps:
            self._query(step.query, step.fragments)  # unknown names fail before any change
        await asyncio.sleep(0)
        self._journal = []
        try:
            results: list[list[Row]] = []
            for step in steps:
                if step.many is not None:
                    rows: list[Row] = []
                    for params in step.many:
                        rows.extend(self._run(step.query, params, step.fragments))
                    results.append(rows)
                else:
                    results.append(self._run(step.query, step.params, step.fragments))
        except BaseException:
            journal, self._journal = self._journal, None
            for table, key, old in reversed(journal):
                self._store(table, key, old)
            raise
        self._journal = None
        return results

    # -- notifications -----------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> None:
        # Delivered on a later loop turn, as a bus delivers: never inside the caller.
        asyncio.get_running_loop().call_soon(self._deliver, channel, payload)

    def _deliver(self, channel: str, payload: str) -> None:
        for listener in list(self._listeners):
            listener(channel, payload)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- tables ------------------------------------------------------------------

    def write(self, table: str, key: Any, row: Row | None) -> None:
        """Replace (or with None, delete) one row, journaled for rollback.

        Rows are never changed in place: the journal keeps the old object.
        """
        if self._journal is not None:
            self._journal.append((table, key, self._current(table, key)))
        self._store(table, key, row)

    def _current(self, table: str, key: Any) -> Row | None:
        if table == "tasks":
            return self.tasks.get(key)
        if table == "task_logs":
            return self.logs.get(key[0], {}).get(key[1])
        if table == "api_keys":
            return self.api_keys.get(key)
        if table == "leaders":
            return self.leaders.get(key)
        if table == "secrets":
            return self.secrets.get(key)
        if table == "schedules":
            return self.schedules.get(key)
        if table == "task_history":
            return self.history.get(key)
        if table == "task_resources":
            return self.resources.get(key[0], {}).get(key[1:])
        return self.workers.get(key)

    def _store(self, table: str, key: Any, row: Row | None) -> None:
        if table == "tasks":
            old = self.tasks.get(key)
            if old is not None:
                self.upid_index.pop(old["upid"], None)
                if old["idempotency_key"] is not None:
                    self.key_index.pop((old["tenant"], old["idempotency_key"]), None)
            if row is None:
                if old is not None:
                    del self.tasks[key]
                    del self.sorted_ids[bisect.bisect_left(self.sorted_ids, key)]
                return
            if old is None:
                bisect.insort(self.sorted_ids, key)
            self.tasks[key] = row  # an update keeps its place: dict order is rowid order
            self.upid_index[row["upid"]] = key
            if row["idempotency_key"] is not None:
                self.key_index[(row["tenant"], row["idempotency_key"])] = key
        elif table == "task_logs":
            lines = self.logs.setdefault(key[0], {})
            if row is None:
                lines.pop(key[1], None)
                if not lines:
                    del self.logs[key[0]]
            else:
                lines[key[1]] = row
        elif table == "api_keys":
            if row is None:
                self.api_keys.pop(key, None)
            else:
                self.api_keys[key] = row
        elif table == "leaders":
            if row is None:
                self.leaders.pop(key, None)
            else:
                self.leaders[key] = row
        elif table == "task_history":
            old = self.history.get(key)
            if old is not None:
                self.history_upids.pop(old["upid"], None)
            if row is None:
                if old is not None:
                    del self.history[key]
                    del self.history_ids[bisect.bisect_left(self.history_ids, key)]
                return
            if old is None:
                bisect.insort(self.history_ids, key)
            self.history[key] = row
            self.history_upids[row["upid"]] = key
        elif table == "task_resources":
            held = self.resources.setdefault(key[0], {})
            if row is None:
                held.pop(key[1:], None)
                if not held:
                    del self.resources[key[0]]
            else:
                held[key[1:]] = row
        elif table in ("secrets", "schedules"):
            rows = self.secrets if table == "secrets" else self.schedules
            if row is None:
                rows.pop(key, None)
            else:
                rows[key] = row
        elif row is None:
            self.workers.pop(key, None)
        else:
            self.workers[key] = row

    def make_row(self, table: str, values: Mapping[str, Any], base: Row | None = None) -> Row:
        """A complete row: ``base`` (or the defaults) with ``values`` stored over it."""
        columns = TABLES[table]
        row: Row = dict(base) if base is not None else {name: dflt for name, _, _, dflt in columns}
        for name, kind, notnull, _ in columns:
            if name in values:
                row[name] = affinity(kind, values[name])
            if notnull and row[name] is None:
                raise StorageError(f"NOT NULL constraint failed: {table}.{name}")
        return row

    def update_task(self, old: Row, values: Mapping[str, Any]) -> Row:
        """Store ``old`` with ``values`` over it; return a copy of the new row.

        As the trigger ``tasks_release_resources`` does, an update that sets the state
        of a task with reservations to an ended one releases them."""
        row = self.make_row("tasks", values, old)
        self.write("tasks", old["id"], row)
        if "state" in values and row["resources"] is not None and row["state"] in ENDED:
            for (mode, resource), held in list(self.resources.get(row["id"], {}).items()):
                if held["held"] == 1:
                    released = self.make_row("task_resources", {"held": 0}, held)
                    self.write("task_resources", (row["id"], mode, resource), released)
        return dict(row)

    def select_tasks(self, predicate: Callable[[Row], bool]) -> list[Row]:
        """The tasks ``predicate`` selects, in insertion (rowid) order."""
        return [row for row in self.tasks.values() if predicate(row)]

    @property
    def task_labels(self) -> dict[tuple[str, str], Row]:
        """The rows of ``task_labels``, derived from the tasks (SQLite keeps them with
        triggers; labels never change): (task id, key) -> row."""
        return memory_overview.label_rows(self)

    # -- leadership ----------------------------------------------------------------

    def leadership(
        self, name: str, candidate: Candidate, *, timeout: float = TIMEOUT
    ) -> LeaseLeadership:
        """A candidate whose row in ``leaders`` is its lease, as on SQLite."""
        return self._candidates.add(LeaseLeadership(self, name, candidate, timeout=timeout))


__all__ = ["FRAGMENTS", "QUERIES", "TABLES", "WRITES", "MemoryConnector"]
