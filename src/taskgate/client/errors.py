"""Everything the SDK raises on purpose: one tree, rooted at `TaskgateClientError`.

    TaskgateClientError
    ├── TransportError              no HTTP answer came back (after any retries)
    │   ├── ConnectionFailed        the server could not be reached, or the connection broke
    │   └── RequestTimeout          the server did not answer within the client's timeout
    ├── InvalidResponse             the answer is not what the API sends (not JSON, wrong shape)
    ├── APIError                    the server answered an error status with a problem document
    │   ├── BadRequest              400  malformed request (bad query value, header, id)
    │   ├── Unauthorized            401  missing, malformed, unknown, revoked or expired key
    │   ├── Forbidden               403  the key's role does not allow this
    │   ├── NotFound                404  no such task, operation, schedule or group (or another
    │   │                                tenant's)
    │   ├── Conflict                409  the state forbids this (cancel an ended task, suspend a
    │   │                                running one, run a schedule whose last run goes on, a
    │   │                                name taken)
    │   ├── PayloadTooLarge         413  the body is over the server's limit
    │   ├── UnsupportedMediaType    415  the body is not JSON
    │   ├── UnprocessableEntity     422  invalid parameters or options; ``errors`` per field
    │   └── ServerError             5xx  the server failed
    │       └── ServiceUnavailable  503  not ready, or the store is unavailable; retried
    ├── TaskError                   the task ended, but did not succeed (``wait``)
    │   ├── TaskFailed              its handler raised: remote type, message, traceback
    │   ├── TaskCanceled            it was canceled
    │   └── TaskTimedOut            it ran past its timeout
    ├── WaitTimeout                 ``wait``'s own timeout passed before the task ended
    └── GroupWaitTimeout            ``wait_group``'s timeout passed before every task ended

`APIError` carries the RFC 9457 problem document (`Problem`: type, title, status,
detail, instance, request_id, field errors and any extension members); a status with no
class of its own raises `APIError` (4xx) or `ServerError` (5xx). A `TaskError` carries
the ended `Task`; `WaitTimeout` carries the task as last seen, `GroupWaitTimeout` the
group's summary (`Group`).

The class docstring is each error's default message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskgate.client._models import Group, Task


class TaskgateClientError(Exception):
    """The taskgate client failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        super().__init__(self.message)


# -- transport -------------------------------------------------------------------------


class TransportError(TaskgateClientError):
    """No answer came from the server."""


class ConnectionFailed(TransportError):
    """The server could not be reached, or the connection broke."""


class RequestTimeout(TransportError):
    """The server did not answer in time."""


class InvalidResponse(TaskgateClientError):
    """The server's answer is not what the taskgate API sends."""


# -- problems --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field of a 422: its name (``vmid``, ``params.disks.0.size``, or empty
    for the whole body) and what it needs."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem document, as the server sent it.

    ``extensions`` holds the members beyond the standard ones (``parameter``,
    ``header``, ...). An error answer that is not problem+json (a proxy's HTML page) is
    turned into a problem with ``type`` ``about:blank`` and the body's start as detail.
    """

    status: int
    type: str = "about:blank"
    title: str = ""
    detail: str = ""
    instance: str | None = None
    request_id: str | None = None
    errors: tuple[FieldError, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The last part of the type URI (``task-not-found``), or ``about:blank``."""
        return self.type.rsplit("/", 1)[-1]


class APIError(TaskgateClientError):
    """The server answered with an error."""

    status: int = 0

    def __init__(self, problem: Problem, message: str | None = None) -> None:
        self.problem = problem
        self.status = problem.status
        if message is None:
            message = f"{problem.status} {problem.title or 'error'}"
            if problem.detail:
                message += f": {problem.detail}"
            if problem.request_id:
                message += f" (request {problem.request_id})"
        super().__init__(message)

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def request_id(self) -> str | None:
        return self.problem.request_id

    @property
    def errors(self) -> tuple[FieldError, ...]:
        return self.problem.errors


class BadRequest(APIError):
    """The request is malformed."""

    status = 400


class Unauthorized(APIError):
    """The API key is missing, malformed, unknown, revoked or expired."""

    status = 401


class Forbidden(APIError):
    """The API key's role does not allow this."""

    status = 403


class NotFound(APIError):
    """No such task, operation, schedule or group."""

    status = 404


class Conflict(APIError):
    """The task's (or schedule's) state does not allow this."""

    status = 409


class PayloadTooLarge(APIError):
    """The request body is larger than the server accepts."""

    status = 413


class UnsupportedMediaType(APIError):
    """The request body is not of a type the server accepts."""

    status = 415


class UnprocessableEntity(APIError):
    """The parameters or task options are invalid; ``errors`` names each wrong field."""

    status = 422


class ServerError(APIError):
    """The server failed."""

    status = 500


class ServiceUnavailable(ServerError):
    """The service is unavailable; try again shortly."""

    status = 503

    def __init__(
        self, problem: Problem, message: str | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(problem, message)
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), if it said."""


_BY_STATUS: dict[int, type[APIError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        UnprocessableEntity,
        ServiceUnavailable,
    )
}


def error_for(problem: Problem, *, retry_after: float | None = None) -> APIError:
    """The exception for a problem, by its status."""
    cls = _BY_STATUS.get(problem.status)
    if cls is ServiceUnavailable:
        return ServiceUnavailable(problem, retry_after=retry_after)
    if cls is not None:
        return cls(problem)
    if problem.status >= 500:
        return ServerError(problem)
    return APIError(problem)


# -- task outcomes ---------------------------------------------------------------------


class TaskError(TaskgateClientError):
    """The task did not succeed."""

    def __init__(self, task: Task, message: str | None = None) -> None:
        self.task = task
        super().__init__(message or f"task {task.id} ({task.type}) ended {task.state}")


class TaskFailed(TaskError):
    """The task failed: its handler raised an exception.

    ``error_type``, ``error_message`` and ``traceback`` are the remote exception's (the
    traceback is also added as a note, so it shows when this error is printed).
    """

    def __init__(self, task: Task) -> None:
        error = task.error
        self.error_type = error.type if error else "Error"
        self.error_message = error.message if error else (task.message or "")
        self.traceback = error.traceback if error else None
        text = f"task {task.id} ({task.type}) failed: {self.error_type}"
        if self.error_message:
            text += f": {self.error_message}"
        super().__init__(task, text)
        if self.traceback:
            self.add_note(f"Remote traceback:\n{self.traceback.rstrip()}")


class TaskCanceled(TaskError):
    """The task was canceled."""

    def __init__(self, task: Task) -> None:
        super().__init__(task, f"task {task.id} ({task.type}) was canceled")


class TaskTimedOut(TaskError):
    """The task ran past its timeout."""

    def __init__(self, task: Task) -> None:
        limit = f" of {task.timeout:g} s" if task.timeout else ""
        super().__init__(task, f"task {task.id} ({task.type}) ran past its timeout{limit}")


class WaitTimeout(TaskgateClientError):
    """The wait ended before the task did; ``task`` is the task as last seen."""

    def __init__(self, task: Task, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(
            f"task {task.id} ({task.type}) still {task.state} after waiting {timeout:g} s"
        )


class GroupWaitTimeout(TaskgateClientError):
    """The wait ended before every task of the group did; ``group`` is its summary as
    last seen."""

    def __init__(self, group: Group, timeout: float) -> None:
        self.group = group
        self.timeout = timeout
        super().__init__(
            f"group {group.id}: {group.total - group.finished} of {group.total} tasks"
            f" still going after waiting {timeout:g} s"
        )
