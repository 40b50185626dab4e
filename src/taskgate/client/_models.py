"""The SDK's own records of what the API answers: tasks, log lines, events, operations,
schedules, groups.

Frozen dataclasses parsed tolerantly from the JSON of the native API v1: a field the SDK
does not know is ignored and a field a server does not send takes its default, so an
SDK works against older and newer servers alike. Only what the SDK cannot do without
(a task's ``id``, ``type`` and ``state``; a schedule's ``id``, ``name`` and ``type``) is
required; a document without it is an `InvalidResponse`.

These classes are the SDK's, not the server's (``taskgate.model``): the client knows
only the HTTP API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from taskgate.client.errors import InvalidResponse


class State(StrEnum):
    """A task's state. A state this SDK does not know stays a plain ``str``."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SUSPENDED = "suspended"
    RUNNING = "running"
    CANCELING = "canceling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"


TERMINAL_STATES: frozenset[str] = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELED, State.TIMED_OUT}
)


# -- tolerant field readers ------------------------------------------------------------


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _required_str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidResponse(f"{what} without a string {key!r}: {_preview(data)}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings (other items dropped); () when absent."""
    value = data.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _required_list(data: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise InvalidResponse(f"{what} without {key!r}: {_preview(data)}")
    return value


def _objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects of a list (other items dropped); [] when absent."""
    value = data.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    """An RFC 3339 time (``...Z`` or ``+00:00``); None when absent or unreadable."""
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _state(value: str) -> str:
    try:
        return State(value)
    except ValueError:
        return value  # a state a newer server added


def _preview(data: object) -> str:
    text = repr(data)
    return text if len(text) <= 200 else text[:200] + "..."


def _object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidResponse(f"{what} is not a JSON object: {_preview(data)}")
    return data


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a task failed, as the worker recorded it: the remote exception's type name,
    its message, and its traceback (from the handler down)."""

    type: str
    message: str
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorInfo:
        return cls(
            type=_str(data, "type") or "Error",
            message=_str(data, "message") or "",
            traceback=_str(data, "traceback"),
        )


@dataclass(frozen=True, slots=True)
class Limit:
    """A concurrency limit a task counts against: at most ``max`` tasks holding ``key``
    run at once."""

    key: str
    max: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Limit:
        return cls(key=_str(data, "key") or "", max=_int(data, "max"))


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a task reserves while it runs (``reserved_resources``): no task holding one
    of its ``exclusive`` resources, nor one holding a ``shared`` one exclusively, runs
    beside it; and it counts against its ``limits``."""

    exclusive: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    limits: tuple[Limit, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reservation:
        return cls(
            exclusive=_strs(data, "exclusive"),
            shared=_strs(data, "shared"),
            limits=tuple(Limit.from_json(d) for d in _objects(data, "limits")),
        )


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the API shows it (``GET /v1/tasks/{id}``). Times are aware datetimes."""

    id: str
    type: str
    state: str
    """A `State` member when the SDK knows the state, else the server's string."""
    upid: str | None = None
    object_id: str | None = None
    tenant: str | None = None
    user: str | None = None
    user_id: int | None = None
    node: str | None = None
    worker: str | None = None
    detailed_state: str | None = None
    progress: float | None = None
    progress_detail: dict[str, Any] | None = None
    message: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: ErrorInfo | None = None
    warnings: int = 0
    created_resources: dict[str, list[str]] = field(default_factory=dict)
    attempt: int = 0
    max_attempts: int = 1
    timeout: float | None = None
    cancel_requested_at: datetime | None = None
    cancel_attempts: int = 0
    priority: int = 0
    idempotency_key: str | None = None
    request_id: str | None = None
    group_id: str | None = None
    parent_id: str | None = None
    schedule_id: str | None = None
    children: tuple[str, ...] = ()
    """The tasks its handler spawned, in spawn order."""
    labels: dict[str, str] = field(default_factory=dict)
    reserved_resources: Reservation | None = None
    """None when it reserves nothing."""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    archived: bool = False
    """It has moved to history (``list(archived=True)`` finds it there)."""
    log_count: int = 0

    @property
    def terminal(self) -> bool:
        """The task has ended (succeeded, failed, canceled or timed out)."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == State.SUCCEEDED

    @classmethod
    def from_json(cls, data: object) -> Task:
        doc = _object(data, "a task")
        error = doc.get("error")
        progress_detail = doc.get("progress_detail")
        resources = doc.get("created_resources")
        labels = doc.get("labels")
        reserved = doc.get("reserved_resources")
        return cls(
            id=_required_str(doc, "id", "a task"),
            type=_required_str(doc, "type", "a task"),
            state=_state(_required_str(doc, "state", "a task")),
            upid=_str(doc, "upid"),
            object_id=_str(doc, "object_id"),
            tenant=_str(doc, "tenant"),
            user=_str(doc, "user"),
            user_id=_opt_int(doc, "user_id"),
            node=_str(doc, "node"),
            worker=_str(doc, "worker"),
            detailed_state=_str(doc, "detailed_state"),
            progress=_float(doc, "progress"),
            progress_detail=dict(progress_detail) if isinstance(progress_detail, dict) else None,
            message=_str(doc, "message"),
            params=_dict(doc, "params"),
            result=doc.get("result"),
            error=ErrorInfo.from_json(error) if isinstance(error, dict) else None,
            warnings=_int(doc, "warnings"),
            created_resources={
                str(kind): [str(i) for i in ids]
                for kind, ids in resources.items()
                if isinstance(ids, list)
            }
            if isinstance(resources, dict)
            else {},
            attempt=_int(doc, "attempt"),
            max_attempts=_int(doc, "max_attempts", 1),
            timeout=_float(doc, "timeout"),
            cancel_requested_at=_time(doc, "cancel_requested_at"),
            cancel_attempts=_int(doc, "cancel_attempts"),
            priority=_int(doc, "priority"),
            idempotency_key=_str(doc, "idempotency_key"),
            request_id=_str(doc, "request_id"),
            group_id=_str(doc, "group_id"),
            parent_id=_str(doc, "parent_id"),
            schedule_id=_str(doc, "schedule_id"),
            children=_strs(doc, "children"),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            reserved_resources=Reservation.from_json(reserved)
            if isinstance(reserved, dict)
            else None,
            acknowledged_at=_time(doc, "acknowledged_at"),
            acknowledged_by=_str(doc, "acknowledged_by"),
            created_at=_time(doc, "created_at"),
            scheduled_at=_time(doc, "scheduled_at"),
            started_at=_time(doc, "started_at"),
            updated_at=_time(doc, "updated_at"),
            finished_at=_time(doc, "finished_at"),
            archived=doc.get("archived") is True,
            log_count=_int(doc, "log_count"),
        )


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a task's log; ``n`` counts from 1."""

    n: int
    t: str
    ts: datetime | None = None
    level: str = "info"

    @property
    def text(self) -> str:
        return self.t

    @classmethod
    def from_json(cls, data: object) -> LogLine:
        doc = _object(data, "a log line")
        n = doc.get("n")
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidResponse(f"a log line without an integer 'n': {_preview(doc)}")
        return cls(
            n=n, t=_str(doc, "t") or "", ts=_time(doc, "ts"), level=_str(doc, "level") or "info"
        )


@dataclass(frozen=True, slots=True)
class LogPage:
    """Lines ``start+1 ..`` of a task's log, and how many lines it has in all."""

    task_id: str
    start: int
    total: int
    lines: list[LogLine]

    @classmethod
    def from_json(cls, data: object, task_id: str = "") -> LogPage:
        doc = _object(data, "a log page")
        lines = _required_list(doc, "lines", "a log page")
        return cls(
            task_id=_str(doc, "task_id") or task_id,
            start=_int(doc, "start"),
            total=_int(doc, "total"),
            lines=[LogLine.from_json(line) for line in lines],
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a task list, newest first; ``next_cursor`` is None on the last."""

    items: list[Task]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: object) -> Page:
        doc = _object(data, "a task list")
        items = _required_list(doc, "items", "a task list")
        cursor = doc.get("next_cursor")
        return cls(
            items=[Task.from_json(item) for item in items],
            next_cursor=cursor if isinstance(cursor, str) and cursor else None,
        )


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A change of a task, from ``GET /v1/events``.

    ``event_id`` is the stream position (opaque): give it as ``last_event_id`` to resume
    after it.
    """

    task_id: str
    type: str
    state: str
    progress: float | None = None
    message: str | None = None
    detailed_state: str | None = None
    updated_at: datetime | None = None
    version: int | None = None
    event_id: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, data: object, event_id: str | None = None) -> TaskEvent:
        doc = _object(data, "a task event")
        return cls(
            task_id=_required_str(doc, "id", "a task event"),
            type=_str(doc, "type") or "",
            state=_state(_required_str(doc, "state", "a task event")),
            progress=_float(doc, "progress"),
            message=_str(doc, "message"),
            detailed_state=_str(doc, "detailed_state"),
            updated_at=_time(doc, "updated_at"),
            version=_opt_int(doc, "version"),
            event_id=event_id or None,
        )


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """An operation's concurrency limit: at most ``max`` of its tasks (of every
    operation sharing ``name``) run at once; with ``per`` (a template such as
    ``{tenant}``), at most ``max`` for each value of it."""

    name: str
    max: int
    per: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConcurrencyLimit:
        return cls(name=_str(data, "name") or "", max=_int(data, "max"), per=_str(data, "per"))


@dataclass(frozen=True, slots=True)
class Operation:
    """A registered operation (``GET /v1/operations``): what ``submit`` can run."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    """The JSON Schema of its parameters."""
    timeout: float | None = None
    max_attempts: int = 1
    retry_on_worker_loss: bool = False
    isolation: str | None = None
    priority: int = 0
    exclusive: tuple[str, ...] = ()
    """Resources each task reserves exclusively: templates over its parameters
    (``repository:{repository_id}``)."""
    shared: tuple[str, ...] = ()
    limits: tuple[ConcurrencyLimit, ...] = ()
    archive_after: float | None = None
    """Seconds an ended task stays in the hot table before it moves to history (None:
    for ever, or a server that does not say)."""
    purge_after: float | None = None
    """Seconds after its end a task is deleted (None: never, or not said)."""

    @classmethod
    def from_json(cls, data: object) -> Operation:
        doc = _object(data, "an operation")
        return cls(
            name=_required_str(doc, "name", "an operation"),
            description=_str(doc, "description"),
            parameters=_dict(doc, "parameters"),
            timeout=_float(doc, "timeout"),
            max_attempts=_int(doc, "max_attempts", 1),
            retry_on_worker_loss=doc.get("retry_on_worker_loss") is True,
            isolation=_str(doc, "isolation"),
            priority=_int(doc, "priority"),
            exclusive=_strs(doc, "exclusive"),
            shared=_strs(doc, "shared"),
            limits=tuple(ConcurrencyLimit.from_json(d) for d in _objects(doc, "limits")),
            archive_after=_float(doc, "archive_after"),
            purge_after=_float(doc, "purge_after"),
        )


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named schedule (``GET /v1/schedules/{id}``): operation ``type`` run with
    ``params`` on ``recurrence``, each run a task. Times are aware datetimes.

    ``recurrence`` is an ISO 8601 repeating interval (``R5/2026-01-01T00:00:00Z/PT1H``,
    ``PT10M``) or a cron expression evaluated in ``timezone``. ``overlap`` says what
    becomes of a run due while the last one goes: ``skip`` or ``queue``.
    """

    id: str
    name: str
    type: str
    """The operation each run is a task of."""
    recurrence: str = ""
    timezone: str = "UTC"
    tenant: str | None = None
    user: str | None = None
    """Who created it; its runs are theirs."""
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """Task options of every run: object_id, priority, labels, timeout, max_attempts."""
    enabled: bool = True
    overlap: str = "skip"
    failure_threshold: int | None = None
    """Disabled after this many failed runs in a row (None: never)."""
    schedule_threshold: float | None = None
    """Seconds late after which a run notes in its log that it is."""
    consecutive_failures: int = 0
    total_run_count: int = 0
    remaining_runs: int | None = None
    """Runs still to come (None: no end)."""
    first_run: datetime | None = None
    next_run: datetime | None = None
    """None when disabled, or when no run is left."""
    last_run_at: datetime | None = None
    last_task_id: str | None = None
    pending_run: datetime | None = None
    """A run waiting for the last one to end (``overlap="queue"``)."""
    disabled_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0

    @classmethod
    def from_json(cls, data: object) -> Schedule:
        doc = _object(data, "a schedule")
        return cls(
            id=_required_str(doc, "id", "a schedule"),
            name=_required_str(doc, "name", "a schedule"),
            type=_required_str(doc, "type", "a schedule"),
            recurrence=_str(doc, "recurrence") or "",
            timezone=_str(doc, "timezone") or "UTC",
            tenant=_str(doc, "tenant"),
            user=_str(doc, "user"),
            params=_dict(doc, "params"),
            options=_dict(doc, "options"),
            enabled=doc.get("enabled") is not False,
            overlap=_str(doc, "overlap") or "skip",
            failure_threshold=_opt_int(doc, "failure_threshold"),
            schedule_threshold=_float(doc, "schedule_threshold"),
            consecutive_failures=_int(doc, "consecutive_failures"),
            total_run_count=_int(doc, "total_run_count"),
            remaining_runs=_opt_int(doc, "remaining_runs"),
            first_run=_time(doc, "first_run"),
            next_run=_time(doc, "next_run"),
            last_run_at=_time(doc, "last_run_at"),
            last_task_id=_str(doc, "last_task_id"),
            pending_run=_time(doc, "pending_run"),
            disabled_reason=_str(doc, "disabled_reason"),
            created_at=_time(doc, "created_at"),
            updated_at=_time(doc, "updated_at"),
            version=_int(doc, "version"),
        )


@dataclass(frozen=True, slots=True)
class SchedulePage:
    """One page of the schedule list, by name; ``next_after`` (give it as ``after``) is
    None on the last."""

    items: list[Schedule]
    next_after: str | None

    @classmethod
    def from_json(cls, data: object) -> SchedulePage:
        doc = _object(data, "a schedule list")
        items = _required_list(doc, "items", "a schedule list")
        after = doc.get("next_after")
        return cls(
            items=[Schedule.from_json(item) for item in items],
            next_after=after if isinstance(after, str) and after else None,
        )


@dataclass(frozen=True, slots=True)
class Group:
    """A group's summary (``GET /v1/groups/{id}``): how many of its tasks are in each
    state, counting those in history. Its tasks are ``list(group_id=...,
    archived="any")``."""

    id: str
    total: int = 0
    ended: bool = False
    """Every task of the group has ended."""
    states: dict[str, int] = field(default_factory=dict)
    """Tasks per state; every state the server knows, 0 for those none is in."""
    tasks: str | None = None
    """Where the server lists its tasks (a path)."""

    @property
    def finished(self) -> int:
        """How many of its tasks have ended (succeeded, failed, canceled, timed out)."""
        return _finished(self.states)

    def count(self, state: str) -> int:
        """How many of its tasks are in ``state``."""
        return self.states.get(state, 0)

    @classmethod
    def from_json(cls, data: object) -> Group:
        doc = _object(data, "a group")
        counts = _dict(doc, "states")
        states = {str(state): _int(counts, state) for state in counts}
        total = _int(doc, "total", sum(states.values()))
        ended = doc.get("ended")
        return cls(
            id=_required_str(doc, "id", "a group"),
            total=total,
            ended=ended if isinstance(ended, bool) else _finished(states) == total,
            states=states,
            tasks=_str(doc, "tasks"),
        )


def _finished(states: Mapping[str, int]) -> int:
    return sum(n for state, n in states.items() if state in TERMINAL_STATES)


@dataclass(frozen=True, slots=True)
class SubmittedGroup:
    """A group just submitted (``POST /v1/groups``): its id, its tasks in the order
    given, and the path of its summary."""

    id: str
    tasks: list[Task]
    group: str | None = None

    @classmethod
    def from_json(cls, data: object) -> SubmittedGroup:
        doc = _object(data, "a submitted group")
        return cls(
            id=_required_str(doc, "id", "a submitted group"),
            tasks=[Task.from_json(t) for t in _required_list(doc, "tasks", "a submitted group")],
            group=_str(doc, "group"),
        )
