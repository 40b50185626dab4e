"""What a task reserves: resources, exclusive or shared, and places under concurrency
limits (`taskgate.model.Reservation`).

An operation declares templates (``exclusive=["repository:{repository_id}"]``,
``limits=[ConcurrencyLimit(2, per="{tenant}")]``); a submit may add resources of its
own, as pulpcore's ``dispatch(exclusive_resources=..., shared_resources=...)`` does.
`reserve` fills them in when a task is prepared; `resource_rows` are its rows in
``task_resources``. Such tasks are claimed apart from the others, in three steps:

1. read the due reserved tasks with what each reserves (``reserved_candidates``), and
   what the tasks that run hold (``reservation_holders``);
2. `choose`, going through the candidates in submit order:

   - a task waits while a task holding one of its resources in a conflicting mode
     (exclusive against anything, shared against exclusive) runs, is chosen, or is due
     and waits ahead of it: conflicting tasks run one after another in submit order;
   - a task waits while one of its limits is full with the tasks that run and those
     chosen before it; a task that waits takes no place under its limits, so a tenant
     with a long queue does not hold back another under a shared limit;

   and of those that may start, take the highest priorities;
3. claim them (``claim_reserved_tasks``), each only if, by the store as it is then, it
   still conflicts with no task that runs and none chosen before it, so that a limit is
   never exceeded and no exclusive holder has company, whatever another worker claimed
   since the read. On PostgreSQL such claims take turns under a transaction lock
   (``lock_reserved_claims``); SQLite's write transactions take turns already.

A task not yet due (scheduled, or a retry waiting its backoff) and a suspended one hold
no place in line; a task that runs holds its reservations until it ends (a trigger
releases them, whichever statement ends it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from taskgate.app import MAX_RESOURCE, MAX_RESOURCES, Operation
from taskgate.errors import InvalidRequest
from taskgate.model import Limit, Reservation
from taskgate.storage.connector import Row, Step


def check_resource(name: Any, field: str = "resource") -> str:
    """A resource name: 1-255 printable characters. `InvalidRequest` otherwise."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_RESOURCE:
        raise InvalidRequest(f"{field}: a resource is a string of 1 to {MAX_RESOURCE} characters")
    if not name.isprintable():
        raise InvalidRequest(f"{field}: {name!r} holds characters that cannot be printed")
    return name


def reserve(
    op: Operation,
    values: Mapping[str, Any],
    *,
    exclusive: Sequence[str] | None = None,
    shared: Sequence[str] | None = None,
) -> Reservation | None:
    """The reservation of a task of ``op`` with ``values`` (its parameters, tenant, user,
    object_id and type), plus the resources the submit names; None when it reserves
    nothing. A resource both exclusive and shared is exclusive."""
    mine_exclusive = _names(op, op.exclusive, values, exclusive or (), "exclusive_resources")
    mine_shared = [
        r
        for r in _names(op, op.shared, values, shared or (), "shared_resources")
        if r not in mine_exclusive
    ]
    limits: dict[str, int] = {}
    for lim in op.limits:
        per = op.render(lim.per, values) if lim.per else ""
        if per is not None:
            key = f"{lim.name or op.name}:{per}"
            limits[key] = min(lim.max, limits.get(key, lim.max))
    if len(mine_exclusive) + len(mine_shared) + len(limits) > MAX_RESOURCES:
        raise InvalidRequest(f"a task reserves at most {MAX_RESOURCES} resources and limits")
    reservation = Reservation(
        exclusive=tuple(mine_exclusive),
        shared=tuple(mine_shared),
        limits=tuple(Limit(key, n) for key, n in limits.items()),
    )
    return reservation or None


def _names(
    op: Operation,
    templates: Iterable[str],
    values: Mapping[str, Any],
    given: Iterable[str],
    field: str,
) -> list[str]:
    names: dict[str, None] = {}
    for template in templates:
        name = op.render(template, values)
        if name is not None:
            names[check_resource(name, field)] = None
    if isinstance(given, str):
        raise InvalidRequest(f"{field}: a list of resource names, not one string")
    for name in given:
        names[check_resource(name, field)] = None
    return list(names)


def resource_rows(task_id: str, reservation: Reservation) -> list[dict[str, Any]]:
    """The task's rows in ``task_resources``."""
    rows: list[dict[str, Any]] = [
        {"task_id": task_id, "mode": mode, "resource": name, "capacity": None}
        for mode, names in (("exclusive", reservation.exclusive), ("shared", reservation.shared))
        for name in names
    ]
    rows += [
        {"task_id": task_id, "mode": "limit", "resource": lim.key, "capacity": lim.max}
        for lim in reservation.limits
    ]
    return rows


def reservation_steps(rows: Iterable[Mapping[str, Any]]) -> list[Step]:
    """The step that stores the reservations of the prepared task ``rows`` (none when
    they reserve nothing), to run after their inserts, in the same transaction."""
    held = [
        r
        for row in rows
        if row["resources"] is not None
        for r in resource_rows(row["id"], Reservation.from_dict(orjson.loads(row["resources"])))
    ]
    return [Step("insert_task_resources", many=held)] if held else []


@dataclass(frozen=True, slots=True)
class Candidate:
    """A due reserved task, as `choose` sees it."""

    id: str
    priority: int
    due_at: float
    holds: tuple[tuple[str, str, int | None], ...]
    """(mode, resource, capacity) of each of its reservations."""


def candidates(rows: Iterable[Row]) -> list[Candidate]:
    """``reserved_candidates`` rows (one per reservation, in task order) as tasks."""
    found: dict[str, Candidate] = {}
    for row in rows:
        task_id = str(row["id"])
        hold = (str(row["mode"]), str(row["resource"]), row["capacity"])
        known = found.get(task_id)
        if known is None:
            found[task_id] = Candidate(task_id, int(row["priority"]), float(row["due_at"]), (hold,))
        else:
            found[task_id] = Candidate(known.id, known.priority, known.due_at, (*known.holds, hold))
    return list(found.values())


def choose(
    waiting: Sequence[Candidate], holders: Mapping[tuple[str, str], int], limit: int
) -> list[str]:
    """The ids of at most ``limit`` of ``waiting`` (due reserved tasks in submit order)
    that may start beside the tasks that run, whose reservations ``holders`` counts by
    (mode, resource); the highest priorities (then the longest due) of those, in submit
    order."""
    exclusive = {r for (mode, r), n in holders.items() if mode == "exclusive" and n}
    shared = {r for (mode, r), n in holders.items() if mode == "shared" and n}
    taken = {r: n for (mode, r), n in holders.items() if mode == "limit"}
    queued_exclusive: set[str] = set()  # wanted by tasks that wait ahead in line
    queued_shared: set[str] = set()
    free: list[Candidate] = []
    for task in waiting:
        if all(
            _fits(mode, resource, capacity, exclusive, shared, taken)
            and not _queued(mode, resource, queued_exclusive, queued_shared)
            for mode, resource, capacity in task.holds
        ):
            free.append(task)
            for mode, resource, _ in task.holds:
                if mode == "exclusive":
                    exclusive.add(resource)
                elif mode == "shared":
                    shared.add(resource)
                else:
                    taken[resource] = taken.get(resource, 0) + 1
        else:
            for mode, resource, _ in task.holds:
                if mode == "exclusive":
                    queued_exclusive.add(resource)
                elif mode == "shared":
                    queued_shared.add(resource)
    best = {c.id for c in sorted(free, key=lambda c: (-c.priority, c.due_at))[:limit]}
    return [c.id for c in free if c.id in best]


def _fits(
    mode: str,
    resource: str,
    capacity: int | None,
    exclusive: set[str],
    shared: set[str],
    taken: dict[str, int],
) -> bool:
    if mode == "exclusive":
        return resource not in exclusive and resource not in shared
    if mode == "shared":
        return resource not in exclusive
    return capacity is None or taken.get(resource, 0) < capacity


def _queued(mode: str, resource: str, exclusive: set[str], shared: set[str]) -> bool:
    """A task ahead in line waits for ``resource`` in a mode this one conflicts with."""
    if mode == "exclusive":
        return resource in exclusive or resource in shared
    if mode == "shared":
        return resource in exclusive
    return False
