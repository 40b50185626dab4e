"""The JSON shapes of the native API: a task, a log page, an operation, a schedule.

One function per shape, building plain dicts that orjson encodes in one call (datetimes
as RFC 3339 UTC with ``Z``, states as their names). ``schemas.py`` describes the same
shapes for the OpenAPI document, and the tests hold the two together.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from taskgate.app import Operation
from taskgate.groups import GroupSummary
from taskgate.http.responses import dumps
from taskgate.model import LogPage, Task
from taskgate.schedules import Schedule
from taskgate.settings import Settings


def task_dict(task: Task) -> dict[str, Any]:
    """Every field of the task resource (DESIGN.md §3), plus ``log_count``."""
    error = task.error
    return {
        "id": task.id,
        "upid": task.upid,
        "type": task.type,
        "object_id": task.object_id,
        "tenant": task.tenant,
        "user": task.user,
        "user_id": task.user_id,
        "node": task.node,
        "worker": task.worker,
        "state": task.state,
        "detailed_state": task.detailed_state,
        "progress": task.progress,
        "progress_detail": task.progress_detail,
        "message": task.message,
        "params": task.params,
        "result": task.result,
        "error": None
        if error is None
        else {"type": error.type, "message": error.message, "traceback": error.traceback},
        "warnings": task.warnings,
        "created_resources": task.created_resources,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "timeout": task.timeout,
        "cancel_requested_at": task.cancel_requested_at,
        "cancel_attempts": task.cancel_attempts,
        "priority": task.priority,
        "idempotency_key": task.idempotency_key,
        "request_id": task.request_id,
        "group_id": task.group_id,
        "parent_id": task.parent_id,
        "schedule_id": task.schedule_id,
        "children": task.children,
        "labels": task.labels,
        "reserved_resources": None if task.reservation is None else task.reservation.to_dict(),
        "acknowledged_at": task.acknowledged_at,
        "acknowledged_by": task.acknowledged_by,
        "created_at": task.created_at,
        "scheduled_at": task.scheduled_at,
        "started_at": task.started_at,
        "updated_at": task.updated_at,
        "finished_at": task.finished_at,
        "archived": task.archived,
        "log_count": task.log_count,
    }


def task_json(task: Task) -> bytes:
    return dumps(task_dict(task))


def log_dict(task_id: str, start: int, page: LogPage) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "start": start,
        "total": page.total,
        "lines": [{"n": ln.n, "t": ln.t, "ts": ln.ts, "level": ln.level} for ln in page.lines],
    }


def operation_dict(op: Operation, settings: Settings) -> dict[str, Any]:
    """An operation; ``archive_after`` and ``purge_after`` are the periods its tasks are
    kept for (its own, else the store's), in seconds, null for ever."""
    archive = op.retention.archive_after
    purge = op.retention.purge_after
    return {
        "name": op.name,
        "description": op.description,
        "parameters": op.json_schema(),
        "timeout": op.timeout,
        "max_attempts": op.retry.max_attempts,
        "retry_on_worker_loss": op.retry_on_worker_loss,
        "isolation": op.isolation,
        "priority": op.priority,
        "exclusive": list(op.exclusive),
        "shared": list(op.shared),
        "limits": [
            {"name": lim.name or op.name, "max": lim.max, "per": lim.per or None}
            for lim in op.limits
        ],
        "archive_after": _seconds(settings.archive_after if archive is None else archive),
        "purge_after": _seconds(settings.purge_after if purge is None else purge),
    }


def _seconds(value: float) -> float | None:
    return None if math.isinf(value) else value


def group_dict(group: GroupSummary) -> dict[str, Any]:
    """A group's summary, with where its tasks are listed."""
    return {
        "id": group.id,
        "total": group.total,
        "ended": group.ended,
        "states": group.states,
        "tasks": f"/v1/tasks?group_id={quote(group.id)}&archived=any",
    }


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """A schedule (`taskgate.schedules.Schedule`); ``next_run`` is null while disabled."""
    return {
        "id": schedule.id,
        "name": schedule.name,
        "tenant": schedule.tenant,
        "user": schedule.user,
        "type": schedule.type,
        "params": schedule.params,
        "options": schedule.options,
        "recurrence": schedule.recurrence,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "overlap": schedule.overlap.value,
        "failure_threshold": schedule.failure_threshold,
        "schedule_threshold": schedule.schedule_threshold,
        "consecutive_failures": schedule.consecutive_failures,
        "total_run_count": schedule.total_run_count,
        "remaining_runs": schedule.remaining_runs,
        "first_run": schedule.first_run,
        "next_run": schedule.next_run if schedule.enabled else None,
        "last_run_at": schedule.last_run_at,
        "last_task_id": schedule.last_task_id,
        "pending_run": schedule.pending_run,
        "disabled_reason": schedule.disabled_reason,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
        "version": schedule.version,
    }
