"""What a dashboard reads besides tasks, for both clients: who the key is
(``GET /v1/whoami``), the workers (``GET /v1/workers``), the overview
(``GET /v1/stats``); the calls and their records, parsed as tolerantly as
`taskgate.client._models` parses tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from taskgate.client._base import Call
from taskgate.client._models import _object, _time
from taskgate.client.errors import InvalidResponse

WHOAMI = Call("GET", "/v1/whoami")
WORKERS = Call("GET", "/v1/workers")


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Whoami:
    """Who requests with this key act as."""

    tenant: str
    user: str
    role: str
    """``read``, ``write`` or ``admin``."""
    key_id: str | None = None
    auth: bool = True
    """False: the server runs without keys (everyone is the anonymous admin)."""

    @classmethod
    def from_json(cls, data: object) -> Whoami:
        doc = _object(data, "whoami")
        key_id = doc.get("key_id")
        return cls(
            tenant=_str(doc, "tenant"),
            user=_str(doc, "user"),
            role=_str(doc, "role"),
            key_id=key_id if isinstance(key_id, str) else None,
            auth=doc.get("auth") is not False,
        )


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker process as the store knows it."""

    id: str
    node: str = ""
    pid: int = 0
    concurrency: int = 0
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    heartbeat_age: float = 0.0
    """Seconds since its last heartbeat."""
    running: int = 0
    """Its tasks running (or canceling) now."""
    alive: bool = False
    """Its last heartbeat is at most a lease old."""

    @classmethod
    def from_json(cls, data: object) -> Worker:
        doc = _object(data, "a worker")
        worker_id = doc.get("id")
        if not isinstance(worker_id, str):
            raise InvalidResponse(f"a worker without an id: {doc!r}"[:300])
        return cls(
            id=worker_id,
            node=_str(doc, "node"),
            pid=_int(doc, "pid"),
            concurrency=_int(doc, "concurrency"),
            started_at=_time(doc, "started_at"),
            heartbeat_at=_time(doc, "heartbeat_at"),
            heartbeat_age=_float(doc, "heartbeat_age"),
            running=_int(doc, "running"),
            alive=doc.get("alive") is True,
        )


def workers_of(data: object) -> list[Worker]:
    items = _object(data, "a worker list").get("items")
    if not isinstance(items, list):
        raise InvalidResponse("a worker list without items")
    return [Worker.from_json(item) for item in items]


@dataclass(frozen=True, slots=True)
class Waiting:
    """The task due longest among those waiting for a worker."""

    id: str
    type: str
    created_at: datetime | None
    due_at: datetime | None
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """How many tasks ended in ``[start, start + bucket_seconds)``, by ending
    (``succeeded``, ``failed``, ``canceled``, ``timed_out``)."""

    start: datetime | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stats:
    """The overview: tasks per state (the hot table), the queue, and endings over time.
    Throughput is ``sum(b.counts.values()) / bucket_seconds`` per bucket; the failure
    rate is failed (and timed out) over the ended."""

    states: dict[str, int]
    queue_depth: int
    oldest_waiting: Waiting | None
    window_start: datetime | None
    window_end: datetime | None
    bucket_seconds: int
    series: list[Bucket]

    @classmethod
    def from_json(cls, data: object) -> Stats:
        doc = _object(data, "stats")
        states = doc.get("states")
        oldest = doc.get("oldest_waiting")
        span = doc.get("window")
        span = span if isinstance(span, Mapping) else {}
        series = doc.get("series")
        return cls(
            states={k: v for k, v in states.items() if isinstance(v, int)}
            if isinstance(states, Mapping)
            else {},
            queue_depth=_int(doc, "queue_depth"),
            oldest_waiting=Waiting(
                id=_str(oldest, "id"),
                type=_str(oldest, "type"),
                created_at=_time(oldest, "created_at"),
                due_at=_time(oldest, "due_at"),
                wait_seconds=_float(oldest, "wait_seconds"),
            )
            if isinstance(oldest, Mapping)
            else None,
            window_start=_time(span, "start"),
            window_end=_time(span, "end"),
            bucket_seconds=_int(span, "bucket_seconds"),
            series=[
                Bucket(
                    start=_time(b, "start"),
                    counts={k: v for k, v in b.items() if k != "start" and isinstance(v, int)},
                )
                for b in (series if isinstance(series, list) else [])
                if isinstance(b, Mapping)
            ],
        )


def stats_call(window: float | None, buckets: int | None, tenant: str | None) -> Call:
    query: list[tuple[str, str]] = []
    if window is not None:
        query.append(("window", str(int(window))))
    if buckets is not None:
        query.append(("buckets", str(buckets)))
    if tenant is not None:
        query.append(("tenant", tenant))
    return Call("GET", "/v1/stats", tuple(query))
