"""The search, worker and overview queries of ``sql/sqlite.sql`` (schema 8), one Python
function each, for `MemoryConnector` (the rules of `taskgate.storage.memory_queries`).

``task_labels`` is not stored here: SQLite's triggers keep a row per label of every task
in either table, and labels never change, so the memory backend derives the same rows
from the tasks themselves (`label_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from taskgate.storage.connector import Row
from taskgate.storage.memory_queries import (
    ACTIVE,
    ENDED,
    LIST_FRAGMENTS,
    Composed,
    Fragment,
    Statement,
    by_tenant,
    newest_first,
)
from taskgate.storage.memory_sql import Bound, json_each, sql_eq, sql_le, sql_lt

if TYPE_CHECKING:
    from taskgate.storage.memory import MemoryConnector


def label_rows(db: MemoryConnector) -> dict[tuple[str, str], Row]:
    """The rows of ``task_labels``: (task id, key) -> {task_id, key, value}, for every
    text label of every task in either table."""
    rows: dict[tuple[str, str], Row] = {}
    for table in (db.tasks, db.history):
        for task_id, task in table.items():
            if task["labels"] is None:
                continue
            for key, value in json_each(task["labels"]):
                if isinstance(value, str):
                    row = {"task_id": task_id, "key": key, "value": value}
                    rows.setdefault((task_id, key), row)
    return dict(sorted(rows.items()))  # the primary key's order


# -- search ---------------------------------------------------------------------------


def _found(db: MemoryConnector, table: dict[str, Row], p: Bound) -> set[str]:
    """The ids of ``search_tasks``' ``found``: by id, object id, label value, label."""
    q_id, q, q_key, q_value = p["q_id"], p["q"], p["q_key"], p["q_value"]
    found: set[str] = set()
    if q_id is not None:
        found.add(q_id)
    found.update(i for i, row in table.items() if sql_eq(row["object_id"], q))
    for row in label_rows(db).values():
        if sql_eq(row["value"], q) or (sql_eq(row["value"], q_value) and sql_eq(row["key"], q_key)):
            found.add(row["task_id"])
    return found


def _search(
    db: MemoryConnector, table: dict[str, Row], p: Bound, fragments: tuple[str, ...]
) -> list[Row]:
    found = _found(db, table, p)
    return newest_first(sorted(i for i in found if i in table), table, p, fragments)


def _search_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _search(db, db.tasks, p, fragments)


def search_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _search_tasks(db, p, ())


def _search_history(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _search(db, db.history, p, fragments)


def search_history(db: MemoryConnector, p: Bound) -> list[Row]:
    return _search_history(db, p, ())


# -- workers and the overview ---------------------------------------------------------------


def running_per_worker(db: MemoryConnector, p: Bound) -> list[Row]:
    counts: dict[str, int] = {}
    for row in db.tasks.values():
        if row["state"] in ACTIVE and row["worker"] is not None:
            counts[row["worker"]] = counts.get(row["worker"], 0) + 1
    return [{"worker": w, "running": n} for w, n in sorted(counts.items())]


def _state_counts(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    tests = [TENANT_FRAGMENTS[name](p) for name in fragments]
    counts: dict[str, int] = {}
    for row in db.tasks.values():
        if all(test(row) for test in tests):
            counts[row["state"]] = counts.get(row["state"], 0) + 1
    return [{"state": s, "count": n} for s, n in sorted(counts.items())]


def state_counts(db: MemoryConnector, p: Bound) -> list[Row]:
    return _state_counts(db, p, ())


def _due(row: Row, now: object) -> bool:
    return row["state"] == "queued" or (row["state"] == "scheduled" and sql_le(row["due_at"], now))


def _waiting(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    """``(state = 'queued' OR (state = 'scheduled' AND due_at <= :now)) AND <where>``."""
    now = p["now"]
    tests = [TENANT_FRAGMENTS[name](p) for name in fragments]
    return [row for row in db.tasks.values() if _due(row, now) and all(test(row) for test in tests)]


def _queue_depth(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return [{"count": len(_waiting(db, p, fragments))}]


def queue_depth(db: MemoryConnector, p: Bound) -> list[Row]:
    return _queue_depth(db, p, ())


def _oldest_waiting(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    rows = _waiting(db, p, fragments)
    if not rows:
        return []
    # ORDER BY due_at, id: SQLite sorts NULL first
    row = min(rows, key=lambda r: (r["due_at"] is not None, r["due_at"] or 0.0, r["id"]))
    return [{name: row[name] for name in ("id", "type", "created_at", "due_at")}]


def oldest_waiting(db: MemoryConnector, p: Bound) -> list[Row]:
    return _oldest_waiting(db, p, ())


def _ended(rows: Iterable[Row], p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    start, end, size = p["window_start"], p["window_end"], p["bucket_seconds"]
    tests = [TENANT_FRAGMENTS[name](p) for name in fragments]
    counts: dict[tuple[int, str], int] = {}
    for row in rows:
        finished = row["finished_at"]
        if not (sql_le(start, finished) and sql_lt(finished, end)) or row["state"] not in ENDED:
            continue
        if all(test(row) for test in tests):
            key = (int((finished - start) / size), row["state"])  # CAST truncates; >= 0 here
            counts[key] = counts.get(key, 0) + 1
    return [{"bucket": b, "state": s, "count": n} for (b, s), n in sorted(counts.items())]


def _ended_counts(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _ended(db.tasks.values(), p, fragments)


def ended_counts(db: MemoryConnector, p: Bound) -> list[Row]:
    return _ended_counts(db, p, ())


def _archived_ended_counts(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _ended(db.history.values(), p, fragments)


def archived_ended_counts(db: MemoryConnector, p: Bound) -> list[Row]:
    return _archived_ended_counts(db, p, ())


TENANT_FRAGMENTS: dict[str, Fragment] = {"tenant": by_tenant}

QUERIES: dict[str, Statement] = {
    fn.__name__: fn
    for fn in (
        search_tasks,
        search_history,
        running_per_worker,
        state_counts,
        queue_depth,
        oldest_waiting,
        ended_counts,
        archived_ended_counts,
    )
}
FRAGMENTS: dict[str, dict[str, Fragment]] = {
    "search_tasks": LIST_FRAGMENTS,
    "search_history": LIST_FRAGMENTS,
    "state_counts": TENANT_FRAGMENTS,
    "queue_depth": TENANT_FRAGMENTS,
    "oldest_waiting": TENANT_FRAGMENTS,
    "ended_counts": TENANT_FRAGMENTS,
    "archived_ended_counts": TENANT_FRAGMENTS,
}
COMPOSED: dict[str, Composed] = {
    "search_tasks": _search_tasks,
    "search_history": _search_history,
    "state_counts": _state_counts,
    "queue_depth": _queue_depth,
    "oldest_waiting": _oldest_waiting,
    "ended_counts": _ended_counts,
    "archived_ended_counts": _archived_ended_counts,
}
READS = frozenset(QUERIES)
