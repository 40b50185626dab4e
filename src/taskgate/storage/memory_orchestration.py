"""The history, reservation, group and child queries of ``sql/sqlite.sql``, one Python
function each, for `MemoryConnector` (the rules of `taskgate.storage.memory_queries`:
every parameter the SQL binds is read, SQL's NULL rules hold, rows are never changed in
place)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from taskgate.errors import StorageError
from taskgate.storage.connector import Row
from taskgate.storage.memory_queries import (
    ACTIVE,
    ENDED,
    GOING,
    LIST_FRAGMENTS,
    PURGE_FRAGMENTS,
    TASK_VALUES,
    WAITING,
    Composed,
    Fragment,
    Statement,
    by_group,
    by_parent,
    by_tenant,
    cancel,
    claim,
    insert_task,
    newest_first,
)
from taskgate.storage.memory_sql import Bound, json_each, sql_eq, sql_le, sql_limit, sql_lt

if TYPE_CHECKING:
    from taskgate.storage.memory import MemoryConnector


def _ids(text: Any) -> list[str]:
    """``SELECT value FROM json_each(:ids)``, the text values, each once."""
    return list(dict.fromkeys(v for _, v in json_each(text) if isinstance(v, str)))


def _after_in_order(
    ids: list[str], after: Any, rows: dict[str, Row], test: Callable[[Row], bool], limit: Any
) -> list[Row]:
    """``WHERE id > :after_id AND <test> ORDER BY id LIMIT :limit`` over ``rows``."""
    limit = sql_limit(limit)
    chosen: list[Row] = []
    if not isinstance(after, str):  # id > NULL (or > a number) selects nothing here
        return chosen
    for task_id in ids[bisect.bisect_right(ids, after) :]:
        if limit is not None and len(chosen) >= limit:
            break
        row = rows[task_id]
        if test(row):
            chosen.append(row)
    return chosen


def _test(fragments: dict[str, Fragment], chosen: Iterable[str], p: Bound) -> Callable[[Row], bool]:
    """The chosen fragments, all of them."""
    tests = [fragments[name](p) for name in chosen]
    return lambda row: all(test(row) for test in tests)


# -- history -------------------------------------------------------------------------


def get_archived_task(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.history.get(p["id"])
    return [] if row is None else [dict(row)]


def get_archived_task_version(db: MemoryConnector, p: Bound) -> list[Row]:
    row = db.history.get(p["id"])
    return [] if row is None else [{"version": row["version"], "tenant": row["tenant"]}]


def get_archived_task_by_upid(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = db.history_upids.get(p["upid"])
    return [] if task_id is None else [dict(db.history[task_id])]


def _list_history(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return newest_first(db.history_ids, db.history, p, fragments)


def list_history(db: MemoryConnector, p: Bound) -> list[Row]:
    return _list_history(db, p, ())


def acknowledge_archived_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, now, user = p["id"], p["now"], p["user"]
    old = db.history.get(task_id)
    if old is None or old["acknowledged_at"] is not None:
        return []
    values = {
        "acknowledged_at": now,
        "acknowledged_by": user,
        "updated_at": now,
        "version": old["version"] + 1,
    }
    row = db.make_row("task_history", values, old)
    db.write("task_history", task_id, row)
    return [dict(row)]


def delete_archived_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id = p["id"]
    if task_id not in db.history:
        return []
    db.write("task_history", task_id, None)
    return [{"id": task_id}]


def _drop_resources(db: MemoryConnector, task_id: Any) -> None:
    if task_id in db.tasks or task_id in db.history:  # AND NOT EXISTS ... (both tables)
        return
    for mode, resource in list(db.resources.get(task_id, {})):
        db.write("task_resources", (task_id, mode, resource), None)


def delete_task_resources(db: MemoryConnector, p: Bound) -> list[Row]:
    _drop_resources(db, p["id"])
    return []


def _purgeable_history(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    test = _test(PURGE_FRAGMENTS, fragments, p)
    after, limit = p["after_id"], p["limit"]
    chosen = _after_in_order(
        db.history_ids, after, db.history, lambda r: r["state"] in ENDED and test(r), limit
    )
    return [{"id": r["id"]} for r in chosen]


def purgeable_history(db: MemoryConnector, p: Bound) -> list[Row]:
    return _purgeable_history(db, p, ())


def purge_history(db: MemoryConnector, p: Bound) -> list[Row]:
    gone = []
    for task_id in _ids(p["ids"]):
        if task_id in db.history:
            db.write("task_history", task_id, None)
            gone.append({"id": task_id})
    return gone


def purge_task_resources(db: MemoryConnector, p: Bound) -> list[Row]:
    for _, task_id in json_each(p["ids"]):
        _drop_resources(db, task_id)
    return []


def ended_types(db: MemoryConnector, p: Bound) -> list[Row]:
    found = {r["type"] for r in db.tasks.values() if r["state"] in ENDED}
    return [{"type": t} for t in sorted(found)]


def archived_types(db: MemoryConnector, p: Bound) -> list[Row]:
    return [{"type": t} for t in sorted({r["type"] for r in db.history.values()})]


def _expired(rows: Iterable[Row], p: Bound) -> list[Row]:
    type_, before, limit = p["type"], p["finished_before"], sql_limit(p["limit"])
    chosen = [r for r in rows if sql_eq(r["type"], type_) and sql_lt(r["finished_at"], before)]
    chosen.sort(key=lambda r: r["finished_at"])  # stable: ties in rowid order
    return [{"id": r["id"]} for r in (chosen if limit is None else chosen[:limit])]


def expired_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _expired((r for r in db.tasks.values() if r["state"] in ENDED), p)


def expired_history(db: MemoryConnector, p: Bound) -> list[Row]:
    return _expired(db.history.values(), p)


def archive_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    for task_id in _ids(p["ids"]):
        old = db.tasks.get(task_id)
        if old is None or old["state"] not in ENDED:
            continue
        if task_id in db.history:
            raise StorageError("UNIQUE constraint failed: task_history.id")
        row = db.make_row("task_history", {**old, "archived": 1, "version": old["version"] + 1})
        db.write("task_history", task_id, row)
    return []


def drop_archived(db: MemoryConnector, p: Bound) -> list[Row]:
    gone = []
    for task_id in _ids(p["ids"]):
        if task_id in db.tasks and task_id in db.history:
            db.write("tasks", task_id, None)
            gone.append({"id": task_id})
    return gone


# -- suspend, cancel, groups, children --------------------------------------------


def suspend_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, now = p["id"], p["now"]
    old = db.tasks.get(task_id)
    if old is None or old["state"] not in WAITING:
        return []
    return [_suspend(db, old, now)]


def _suspend(db: MemoryConnector, old: Row, now: Any) -> Row:
    values = {"state": "suspended", "updated_at": now, "version": old["version"] + 1}
    return db.update_task(old, values)


def _resume(db: MemoryConnector, old: Row, now: Any) -> Row:
    values = {
        "state": "scheduled" if sql_lt(now, old["due_at"]) else "queued",
        "updated_at": now,
        "version": old["version"] + 1,
    }
    return db.update_task(old, values)


def resume_task(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, now = p["id"], p["now"]
    old = db.tasks.get(task_id)
    if old is None or old["state"] != "suspended":
        return []
    return [_resume(db, old, now)]


def _batch(
    db: MemoryConnector,
    p: Bound,
    fragments: tuple[str, ...],
    known: dict[str, Fragment],
    states: tuple[str, ...],
) -> list[Row]:
    """The tasks in ``states`` after :after_id, in id order, that the fragments select,
    up to :limit (the ``WHERE id IN (SELECT ...)`` of the batched updates)."""
    test = _test(known, fragments, p)
    return _after_in_order(
        db.sorted_ids,
        p["after_id"],
        db.tasks,
        lambda r: r["state"] in states and test(r),
        p["limit"],
    )


def _cancel_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    now = p["now"]
    chosen = _batch(db, p, fragments, CANCEL_FRAGMENTS, GOING)
    changed = [cancel(db, old, now) for old in chosen]
    return [
        {
            "id": r["id"],
            "type": r["type"],
            "state": r["state"],
            "resources": r["resources"],
            "children": r["children"],
        }
        for r in changed
    ]


def cancel_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _cancel_tasks(db, p, ())


def _suspend_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    now = p["now"]
    chosen = _batch(db, p, fragments, GROUP_FRAGMENTS, WAITING)
    return [
        {"id": r["id"], "resources": r["resources"]} for r in (_suspend(db, o, now) for o in chosen)
    ]


def suspend_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _suspend_tasks(db, p, ())


def _resume_tasks(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    now = p["now"]
    chosen = _batch(db, p, fragments, GROUP_FRAGMENTS, ("suspended",))
    return [
        {"id": r["id"], "resources": r["resources"]} for r in (_resume(db, o, now) for o in chosen)
    ]


def resume_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    return _resume_tasks(db, p, ())


def _count_states(rows: Iterable[Row], p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    group_id = p["group_id"]
    tests = [STATE_FRAGMENTS[name](p) for name in fragments]
    counts: dict[str, int] = {}
    for row in rows:
        if sql_eq(row["group_id"], group_id) and all(test(row) for test in tests):
            counts[row["state"]] = counts.get(row["state"], 0) + 1
    return [{"state": state, "count": n} for state, n in counts.items()]


def _group_states(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _count_states(db.tasks.values(), p, fragments)


def group_states(db: MemoryConnector, p: Bound) -> list[Row]:
    return _group_states(db, p, ())


def _archived_group_states(db: MemoryConnector, p: Bound, fragments: tuple[str, ...]) -> list[Row]:
    return _count_states(db.history.values(), p, fragments)


def archived_group_states(db: MemoryConnector, p: Bound) -> list[Row]:
    return _archived_group_states(db, p, ())


def insert_child_task(db: MemoryConnector, p: Bound) -> list[Row]:
    for name in TASK_VALUES:
        p[name]  # every parameter is bound, whether or not a row is inserted
    parent_id, worker, attempt = p["parent_id"], p["parent_worker"], p["parent_attempt"]
    parent = db.tasks.get(parent_id) if isinstance(parent_id, str) else None
    if (
        parent is None
        or not sql_eq(parent["worker"], worker)
        or not sql_eq(parent["attempt"], attempt)
        or parent["state"] not in ACTIVE
    ):
        return []
    return insert_task(db, p)


def add_child(db: MemoryConnector, p: Bound) -> list[Row]:
    task_id, child_id, now = p["id"], p["child_id"], p["now"]
    old = db.tasks.get(task_id)
    if old is None or child_id not in db.tasks:
        return []
    children = [v for _, v in json_each(old["children"] or "[]")]
    values = {
        "children": orjson.dumps([*children, child_id]).decode(),
        "updated_at": now,
        "version": old["version"] + 1,
    }
    db.update_task(old, values)
    return [{"id": task_id}]


# -- reservations and priorities ------------------------------------------------------


def insert_task_resources(db: MemoryConnector, p: Bound) -> list[Row]:
    values = {name: p[name] for name in ("task_id", "mode", "resource", "capacity")}
    if values["task_id"] not in db.tasks:  # WHERE EXISTS (SELECT 1 FROM tasks ...)
        return []
    row = db.make_row("task_resources", values)
    key = (row["task_id"], row["mode"], row["resource"])
    if key[1:] in db.resources.get(key[0], {}):
        raise StorageError(
            "UNIQUE constraint failed: task_resources.task_id, task_resources.mode,"
            " task_resources.resource"
        )
    db.write("task_resources", key, row)
    return []


def lock_reserved_claims(db: MemoryConnector, p: Bound) -> list[Row]:
    return [{"locked": 1}]  # one event loop: claims take turns already


def reserved_candidates(db: MemoryConnector, p: Bound) -> list[Row]:
    now = p["now"]
    rows = []
    for task in db.select_tasks(
        lambda r: r["state"] in WAITING and r["resources"] is not None and sql_le(r["due_at"], now)
    ):
        for (mode, resource), held in db.resources.get(task["id"], {}).items():
            rows.append(
                {
                    "id": task["id"],
                    "priority": task["priority"],
                    "due_at": task["due_at"],
                    "mode": mode,
                    "resource": resource,
                    "capacity": held["capacity"],
                }
            )
    rows.sort(key=lambda r: (r["id"], r["mode"], r["resource"]))
    return rows


def _running_holds(db: MemoryConnector) -> list[tuple[str, str]]:
    """(mode, resource) of each held reservation of a task that runs."""
    return [
        key
        for task_id, held in db.resources.items()
        if task_id in db.tasks and db.tasks[task_id]["state"] in ACTIVE
        for key, row in held.items()
        if row["held"] == 1
    ]


def reservation_holders(db: MemoryConnector, p: Bound) -> list[Row]:
    counts: dict[tuple[str, str], int] = {}
    for key in _running_holds(db):
        counts[key] = counts.get(key, 0) + 1
    return [{"mode": m, "resource": r, "holders": n} for (m, r), n in counts.items()]


def claim_reserved_tasks(db: MemoryConnector, p: Bound) -> list[Row]:
    worker, now, lease = p["worker"], p["now"], p["lease_expires_at"]
    chosen = [v for _, v in json_each(p["ids"])]
    running = _running_holds(db)
    wants = [
        (pos, key) for pos, task_id in enumerate(chosen) for key in db.resources.get(task_id, {})
    ]

    def conflicts(mode: str, other: str) -> bool:
        return "limit" not in (mode, other) and "exclusive" in (mode, other)

    def fits(pos: int, task_id: str) -> bool:
        task = db.tasks.get(task_id)
        if task is None or task["state"] not in WAITING or task["resources"] is None:
            return False
        if not sql_le(task["due_at"], now):
            return False
        for (mode, resource), row in db.resources.get(task_id, {}).items():
            if any(r == resource and conflicts(mode, m) for m, r in running):
                return False
            before = [key for at, key in wants if at < pos and key[1] == resource]
            if any(conflicts(mode, m) for m, _ in before):
                return False
            if mode == "limit":
                holders = sum(1 for m, r in running if (m, r) == ("limit", resource))
                holders += sum(1 for m, _ in before if m == "limit")
                if row["capacity"] is not None and row["capacity"] <= holders:
                    return False
        return True

    taken = [task_id for pos, task_id in enumerate(chosen) if fits(pos, task_id)]
    return [claim(db, db.tasks[task_id], worker, now, lease) for task_id in dict.fromkeys(taken)]


def top_waiting_priority(db: MemoryConnector, p: Bound) -> list[Row]:
    found = [r["priority"] for r in db.tasks.values() if r["state"] in WAITING]
    return [{"priority": max(found) if found else None}]


def promote_starved(db: MemoryConnector, p: Bound) -> list[Row]:
    top, now, starved_before, limit = p["top"], p["now"], p["starved_before"], p["limit"]
    limit = sql_limit(limit)
    chosen = db.select_tasks(
        lambda r: (
            r["state"] in WAITING
            and sql_lt(r["priority"], top)
            and sql_lt(r["due_at"], starved_before)
        )
    )
    if limit is not None:
        chosen = chosen[:limit]
    changed = [
        db.update_task(old, {"priority": top, "updated_at": now, "version": old["version"] + 1})
        for old in chosen
    ]
    return [{"id": r["id"], "priority": r["priority"]} for r in changed]


CANCEL_FRAGMENTS: dict[str, Fragment] = {
    "tenant": by_tenant,
    "group_id": by_group,
    "parent_id": by_parent,
}
GROUP_FRAGMENTS: dict[str, Fragment] = {"tenant": by_tenant, "group_id": by_group}
STATE_FRAGMENTS: dict[str, Fragment] = {"tenant": by_tenant}

QUERIES: dict[str, Statement] = {
    fn.__name__: fn
    for fn in (
        get_archived_task,
        get_archived_task_version,
        get_archived_task_by_upid,
        list_history,
        acknowledge_archived_task,
        delete_archived_task,
        delete_task_resources,
        purgeable_history,
        purge_history,
        purge_task_resources,
        ended_types,
        archived_types,
        expired_tasks,
        expired_history,
        archive_tasks,
        drop_archived,
        suspend_task,
        resume_task,
        cancel_tasks,
        suspend_tasks,
        resume_tasks,
        group_states,
        archived_group_states,
        insert_child_task,
        add_child,
        insert_task_resources,
        lock_reserved_claims,
        reserved_candidates,
        reservation_holders,
        claim_reserved_tasks,
        top_waiting_priority,
        promote_starved,
    )
}
FRAGMENTS: dict[str, dict[str, Fragment]] = {
    "list_history": LIST_FRAGMENTS,
    "purgeable_history": PURGE_FRAGMENTS,
    "cancel_tasks": CANCEL_FRAGMENTS,
    "suspend_tasks": GROUP_FRAGMENTS,
    "resume_tasks": GROUP_FRAGMENTS,
    "group_states": STATE_FRAGMENTS,
    "archived_group_states": STATE_FRAGMENTS,
}
COMPOSED: dict[str, Composed] = {
    "list_history": _list_history,
    "purgeable_history": _purgeable_history,
    "cancel_tasks": _cancel_tasks,
    "suspend_tasks": _suspend_tasks,
    "resume_tasks": _resume_tasks,
    "group_states": _group_states,
    "archived_group_states": _archived_group_states,
}
READS = frozenset(
    {
        "get_archived_task",
        "get_archived_task_version",
        "get_archived_task_by_upid",
        "list_history",
        "purgeable_history",
        "ended_types",
        "archived_types",
        "expired_tasks",
        "expired_history",
        "group_states",
        "archived_group_states",
        "lock_reserved_claims",
        "reserved_candidates",
        "reservation_holders",
        "top_waiting_priority",
    }
)
