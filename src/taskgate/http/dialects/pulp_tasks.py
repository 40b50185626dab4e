"""The Pulp dialect's translation: tasks as Pulp 1 ("A.20 Tasks") and Pulp 2 show them,
their states, tags and search criteria. Pure functions over `taskgate.model.Task`; the
routes are in `taskgate.http.dialects.pulp`.

States, taskgate → Pulp 1 / Pulp 2:

| taskgate | Pulp 1 | Pulp 2 |
|---|---|---|
| queued, scheduled | waiting | waiting |
| suspended | suspended | suspended |
| running, canceling | running | running |
| succeeded | finished | finished |
| failed | error | error |
| timed_out | timed_out | error (Pulp 2 has no timeout) |
| canceled | canceled | canceled |

Pulp 1's ``reset`` (a re-queue) is never shown: a retry here is ``waiting`` again, and
Pulp 2's ``accepted`` and ``skipped`` are not reached either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from taskgate.model import State, Task

V1_STATES: dict[State, str] = {
    State.QUEUED: "waiting",
    State.SCHEDULED: "waiting",
    State.SUSPENDED: "suspended",
    State.RUNNING: "running",
    State.CANCELING: "running",
    State.SUCCEEDED: "finished",
    State.FAILED: "error",
    State.TIMED_OUT: "timed_out",
    State.CANCELED: "canceled",
}
V2_STATES: dict[State, str] = {**V1_STATES, State.TIMED_OUT: "error"}
V1_FILTERS: dict[str, tuple[State, ...]] = {
    "waiting": (State.QUEUED, State.SCHEDULED),
    "running": (State.RUNNING, State.CANCELING),
    "complete": (State.SUCCEEDED, State.FAILED, State.TIMED_OUT, State.CANCELED),
    "incomplete": (State.QUEUED, State.SCHEDULED, State.SUSPENDED, State.RUNNING, State.CANCELING),
}
"""Pulp 1's ``GET /tasks/?state=`` values besides ``current`` and ``archived``."""
V2_SUMMARY = (
    "accepted",
    "finished",
    "running",
    "canceled",
    "waiting",
    "skipped",
    "suspended",
    "error",
)
V2_PURGE = {"finished": (State.SUCCEEDED,), "error": (State.FAILED, State.TIMED_OUT), "skipped": ()}
"""The states Pulp 2's purge takes (``DELETE /v2/tasks/?state=``)."""
V2_STATE_NAMES = {
    "waiting": (State.QUEUED, State.SCHEDULED),
    "accepted": (),
    "running": (State.RUNNING, State.CANCELING),
    "suspended": (State.SUSPENDED,),
    "finished": (State.SUCCEEDED,),
    "error": (State.FAILED, State.TIMED_OUT),
    "canceled": (State.CANCELED,),
    "skipped": (),
}


def when(moment: datetime | None) -> str | None:
    """Pulp's ISO 8601 times: UTC, whole seconds, ``Z``."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_of(task: Task) -> dict[str, Any] | None:
    if task.progress_detail:
        return task.progress_detail
    if task.progress is None and task.message is None:
        return None
    return {"percent": task.progress, "message": task.message}


def exception_of(task: Task) -> str | None:
    if task.error is not None:
        return f"{task.error.type}: {task.error.message}"
    if task.state is State.CANCELED:
        return "TaskCanceled: the task was canceled"
    if task.state is State.TIMED_OUT:
        return "TaskTimedOut: the task ran past its timeout"
    return None


def scheduler_of(task: Task) -> str:
    if task.schedule_id is not None:
        return "interval"
    return "at" if task.scheduled_at is not None else "immediate"


def v1_task(task: Task) -> dict[str, Any]:
    """The Task object of Pulp 1 ("A.20.1")."""
    return {
        "id": task.id,
        "job_id": task.group_id,
        "class_name": None,
        "method_name": task.type,
        "args": [],
        "state": V1_STATES[task.state],
        "start_time": when(task.started_at),
        "finish_time": when(task.finished_at),
        "result": task.result,
        "exception": exception_of(task),
        "traceback": task.error.traceback if task.error else None,
        "progress": progress_of(task),
        "scheduled_time": when(task.scheduled_at),
        "scheduler": scheduler_of(task),
        "snapshot_id": task.id,
    }


def _text(value: Any) -> str:
    """A snapshot field as JSON-encoded text (Pulp 1 pickled these; never pickles here)."""
    return orjson.dumps(value).decode()


def v1_snapshot(
    task: Task,
    *,
    callable_name: str,
    failure_threshold: int | None,
    schedule_threshold: float | None,
) -> dict[str, Any]:
    """The TaskSnapshot object of Pulp 1 ("A.20.2"): what is stored to run the task
    again, its pickled fields shown as JSON-encoded text."""
    return {
        "id": task.id,
        "class_name": None,
        "method_name": task.type,
        "state": V1_STATES[task.state],
        "failure_threshold": failure_threshold,
        "cancel_attempts": task.cancel_attempts,
        "callable": _text(callable_name),
        "args": _text([]),
        "kwargs": _text(task.params),
        "progress": progress_of(task),
        "timeout": _text(task.timeout),
        "schedule_threshold": _text(schedule_threshold),
        "_progress_callback": None,
        "start_time": _text(when(task.started_at)),
        "finish_time": _text(when(task.finished_at)),
        "result": _text(task.result),
        "exception": _text(exception_of(task)),
        "traceback": _text(task.error.traceback if task.error else None),
    }


def href(prefix: str, task_id: str) -> str:
    return f"{prefix}/v2/tasks/{task_id}/"


def tags_of(task: Task) -> list[str]:
    """Pulp 2 tags: ``pulp:<resource>`` for each reserved resource, ``pulp:action:<type>``,
    and each label as ``key:value``."""
    tags = []
    if task.reservation is not None:
        tags += [f"pulp:{r}" for r in (*task.reservation.exclusive, *task.reservation.shared)]
    tags.append(f"pulp:action:{task.type}")
    tags += [f"{k}:{v}" for k, v in sorted(task.labels.items())]
    return tags


def v2_error(task: Task) -> dict[str, Any] | None:
    if task.state not in (State.FAILED, State.TIMED_OUT, State.CANCELED) or (
        task.state is State.CANCELED and task.error is None
    ):
        return None
    info = task.error
    description = exception_of(task) or "the task failed"
    if info is not None:
        description = info.message or info.type
    return {
        "code": "PLP0000",
        "description": description,
        "data": {"type": info.type if info else task.state.value},
        "sub_errors": [],
    }


def v2_task(task: Task, prefix: str) -> dict[str, Any]:
    """A Pulp 2 task report."""
    report: dict[str, Any] = {
        "_href": href(prefix, task.id),
        "_ns": "task_status",
        "task_id": task.id,
        "id": task.id,
        "task_type": task.type,
        "state": V2_STATES[task.state],
        "worker_name": task.worker,
        "progress_report": progress_of(task) or {},
        "result": task.result,
        "error": v2_error(task),
        "exception": exception_of(task),
        "traceback": task.error.traceback if task.error else None,
        "start_time": when(task.started_at),
        "finish_time": when(task.finished_at),
        "tags": tags_of(task),
        "spawned_tasks": [{"_href": href(prefix, c), "task_id": c} for c in task.children],
        "group_id": task.group_id,
    }
    if task.worker is not None:
        report["queue"] = f"{task.worker}.dq"
    return report


def call_report(tasks: Sequence[Task], prefix: str) -> dict[str, Any]:
    """Pulp 2's 202 answer to an asynchronous call."""
    return {
        "result": None,
        "error": None,
        "spawned_tasks": [{"_href": href(prefix, t.id), "task_id": t.id} for t in tasks],
    }


def summary(states: Mapping[str, int]) -> dict[str, int]:
    """A group's state summary in Pulp 2's names (taskgate states as `GroupSummary` counts)."""
    out = dict.fromkeys(V2_SUMMARY, 0)
    for state, count in states.items():
        out[V2_STATES[State(state)]] += count
    out["total"] = sum(states.values())
    return out


# -- search criteria ---------------------------------------------------------------

SEARCHABLE = {"task_id", "state", "task_type", "worker_name", "group_id", "tags"}
SORTABLE = {"task_id", "start_time", "finish_time", "state", "task_type"}


class CriteriaError(ValueError):
    """Search criteria Pulp 2 would refuse (a 400)."""


def parse_criteria(
    body: Any,
) -> tuple[dict[str, list[Any]], list[str] | None, list[tuple[str, bool]], int | None, int]:
    """``{"criteria": {filters, fields, sort, limit, skip}}`` → (filters as field →
    accepted values, fields, sort as (field, descending), limit, skip)."""
    if not isinstance(body, dict) or set(body) - {"criteria"}:
        raise CriteriaError('the body must be {"criteria": {...}}')
    criteria = body.get("criteria", {})
    if not isinstance(criteria, dict):
        raise CriteriaError("criteria must be an object")
    unknown = set(criteria) - {"filters", "fields", "sort", "limit", "skip"}
    if unknown:
        raise CriteriaError(f"unknown criteria: {', '.join(sorted(unknown))}")
    filters: dict[str, list[Any]] = {}
    raw_filters = criteria.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise CriteriaError("filters must be an object")
    for field, condition in raw_filters.items():
        if field not in SEARCHABLE:
            raise CriteriaError(f"cannot filter on {field!r} (on: {', '.join(sorted(SEARCHABLE))})")
        if isinstance(condition, dict):
            if set(condition) != {"$in"} or not isinstance(condition["$in"], list):
                raise CriteriaError(
                    f'filter {field}: only equality and {{"$in": [...]}} are served'
                )
            filters[field] = list(condition["$in"])
        elif isinstance(condition, str | int | float | bool) or condition is None:
            filters[field] = [condition]
        else:
            raise CriteriaError(f'filter {field}: a value or {{"$in": [...]}}')
    fields = criteria.get("fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise CriteriaError("fields must be a list of field names")
    sort: list[tuple[str, bool]] = []
    for entry in criteria.get("sort") or []:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or entry[0] not in SORTABLE
            or entry[1] not in ("ascending", "descending")
        ):
            raise CriteriaError(
                'sort is a list of [field, "ascending"|"descending"] on'
                f" {', '.join(sorted(SORTABLE))}"
            )
        sort.append((entry[0], entry[1] == "descending"))
    limit = criteria.get("limit")
    skip = criteria.get("skip", 0)
    for name, value in (("limit", limit), ("skip", skip)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise CriteriaError(f"{name} must be a non-negative integer")
    return filters, fields, sort, limit, skip or 0


def matches(report: Mapping[str, Any], filters: Mapping[str, Iterable[Any]]) -> bool:
    for field, accepted in filters.items():
        value = report.get(field)
        wanted = list(accepted)
        if field == "tags":
            if not any(tag in (value or ()) for tag in wanted):
                return False
        elif value not in wanted:
            return False
    return True
