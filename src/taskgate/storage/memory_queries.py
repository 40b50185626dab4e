"""The named queries of ``sql/sqlite.sql``, one Python function each, for `MemoryConnector`.

Each function reads every parameter its SQL binds (so a missing one fails as it does in
sqlite3), then does what the statement does, with SQL's value rules: ``NULL = x`` is
never true, ``IS NOT`` treats NULLs as equal, every ``SET`` expression sees the old row.
The connector stores what they write and undoes it if a later step of the batch fails.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from taskgate.errors import StorageError
from taskgate.storage.connector import Row
from taskgate.storage.memory_sql import (
    Bound,
    affinity,
    json_each,
    json_extract,
    json_value,
    sql_eq,
    sql_is_not,
    sql_le,
    sql_limit,
    sql_lt,
)

if TYPE_CHECKING:
    from taskgate.storage.memory import MemoryConnector

WAITING = ("queued", "scheduled")
ACTIVE = ("running", "canceling")
ENDED = ("succeeded", "failed", "canceled", "timed_out")
GOING = (*WAITING, "suspended", *ACTIVE)
"""Not ended: what a cancel request reaches."""

Statement = Callable[["MemoryConnector", "Bound"], list[Row]]
Composed = Callable[["MemoryConnector", "Bound", tuple[str, ...]], list[Row]]
"""A query with optional ``WHERE`` fragments, given the names of those chosen."""
Fragment = Callable[["Bound"], Callable[[Row], bool]]


# -- the queries of sqlite.sql, one function each ------------------------------------


TASK_VALUES = (
    "id", "upid", "type", "object_id", "tenant", "user_name", "user_id", "node", "state",
    "params", "max_attempts", "timeout", "retry_on_worker_loss", "priority",
    "idempotency_key", "request_fingerprint", "request_id", "group_id", "parent_id",
    "schedule_id", "labels", "resources", "created_at", "scheduled_at", "due_at",
    "traceparent",
)  # fmt: skip
"""The parameters of ``insert_task``."""


def insert_task(db: MemoryConnector, p: Bound) -> list[Row]:
    values = {name: p[name] for name in TASK_VALUES}
    values["attempt"] = 0
    values["updated_at"] = values["created_at"]
    row = db.make_row("tasks", values)
    conflict = (
        (row["id"] is not None and row["id"] in db.tasks)
        or row["upid"] in db.upid_index
        or (
            row["idempotency_key"] is not None
            and (row["tenant"], row["idempotency_key"]) in db.key_index
        )
    )
    if conflict:  # ON CONFLICT DO NOTHING
        return []
    db.write("tasks", row["id"], row)
    return [dict(row)]


def get_task(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.tasks.get(p["id"])
    return [] if row is None else [dict(row)]


def get_task_version(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.tasks.get(p["id"])
    return [] if row is None else [{"version": row["version"], "tenant": row["tenant"]}]


def get_task_by_upid(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = db.upid_index.get(p["upid"])
    return [] if task_id is None else [dict(db.tasks[task_id])]


def get_task_by_idempotency_key(db: MemoryConnector, p: Bound) -> list[Row]:
    tenant, key = p["tenant"], p["idempotency_key"]
    task_id = None if tenant is None or key is None else db.key_index.get((tenant, key))
    return [] if task_id is None else [dict(db.tasks[task_id])]


def get_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    wanted = {v for _, v in json_each(p["ids"]) if isinstance(v, str)}
    return [dict(db.tasks[i]) for i in sorted(wanted) if i in db.tasks]


def _list_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return newest_first(db.sorted_ids, db.tasks, p, fragments)


def newest_first(
    ids: list[str], table: dict[str, Row], p: Bound, fragments: tuple[str, ...]
) -> list[Row]:
    """``SELECT * FROM <table> WHERE <list_tasks fragments> ORDER BY id DESC LIMIT
    :limit``, given the table's sorted ids."""
    tests = [LIST_FRAGMENTS[name](p) for name in fragments]
    limit = sql_limit(p["limit"])
    rows: list[Row] = []
    for task_id in reversed(ids):  # ORDER BY id DESC
        if limit is not None and len(rows) >= limit:
            break
        row = table[task_id]
        if all(test(row) for test in tests):
            rows.append(dict(row))
    return rows


def list_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _list_tasks(db, p, ())


def _before(p: Bound) -> Callable[[Row], bool]:
    before = p["before_id"]
    return lambda row: sql_lt(row["id"], before)


def _since(p: Bound) -> Callable[[Row], bool]:
    since = p["since_id"]
    return lambda row: sql_le(since, row["id"])


def _until(p: Bound) -> Callable[[Row], bool]:
    until = p["until_id"]
    return lambda row: sql_lt(row["id"], until)


def by_tenant(p: Bound) -> Callable[[Row], bool]:
    tenant = p["tenant"]
    return lambda row: sql_eq(row["tenant"], tenant)


def _member(column: str, text: Any) -> Callable[[Row], bool]:
    """``column IN (SELECT value FROM json_each(:text))``, run when a row is first tested
    (SQLite tests no row, and so reports no malformed JSON, under LIMIT 0)."""
    wanted: list[Any] | None = None

    def test(row: Row) -> bool:
        nonlocal wanted
        if wanted is None:
            wanted = [v for _, v in json_each(text) if v is not None]
        return any(sql_eq(row[column], v) for v in wanted)

    return test


def _states(p: Bound) -> Callable[[Row], bool]:
    return _member("state", p["states"])


def by_types(p: Bound) -> Callable[[Row], bool]:
    return _member("type", p["types"])


def _object_id(p: Bound) -> Callable[[Row], bool]:
    object_id = p["object_id"]
    return lambda row: sql_eq(row["object_id"], object_id)


def _labels(p: Bound) -> Callable[[Row], bool]:
    text = p["labels"]
    return lambda row: (
        not any(
            sql_is_not(json_extract(row["labels"], key), value) for key, value in json_each(text)
        )
    )


def _acknowledged(p: Bound) -> Callable[[Row], bool]:
    acknowledged = p["acknowledged"]
    return lambda row: sql_eq(int(row["acknowledged_at"] is not None), acknowledged)


def _schedule_id(p: Bound) -> Callable[[Row], bool]:
    schedule_id = p["schedule_id"]
    return lambda row: sql_eq(row["schedule_id"], schedule_id)


def by_group(p: Bound) -> Callable[[Row], bool]:
    group_id = p["group_id"]
    return lambda row: sql_eq(row["group_id"], group_id)


def by_parent(p: Bound) -> Callable[[Row], bool]:
    parent_id = p["parent_id"]
    return lambda row: sql_eq(row["parent_id"], parent_id)


def _resource(p: Bound) -> Callable[[Row], bool]:
    """``id IN (SELECT task_id FROM task_resources WHERE resource = :resource AND mode IN
    ('exclusive', 'shared'))``, from the task's ``resources`` column, which task_resources
    mirrors."""
    resource = p["resource"]

    def test(row: Row) -> bool:
        if row["resources"] is None:
            return False
        held = json_value(row["resources"])
        return any(sql_eq(r, resource) for r in (*held["exclusive"], *held["shared"]))

    return test


LIST_FRAGMENTS: dict[str, Fragment] = {
    "before": _before,
    "since": _since,
    "until": _until,
    "tenant": by_tenant,
    "states": _states,
    "types": by_types,
    "object_id": _object_id,
    "labels": _labels,
    "acknowledged": _acknowledged,
    "schedule_id": _schedule_id,
    "group_id": by_group,
    "parent_id": by_parent,
    "resource": _resource,
}


def _after(ts: Any, task_id: Any, after_ts: Any, after_id: Any) -> bool:
    """SQL ``(ts, task_id) > (after_ts, after_id)``, a row-value comparison."""
    return sql_lt(after_ts, ts) or (sql_eq(ts, after_ts) and sql_lt(after_id, task_id))


def _list_changes(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    after_ts, after_id, limit = p["after_ts"], p["after_id"], sql_limit(p["limit"])
    tests = [CHANGE_FRAGMENTS[name](p) for name in fragments]
    rows = [
        row
        for row in db.tasks.values()
        if _after(row["updated_at"], row["id"], after_ts, after_id)
        and all(test(row) for test in tests)
    ]
    rows.sort(key=lambda r: (r["updated_at"], r["id"]))  # ORDER BY updated_at, id
    return [dict(r) for r in (rows if limit is None else rows[:limit])]


def list_changes(db: MemoryConnector, p: Bound) -> list[Row]:
    return _list_changes(db, p, ())


def _ids(p: Bound) -> Callable[[Row], bool]:
    return _member("id", p["ids"])


CHANGE_FRAGMENTS: dict[str, Fragment] = {
    "tenant": by_tenant,
    "states": _states,
    "types": by_types,
    "ids": _ids,
}


def get_log(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, start, limit = p["task_id"], p["start"], sql_limit(p["limit"])
    lines = db.logs.get(task_id, {})
    chosen = sorted(n for n in lines if sql_lt(start, n))
    if limit is not None:
        chosen = chosen[:limit]
    return [{k: lines[n][k] for k in ("n", "ts", "level", "text")} for n in chosen]


def claim_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    worker, now, lease, limit = p["worker"], p["now"], p["lease_expires_at"], sql_limit(p["limit"])
    due = db.select_tasks(
        lambda r: r["state"] in WAITING and r["resources"] is None and sql_le(r["due_at"], now)
    )
    due.sort(key=lambda r: (-r["priority"], r["due_at"]))  # stable: ties in rowid order
    if limit is not None:
        due = due[:limit]
    return [claim(db, old, worker, now, lease) for old in due]


def claim(db: MemoryConnector, old: Row, worker: Any, now: Any, lease: Any) -> Row:
    """The ``SET`` of the claims: ``old`` running for ``worker``."""
    values = {
        "state": "running",
        "worker": worker,
        "attempt": old["attempt"] + 1,
        "started_at": now,
        "lease_expires_at": lease,
        "due_at": None,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return db.update_task(old, values)


def next_due_at(db: MemoryConnector, p: Bound) -> list[Row]:
    now = p["now"]
    plain = [
        r["due_at"]
        for r in db.tasks.values()
        if r["state"] in WAITING and r["due_at"] is not None and r["resources"] is None
    ]
    reserved = [
        r["due_at"]
        for r in db.tasks.values()
        if r["state"] in WAITING
        and r["resources"] is not None
        and r["due_at"] is not None
        and sql_lt(now, r["due_at"])
    ]
    return [
        {
            "due_at": min(plain) if plain else None,
            "reserved_due_at": min(reserved) if reserved else None,
        }
    ]


def renew_leases(db: MemoryConnector, p: Bound) -> list[Row]:
    worker, lease = p["worker"], p["lease_expires_at"]
    ids = {v for _, v in json_each(p["ids"]) if isinstance(v, str)}
    for old in db.select_tasks(
        lambda r: sql_eq(r["worker"], worker) and r["state"] in ACTIVE and r["id"] in ids
    ):
        db.update_task(old, {"lease_expires_at": lease})
    return []


def upsert_worker(db: MemoryConnector, p: Bound) -> list[Row]:
    worker_id, node, pid, concurrency, now = (
        p["id"], p["node"], p["pid"], p["concurrency"], p["now"]
    )  # fmt: skip
    old = db.workers.get(worker_id)
    if old is None:
        values = {
            "id": worker_id,
            "node": node,
            "pid": pid,
            "concurrency": concurrency,
            "started_at": now,
            "heartbeat_at": now,
        }
        db.write("workers", worker_id, db.make_row("workers", values))
    else:  # ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
        db.write("workers", worker_id, db.make_row("workers", {"heartbeat_at": now}, old))
    return []


def delete_worker(db: MemoryConnector, p: Bound) -> list[Row]:
    worker_id = p["id"]
    if worker_id in db.workers:
        db.write("workers", worker_id, None)
    return []


def list_workers(db: MemoryConnector, p: Bound) -> list[Row]:
    return [dict(r) for r in sorted(db.workers.values(), key=lambda r: r["started_at"])]


def active_task_counts(db: MemoryConnector, p: Bound) -> list[Row]:
    now = p["now"]
    groups: dict[tuple[str, str], Row] = {}
    for row in db.tasks.values():
        state = row["state"]
        if state not in GOING:
            continue
        key = (row["type"], state)
        found = groups.get(key)
        if found is None:
            found = groups[key] = {
                "type": key[0],
                "state": state,
                "tasks": 0,
                "due": 0,
                "due_reserved": 0,
                "oldest_due": None,
            }
        found["tasks"] += 1
        if state in WAITING and sql_le(row["due_at"], now):
            found["due"] += 1
            found["due_reserved"] += row["resources"] is not None
            oldest = found["oldest_due"]
            found["oldest_due"] = row["due_at"] if oldest is None else min(oldest, row["due_at"])
    return list(groups.values())


def take_leader(db: MemoryConnector, p: Bound) -> list[Row]:
    name, holder, node, pid, now = p["name"], p["holder"], p["node"], p["pid"], p["now"]
    stale_before = p["stale_before"]
    values = {"holder": holder, "node": node, "pid": pid, "since": now, "renewed_at": now}
    old = db.leaders.get(name)
    if old is None:
        row = db.make_row("leaders", {"name": name, **values})
    elif sql_eq(old["holder"], holder) or sql_lt(old["renewed_at"], stale_before):
        row = db.make_row("leaders", values, old)  # ON CONFLICT (name) DO UPDATE ... WHERE
    else:
        return []
    db.write("leaders", row["name"], row)
    return [{"holder": row["holder"]}]


def _held_leader(db: MemoryConnector, p: Bound) -> Row | None:
    """The row of role :name if :holder holds it."""
    name, holder = p["name"], p["holder"]
    old = db.leaders.get(name)
    return old if old is not None and sql_eq(old["holder"], holder) else None


def renew_leader(db: MemoryConnector, p: Bound) -> list[Row]:
    now, stale_before = p["now"], p["stale_before"]
    old = _held_leader(db, p)
    if old is None or not sql_le(stale_before, old["renewed_at"]):
        return []
    row = db.make_row("leaders", {"renewed_at": now}, old)
    db.write("leaders", row["name"], row)
    return [{"holder": row["holder"]}]


def drop_leader(db: MemoryConnector, p: Bound) -> list[Row]:
    old = _held_leader(db, p)
    if old is not None:
        db.write("leaders", old["name"], None)
    return []


def forget_leader(db: MemoryConnector, p: Bound) -> list[Row]:
    holder = p["holder"]
    for old in [r for r in db.leaders.values() if sql_eq(r["holder"], holder)]:
        db.write("leaders", old["name"], None)
    return []


def list_leaders(db: MemoryConnector, p: Bound) -> list[Row]:
    return [dict(db.leaders[name]) for name in sorted(db.leaders)]


def expire_worker_leases(db: MemoryConnector, p: Bound) -> list[Row]:
    worker, now = p["worker"], p["now"]
    for old in db.select_tasks(lambda r: sql_eq(r["worker"], worker) and r["state"] in ACTIVE):
        db.update_task(old, {"lease_expires_at": now})
    return []


def recover_lost_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    now, error = p["now"], p["error"]
    lost = db.select_tasks(lambda r: r["state"] in ACTIVE and sql_lt(r["lease_expires_at"], now))
    changed = []
    for old in lost:
        canceling = old["state"] == "canceling"
        requeue = bool(old["retry_on_worker_loss"]) and sql_lt(old["attempt"], old["max_attempts"])
        values = {
            "state": "canceled" if canceling else "queued" if requeue else "failed",
            "error": None if canceling else old["error"] if requeue else error,
            "due_at": now if not canceling and requeue else None,
            "finished_at": None if not canceling and requeue else now,
            "lease_expires_at": None,
            "updated_at": now,
            "version": old["version"] + 1,
        }
        changed.append(db.update_task(old, values))
    return changed


def request_cancel(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, now = p["id"], p["now"]
    old = db.tasks.get(task_id)
    if old is None or old["state"] not in GOING:
        return []
    return [cancel(db, old, now)]


def cancel(db: MemoryConnector, old: Row, now: Any) -> Row:
    """The ``SET`` of the cancel requests: a task not started ends, a running one is
    asked to stop."""
    running = old["state"] in ACTIVE
    values = {
        "state": "canceling" if running else "canceled",
        "finished_at": None if running else now,
        "due_at": None,
        "cancel_requested_at": (
            old["cancel_requested_at"] if old["cancel_requested_at"] is not None else now
        ),
        "cancel_attempts": old["cancel_attempts"] + 1,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return db.update_task(old, values)


def _acknowledge(db: MemoryConnector, old: Row, now: Any, user: Any) -> Row:
    values = {
        "acknowledged_at": now,
        "acknowledged_by": user,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return db.update_task(old, values)


def acknowledge_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, now, user = p["id"], p["now"], p["user"]
    old = db.tasks.get(task_id)
    if old is None or old["acknowledged_at"] is not None:
        return []
    return [_acknowledge(db, old, now, user)]


def _acknowledge_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    now, user, after_id, limit = p["now"], p["user"], p["after_id"], sql_limit(p["limit"])
    tests = [ACKNOWLEDGE_FRAGMENTS[name](p) for name in fragments]
    chosen: list[Row] = []
    if isinstance(after_id, str):  # id > NULL (or > a number) selects nothing here
        for task_id in db.sorted_ids[bisect.bisect_right(db.sorted_ids, after_id) :]:
            if limit is not None and len(chosen) >= limit:
                break
            row = db.tasks[task_id]
            if row["acknowledged_at"] is None and all(test(row) for test in tests):
                chosen.append(row)
    return [{"id": _acknowledge(db, old, now, user)["id"]} for old in chosen]


def acknowledge_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _acknowledge_tasks(db, p, ())


def _acknowledge_listed(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    now, user, ids = p["now"], p["user"], p["ids"]
    tests = [ACKNOWLEDGE_FRAGMENTS[name](p) for name in fragments]
    wanted = sorted({v for _, v in json_each(ids) if isinstance(v, str)})
    chosen = [
        db.tasks[i]
        for i in wanted
        if i in db.tasks
        and db.tasks[i]["acknowledged_at"] is None
        and all(test(db.tasks[i]) for test in tests)
    ]
    return [{"id": _acknowledge(db, old, now, user)["id"]} for old in chosen]


def acknowledge_listed(db: MemoryConnector, p: Bound) -> list[Row]:
    return _acknowledge_listed(db, p, ())


ACKNOWLEDGE_FRAGMENTS: dict[str, Fragment] = {
    "tenant": by_tenant,
    "states": _states,
    "types": by_types,
}


def _held(db: MemoryConnector, p: Bound, states: Iterable[str]) -> Row | None:
    """The task ``:id`` if attempt ``:attempt`` of ``:worker`` holds it in ``states``."""
    task_id, worker, attempt = p["id"], p["worker"], p["attempt"]
    old = db.tasks.get(task_id)
    if (
        old is None
        or not sql_eq(old["worker"], worker)
        or not sql_eq(old["attempt"], attempt)
        or old["state"] not in states
    ):
        return None
    return old


def finish_task(db: MemoryConnector, p: Bound) -> list[Row]:
    state, result, error, message, now = (
        p["state"], p["result"], p["error"], p["message"], p["now"]
    )  # fmt: skip
    old = _held(db, p, ACTIVE)
    if old is None:
        return []
    values = {
        "state": state,
        "result": result,
        "error": error,
        "message": message if message is not None else old["message"],
        "progress": 100.0 if sql_eq(state, "succeeded") else old["progress"],
        "finished_at": now,
        "lease_expires_at": None,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return [db.update_task(old, values)]


def retry_task(db: MemoryConnector, p: Bound) -> list[Row]:
    due_at, error, now = p["due_at"], p["error"], p["now"]
    old = _held(db, p, ("running",))
    if old is None:
        return []
    later = sql_lt(now, due_at)
    values = {
        "state": "scheduled" if later else "queued",
        "scheduled_at": due_at if later else old["scheduled_at"],
        "due_at": due_at,
        "error": error,
        "lease_expires_at": None,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return [db.update_task(old, values)]


def update_progress(db: MemoryConnector, p: Bound) -> list[Row]:
    reported = {
        name: p[name]
        for name in (
            "progress", "progress_detail", "message", "detailed_state", "created_resources"
        )
    }  # fmt: skip
    warnings, now = p["warnings"], p["now"]
    old = _held(db, p, ACTIVE)
    if old is None:
        return []
    values = {name: old[name] if new is None else new for name, new in reported.items()}
    values["warnings"] = None if warnings is None else old["warnings"] + warnings
    values["updated_at"] = now
    values["version"] = old["version"] + 1
    db.update_task(old, values)
    return []


def reserve_log_lines(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, count, now = p["task_id"], p["count"], p["now"]
    old = db.tasks.get(task_id)
    if old is None:
        return []
    values = {
        "log_count": None if count is None else old["log_count"] + count,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    row = db.update_task(old, values)
    return [{"log_count": row["log_count"]}]


def append_log_line(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, count, i, ts, level, text = (
        p["task_id"], p["count"], p["i"], p["ts"], p["level"], p["text"]
    )  # fmt: skip
    task = db.tasks.get(task_id)
    n = None
    if task is not None and count is not None and i is not None:
        n = task["log_count"] - count + i
    row = db.make_row(
        "task_logs", {"task_id": task_id, "n": n, "ts": ts, "level": level, "text": text}
    )
    if row["n"] in db.logs.get(row["task_id"], {}):
        raise StorageError("UNIQUE constraint failed: task_logs.task_id, task_logs.n")
    db.write("task_logs", (row["task_id"], row["n"]), row)
    return []


def delete_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = p["id"]
    old = db.tasks.get(task_id)
    if old is None or old["state"] not in ENDED:
        return []
    db.write("tasks", task_id, None)
    return [{"id": task_id}]


def delete_task_log(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = p["id"]
    if task_id in db.tasks or task_id in db.history:  # AND NOT EXISTS (...) AND NOT EXISTS
        return []
    for n in list(db.logs.get(task_id, {})):
        db.write("task_logs", (task_id, n), None)
    return []


def _purgeable_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    after, limit = p["after_id"], sql_limit(p["limit"])
    tests = [PURGE_FRAGMENTS[name](p) for name in fragments]
    start = bisect.bisect_right(db.sorted_ids, after) if isinstance(after, str) else 0
    rows: list[Row] = []
    for task_id in db.sorted_ids[start:]:  # ORDER BY id
        if limit is not None and len(rows) >= limit:
            break
        row = db.tasks[task_id]
        if row["state"] in ENDED and sql_lt(after, task_id) and all(t(row) for t in tests):
            rows.append({"id": task_id})
    return rows


def purgeable_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _purgeable_tasks(db, p, ())


def _finished_before(p: Bound) -> Callable[[Row], bool]:
    before = p["finished_before"]
    return lambda row: sql_lt(row["finished_at"], before)


PURGE_FRAGMENTS: dict[str, Fragment] = {
    "tenant": by_tenant,
    "states": _states,
    "types": by_types,
    "finished_before": _finished_before,
}


def purge_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    ids = [v for _, v in json_each(p["ids"]) if isinstance(v, str)]
    gone = []
    for task_id in dict.fromkeys(ids):
        old = db.tasks.get(task_id)
        if old is not None and old["state"] in ENDED:
            db.write("tasks", task_id, None)
            gone.append({"id": task_id})
    return gone


def purge_task_logs(db: MemoryConnector, p: Bound) -> list[Row]:
    for _, task_id in json_each(p["ids"]):
        if task_id in db.tasks or task_id in db.history:  # AND NOT EXISTS ... (both tables)
            continue
        for n in list(db.logs.get(task_id, {})):
            db.write("task_logs", (task_id, n), None)
    return []


# -- API keys ----------------------------------------------------------------------

KEY_VALUES = (
    "id", "tenant", "user_name", "user_id", "role", "secret_hash", "description",
    "created_at", "expires_at",
)  # fmt: skip


def insert_key(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.make_row("api_keys", {name: p[name] for name in KEY_VALUES})
    if row["id"] is not None and row["id"] in db.api_keys:
        raise StorageError("UNIQUE constraint failed: api_keys.id")
    db.write("api_keys", row["id"], row)
    return [dict(row)]


def insert_first_key(db: MemoryConnector, p: Bound) -> list[Row]:
    values = {name: p[name] for name in KEY_VALUES}
    if db.api_keys:  # WHERE NOT EXISTS (SELECT 1 FROM api_keys)
        return []
    row = db.make_row("api_keys", values)
    db.write("api_keys", row["id"], row)
    return [dict(row)]


def get_key(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.api_keys.get(p["id"])
    return [] if row is None else [dict(row)]


def _list_keys(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    tests = [KEY_FRAGMENTS[name](p) for name in fragments]
    rows = [dict(r) for r in db.api_keys.values() if all(test(r) for test in tests)]
    return sorted(rows, key=lambda r: (r["created_at"], r["id"]))  # ORDER BY created_at, id


def list_keys(db: MemoryConnector, p: Bound) -> list[Row]:
    return _list_keys(db, p, ())


KEY_FRAGMENTS: dict[str, Fragment] = {"tenant": by_tenant}


def revoke_key(db: MemoryConnector, p: Bound) -> list[Row]:
    key_id, now = p["id"], p["now"]
    old = db.api_keys.get(key_id)
    if old is None or old["revoked_at"] is not None:
        return []
    row = db.make_row("api_keys", {"revoked_at": now}, old)
    db.write("api_keys", key_id, row)
    return [dict(row)]


# -- shared secrets ----------------------------------------------------------------


def insert_secret(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.make_row("secrets", {name: p[name] for name in ("name", "value", "created_at")})
    if row["name"] not in db.secrets:  # ON CONFLICT (name) DO NOTHING
        db.write("secrets", row["name"], row)
    return []


def get_secret(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.secrets.get(p["name"])
    return [] if row is None else [{"value": row["value"]}]


QUERIES: dict[str, Statement] = {
    fn.__name__: fn
    for fn in (
        insert_task,
        get_task,
        get_task_version,
        get_task_by_upid,
        get_task_by_idempotency_key,
        get_tasks,
        list_tasks,
        list_changes,
        get_log,
        claim_tasks,
        next_due_at,
        renew_leases,
        upsert_worker,
        delete_worker,
        list_workers,
        active_task_counts,
        take_leader,
        renew_leader,
        drop_leader,
        forget_leader,
        list_leaders,
        expire_worker_leases,
        recover_lost_tasks,
        request_cancel,
        acknowledge_task,
        acknowledge_tasks,
        acknowledge_listed,
        finish_task,
        retry_task,
        update_progress,
        reserve_log_lines,
        append_log_line,
        delete_task,
        delete_task_log,
        purgeable_tasks,
        purge_tasks,
        purge_task_logs,
        insert_key,
        insert_first_key,
        get_key,
        list_keys,
        revoke_key,
        insert_secret,
        get_secret,
    )
}
"""The task, worker, leader, key and secret queries, by the name each has in
``sql/sqlite.sql`` (`taskgate.storage.memory_schedules` has the schedules')."""

FRAGMENTS: dict[str, dict[str, Fragment]] = {
    "list_tasks": LIST_FRAGMENTS,
    "list_changes": CHANGE_FRAGMENTS,
    "acknowledge_tasks": ACKNOWLEDGE_FRAGMENTS,
    "acknowledge_listed": ACKNOWLEDGE_FRAGMENTS,
    "list_keys": KEY_FRAGMENTS,
    "purgeable_tasks": PURGE_FRAGMENTS,
}
"""The optional ``WHERE`` fragments of the composed queries."""
COMPOSED: dict[str, Composed] = {
    "list_tasks": _list_tasks,
    "list_changes": _list_changes,
    "acknowledge_tasks": _acknowledge_tasks,
    "acknowledge_listed": _acknowledge_listed,
    "list_keys": _list_keys,
    "purgeable_tasks": _purgeable_tasks,
}

READS = frozenset(
    {
        "get_task",
        "get_task_version",
        "get_task_by_upid",
        "get_task_by_idempotency_key",
        "get_tasks",
        "list_tasks",
        "list_changes",
        "get_log",
        "next_due_at",
        "list_workers",
        "active_task_counts",
        "list_leaders",
        "get_key",
        "list_keys",
        "get_secret",
        "purgeable_tasks",
    }
)
"""The statements that only read; `taskgate.storage.memory` adds the schedules' and
counts every other one as a write."""

__all__ = ["COMPOSED", "FRAGMENTS", "QUERIES", "READS", "Bound", "affinity"]
