"""Rows to records. Every backend returns rows shaped like the SQLite schema's: JSON
columns as text (or already decoded), times as epoch seconds (or datetimes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from taskgate.model import ErrorInfo, Reservation, State, Task
from taskgate.storage.connector import Row


def dumps(value: Any) -> str:
    """JSON text for a stored column."""
    return orjson.dumps(value).decode()


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, UTC)


def as_datetime(value: Any) -> datetime:
    """A stored time (epoch seconds or a datetime) as an aware datetime."""
    result = _time(value)
    assert result is not None
    return result


def task_from_row(row: Row) -> Task:
    error = _json(row["error"])
    resources = row["resources"]
    children = row["children"]
    created = _time(row["created_at"])
    updated = _time(row["updated_at"])
    assert created is not None and updated is not None
    return Task(
        id=str(row["id"]),
        upid=row["upid"],
        type=row["type"],
        state=State(row["state"]),
        params=_json(row["params"]),
        created_at=created,
        updated_at=updated,
        object_id=row["object_id"],
        tenant=row["tenant"],
        user=row["user_name"],
        user_id=row["user_id"],
        node=row["node"],
        worker=row["worker"],
        detailed_state=row["detailed_state"],
        progress=row["progress"],
        progress_detail=_json(row["progress_detail"]),
        message=row["message"],
        result=_json(row["result"]),
        error=None if error is None else ErrorInfo.from_dict(error),
        warnings=row["warnings"],
        created_resources=_json(row["created_resources"]) or {},
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        retry_on_worker_loss=bool(row["retry_on_worker_loss"]),
        cancel_requested_at=_time(row["cancel_requested_at"]),
        cancel_attempts=row["cancel_attempts"],
        priority=row["priority"],
        idempotency_key=row["idempotency_key"],
        request_id=row["request_id"],
        group_id=row["group_id"],
        parent_id=row["parent_id"],
        schedule_id=row["schedule_id"],
        labels=_json(row["labels"]) or {},
        reservation=None if resources is None else Reservation.from_dict(_json(resources)),
        children=tuple(_json(children)) if children else (),
        acknowledged_at=_time(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        scheduled_at=_time(row["scheduled_at"]),
        started_at=_time(row["started_at"]),
        finished_at=_time(row["finished_at"]),
        lease_expires_at=_time(row["lease_expires_at"]),
        archived=bool(row["archived"]),
        log_count=row["log_count"],
        version=row["version"],
        traceparent=row["traceparent"],
    )
