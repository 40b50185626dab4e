"""The task: its states, the transitions between them, and its record.

Every state change in the store is a conditional update (``... WHERE state IN (allowed
sources)``); `TRANSITIONS` is the one place that says which changes exist. Storage
backends and the service read it; nothing else decides what may follow what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    QUEUED = "queued"
    """Accepted and due; waiting for a worker."""
    SCHEDULED = "scheduled"
    """Accepted; waiting for its ``scheduled_at`` time (first run or a retry's backoff)."""
    SUSPENDED = "suspended"
    """Accepted, and held: never claimed until resumed (Pulp's suspended)."""
    RUNNING = "running"
    """Claimed by a worker, whose lease is current."""
    CANCELING = "canceling"
    """Running, and asked to stop; the handler sees it through its context."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[State] = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELED, State.TIMED_OUT}
)
ACTIVE: frozenset[State] = frozenset({State.RUNNING, State.CANCELING})
WAITING: frozenset[State] = frozenset({State.QUEUED, State.SCHEDULED})
"""Waiting for a worker: what claims take once due."""
PENDING: frozenset[State] = WAITING | {State.SUSPENDED}
"""Accepted and not started: waiting, or suspended."""

TRANSITIONS: Mapping[State, frozenset[State]] = {
    # claimed by a worker, canceled or suspended before it ran
    State.QUEUED: frozenset({State.RUNNING, State.CANCELED, State.SUSPENDED}),
    State.SCHEDULED: frozenset({State.RUNNING, State.CANCELED, State.QUEUED, State.SUSPENDED}),
    # resumed: queued, or scheduled while its time has not come
    State.SUSPENDED: frozenset({State.QUEUED, State.SCHEDULED, State.CANCELED}),
    # ended by its handler, its timeout, a cancel request, or a retry
    State.RUNNING: frozenset(
        {
            State.SUCCEEDED,
            State.FAILED,
            State.TIMED_OUT,
            State.CANCELING,
            State.CANCELED,
            State.QUEUED,  # worker lost, operation safe to retry
            State.SCHEDULED,  # retry after a backoff
        }
    ),
    # a cancel request races the handler: whichever ending comes first wins
    State.CANCELING: frozenset({State.CANCELED, State.SUCCEEDED, State.FAILED, State.TIMED_OUT}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELED: frozenset(),
    State.TIMED_OUT: frozenset(),
}


def sources(target: State) -> tuple[State, ...]:
    """The states from which ``target`` can be reached, in declaration order."""
    return tuple(s for s in State if target in TRANSITIONS[s])


def can_transition(current: State, target: State) -> bool:
    return target in TRANSITIONS[current]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a task failed: the exception's type name, its message, and the traceback."""

    type: str
    message: str
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorInfo:
        return cls(
            type=str(data.get("type", "Error")),
            message=str(data.get("message", "")),
            traceback=data.get("traceback"),
        )


WORKER_LOST = "WorkerLost"
"""`ErrorInfo.type` of a task whose worker stopped heartbeating."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a task's log; ``n`` counts from 1."""

    n: int
    t: str
    ts: datetime
    level: str = "info"


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Limit:
    """A concurrency limit a task counts against: at most ``max`` tasks holding ``key``
    run at once, across every worker of the store."""

    key: str
    max: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a task reserves while it runs (pulpcore's resource locks): no two tasks run
    at once when one holds a resource exclusively and the other holds it at all; tasks
    whose resources conflict run one after another, in submit order."""

    exclusive: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    limits: tuple[Limit, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exclusive or self.shared or self.limits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exclusive": list(self.exclusive),
            "shared": list(self.shared),
            "limits": [{"key": lim.key, "max": lim.max} for lim in self.limits],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reservation:
        return cls(
            exclusive=tuple(data.get("exclusive") or ()),
            shared=tuple(data.get("shared") or ()),
            limits=tuple(Limit(str(d["key"]), int(d["max"])) for d in data.get("limits") or ()),
        )


@dataclass(frozen=True, slots=True)
class Task:
    """A task as stored. Times are aware UTC datetimes."""

    id: str
    upid: str
    type: str
    state: State
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    object_id: str | None = None
    tenant: str = "default"
    user: str = "anonymous"
    user_id: int | None = None
    """The submitting user's numeric id, from their API key (None: not known)."""
    node: str | None = None
    worker: str | None = None
    detailed_state: str | None = None
    progress: float | None = None
    progress_detail: dict[str, Any] | None = None
    message: str | None = None
    result: Any = None
    error: ErrorInfo | None = None
    warnings: int = 0
    created_resources: dict[str, list[str]] = field(default_factory=dict)
    attempt: int = 0
    max_attempts: int = 1
    timeout: float | None = None
    retry_on_worker_loss: bool = False
    cancel_requested_at: datetime | None = None
    cancel_attempts: int = 0
    priority: int = 0
    idempotency_key: str | None = None
    request_id: str | None = None
    group_id: str | None = None
    parent_id: str | None = None
    schedule_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    reservation: Reservation | None = None
    """The resources and limits it holds while it runs (None: none)."""
    children: tuple[str, ...] = ()
    """The ids of the tasks its handler spawned, in spawn order."""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    archived: bool = False
    """Moved to the history table (`taskgate.retention`): ended, kept for reading."""
    log_count: int = 0
    version: int = 1
    traceparent: str | None = None
    """The W3C trace context of the span that submitted it (`taskgate.tracing`)."""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def etag(self) -> str:
        """A strong entity tag: changes whenever the stored task changes."""
        return f'"{self.id[-12:]}.{self.version}"'


def utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What a task list selects. Empty fields select everything."""

    states: tuple[State, ...] = ()
    types: tuple[str, ...] = ()
    object_id: str | None = None
    tenant: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    labels: tuple[tuple[str, str], ...] = ()
    acknowledged: bool | None = None
    """True: only acknowledged tasks; False: only those not acknowledged yet."""
    schedule_id: str | None = None
    """Only the runs of this schedule."""
    group_id: str | None = None
    """Only the tasks of this group (job)."""
    parent_id: str | None = None
    """Only the children of this task."""
    resource: str | None = None
    """Only tasks that reserve this resource (exclusive or shared)."""
    archived: bool | None = False
    """False: the hot table only (the default); True: history only; None: both."""
    q: str | None = None
    """A search, by exact match only (each one an index lookup): the task whose id is
    ``q`` (with or without dashes, in any case), the tasks acting on object ``q``, those
    with a label whose value is ``q``, and, when ``q`` holds a ``=``, those with the
    label ``key=value`` it names (split at the first ``=``). The other fields narrow
    what it finds."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a task list, newest first; ``next_cursor`` is None on the last page."""

    items: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogLine]
    total: int
