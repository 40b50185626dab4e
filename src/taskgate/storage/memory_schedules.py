"""The schedule queries of ``sql/sqlite.sql``, one Python function each, for
`MemoryConnector` (the same rules as `taskgate.storage.memory_queries`: every parameter
the SQL binds is read, SQL's NULL rules hold, rows are never changed in place)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskgate.storage.connector import Row
from taskgate.storage.memory_queries import (
    ENDED,
    TASK_VALUES,
    Composed,
    Fragment,
    Statement,
    by_tenant,
    by_types,
    insert_task,
)
from taskgate.storage.memory_sql import Bound, sql_eq, sql_le, sql_limit, sql_lt

if TYPE_CHECKING:
    from taskgate.storage.memory import MemoryConnector

SCHEDULE_VALUES = (
    "id", "name", "tenant", "user_name", "user_id", "type", "params", "options",
    "recurrence", "timezone", "enabled", "overlap", "failure_threshold",
    "schedule_threshold", "remaining_runs", "first_run", "next_run", "disabled_reason",
)  # fmt: skip


def insert_schedule(db: MemoryConnector, p: Bound) -> list[Row]:
    values = {name: p[name] for name in SCHEDULE_VALUES}
    values["created_at"] = values["updated_at"] = p["now"]
    row = db.make_row("schedules", values)
    taken = any(
        r["tenant"] == row["tenant"] and r["name"] == row["name"] for r in db.schedules.values()
    )
    if row["id"] in db.schedules or taken:  # ON CONFLICT DO NOTHING
        return []
    db.write("schedules", row["id"], row)
    return [dict(row)]


def get_schedule(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.schedules.get(p["id"])
    return [] if row is None else [dict(row)]


def get_schedule_by_name(db: MemoryConnector, p: Bound) -> list[Row]:
    tenant, name = p["tenant"], p["name"]
    return [
        dict(r)
        for r in db.schedules.values()
        if sql_eq(r["tenant"], tenant) and sql_eq(r["name"], name)
    ]


def _list_schedules(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    tests = [SCHEDULE_FRAGMENTS[name](p) for name in fragments]
    limit = sql_limit(p["limit"])
    rows = sorted(
        (r for r in db.schedules.values() if all(test(r) for test in tests)),
        key=lambda r: (r["name"], r["id"]),
    )
    return [dict(r) for r in (rows if limit is None else rows[:limit])]


def list_schedules(db: MemoryConnector, p: Bound) -> list[Row]:
    return _list_schedules(db, p, ())


def _after(p: Bound) -> Callable[[Row], bool]:
    name, schedule_id = p["after_name"], p["after_id"]
    return lambda row: (
        sql_lt(name, row["name"]) or (sql_eq(row["name"], name) and sql_lt(schedule_id, row["id"]))
    )


def _enabled(p: Bound) -> Callable[[Row], bool]:
    enabled = p["enabled"]
    return lambda row: sql_eq(row["enabled"], enabled)


SCHEDULE_FRAGMENTS: dict[str, Fragment] = {
    "tenant": by_tenant,
    "after": _after,
    "enabled": _enabled,
    "types": by_types,
}


def _update(db: MemoryConnector, p: Bound, values: dict[str, Any]) -> list[Row]:
    """``UPDATE schedules SET ... WHERE id = :id AND version = :version RETURNING *``."""
    old = db.schedules.get(p["id"])
    version, now = p["version"], p["now"]
    if old is None or not sql_eq(old["version"], version):
        return []
    values["updated_at"] = now
    values["version"] = old["version"] + 1
    row = db.make_row("schedules", values, old)
    db.write("schedules", old["id"], row)
    return [dict(row)]


def update_schedule(db: MemoryConnector, p: Bound) -> list[Row]:
    names = (
        "params", "options", "recurrence", "timezone", "enabled", "overlap",
        "failure_threshold", "schedule_threshold", "consecutive_failures", "remaining_runs",
        "first_run", "next_run", "pending_run", "disabled_reason",
    )  # fmt: skip
    return _update(db, p, {name: p[name] for name in names})


def delete_schedule(db: MemoryConnector, p: Bound) -> list[Row]:
    schedule_id = p["id"]
    if schedule_id not in db.schedules:
        return []
    db.write("schedules", schedule_id, None)
    return [{"id": schedule_id}]


def due_schedules(db: MemoryConnector, p: Bound) -> list[Row]:
    now, limit = p["now"], sql_limit(p["limit"])
    due = sorted(
        (r for r in db.schedules.values() if r["enabled"] == 1 and sql_le(r["next_run"], now)),
        key=lambda r: r["next_run"],
    )
    return [dict(r) for r in (due if limit is None else due[:limit])]


def next_schedule_run(db: MemoryConnector, p: Bound) -> list[Row]:
    runs = [
        r["next_run"]
        for r in db.schedules.values()
        if r["enabled"] == 1 and r["next_run"] is not None
    ]
    return [{"next_run": min(runs) if runs else None}]


def ended_schedule_runs(db: MemoryConnector, p: Bound) -> list[Row]:
    limit = sql_limit(p["limit"])
    rows: list[Row] = []
    for schedule in db.schedules.values():
        if limit is not None and len(rows) >= limit:
            break
        if schedule["last_task_open"] != 1:
            continue
        task = db.tasks.get(schedule["last_task_id"])
        if task is None or task["state"] in ENDED:
            # COALESCE(tasks.state, task_history.state): a run in history has ended
            archived = db.history.get(schedule["last_task_id"])
            state = task["state"] if task else archived["state"] if archived else None
            rows.append({**schedule, "last_task_state": state})
    return rows


def fire_schedule(db: MemoryConnector, p: Bound) -> list[Row]:
    return _update(
        db,
        p,
        {
            "last_task_id": p["task_id"],
            "last_task_open": 1,
            "last_run_at": p["now"],
            "total_run_count": _old(db, p, "total_run_count", 0) + 1,
            "remaining_runs": p["remaining_runs"],
            "next_run": p["next_run"],
            "pending_run": None,
        },
    )


def _old(db: MemoryConnector, p: Bound, column: str, default: Any) -> Any:
    old = db.schedules.get(p["id"])
    return default if old is None else old[column]


def insert_scheduled_task(db: MemoryConnector, p: Bound) -> list[Row]:
    for name in TASK_VALUES:
        p[name]  # every parameter is bound, whether or not a row is inserted
    log_count, warnings = p["log_count"], p["warnings"]
    schedule = db.schedules.get(p["schedule_id"])
    if schedule is None or not sql_eq(schedule["last_task_id"], p["id"]):
        return []
    rows = insert_task(db, p)
    if not rows:
        return []
    row = db.update_task(db.tasks[rows[0]["id"]], {"log_count": log_count, "warnings": warnings})
    return [row]


def append_scheduled_log_line(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = p["task_id"]
    values = {"task_id": task_id, "n": p["n"], "ts": p["ts"], "level": p["level"]}
    values["text"] = p["text"]
    if task_id in db.tasks:
        db.write("task_logs", (task_id, values["n"]), db.make_row("task_logs", values))
    return []


def hold_schedule_run(db: MemoryConnector, p: Bound) -> list[Row]:
    names = ("remaining_runs", "next_run", "pending_run")
    return _update(db, p, {name: p[name] for name in names})


def count_schedule_run(db: MemoryConnector, p: Bound) -> list[Row]:
    names = ("consecutive_failures", "enabled", "disabled_reason")
    return _update(db, p, {"last_task_open": 0, **{name: p[name] for name in names}})


SCHEDULE_QUERIES: tuple[Statement, ...] = (
    insert_schedule,
    get_schedule,
    get_schedule_by_name,
    list_schedules,
    update_schedule,
    delete_schedule,
    due_schedules,
    next_schedule_run,
    ended_schedule_runs,
    fire_schedule,
    insert_scheduled_task,
    append_scheduled_log_line,
    hold_schedule_run,
    count_schedule_run,
)
SCHEDULE_COMPOSED: dict[str, Composed] = {"list_schedules": _list_schedules}
SCHEDULE_READS = frozenset(
    {
        "get_schedule",
        "get_schedule_by_name",
        "list_schedules",
        "due_schedules",
        "next_schedule_run",
        "ended_schedule_runs",
    }
)
