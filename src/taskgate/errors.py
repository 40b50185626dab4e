"""taskgate's exceptions: one tree, rooted at `TaskgateError`.

    TaskgateError
    ├── ConfigurationError        a setting, an app reference or an operation definition is wrong
    ├── InvalidRequest            the caller asked for something malformed (HTTP 4xx)
    │   ├── InvalidParameters     operation parameters fail their schema (422, names the field)
    │   ├── InvalidFilter         a list filter, cursor or paging value is wrong (400)
    │   └── InvalidId             a task id is not a UUID (400)
    ├── NotFound                  (404)
    │   ├── TaskNotFound
    │   ├── OperationNotFound
    │   ├── KeyNotFound           no API key with this id
    │   ├── ScheduleNotFound      no schedule with this id (or not visible to this tenant)
    │   └── GroupNotFound         no task of this tenant has this group id
    ├── AuthenticationFailed      no API key, or a malformed, unknown, revoked or expired one (401)
    ├── PermissionDenied          the API key's role does not allow the action (403)
    ├── Conflict                  the task or schedule is in a state that forbids the action (409)
    │   └── IdempotencyConflict   the same Idempotency-Key was used for another request (422)
    ├── StorageError              the store failed; driver errors are translated into this
    │   └── StorageUnavailable    the store cannot be reached right now (503)
    └── TaskInterrupt             raised inside a handler to end it early (never leaves a worker)
        ├── TaskCanceled          the task was canceled
        └── TaskTimedOut          the task ran past its timeout

The class docstring is each error's default message. HTTP maps this tree onto RFC 9457
problem documents (`taskgate.http.problems`); nothing below the HTTP layer knows about
status codes except through `status`.
"""

from __future__ import annotations

from typing import Any


class TaskgateError(Exception):
    """taskgate failed."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.extra = extra
        super().__init__(self.message)


class ConfigurationError(TaskgateError):
    """taskgate is configured wrongly."""


class InvalidRequest(TaskgateError):
    """The request is invalid."""

    status = 400
    title = "Invalid request"


class InvalidParameters(InvalidRequest):
    """The operation's parameters are invalid."""

    status = 422
    title = "Invalid parameters"

    def __init__(self, message: str | None = None, *, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class InvalidFilter(InvalidRequest):
    """A filter, cursor or paging value is invalid."""

    title = "Invalid filter"


class InvalidId(InvalidRequest):
    """The task id is not a valid UUID."""

    title = "Invalid task id"


class NotFound(TaskgateError):
    """Not found."""

    status = 404
    title = "Not found"


class TaskNotFound(NotFound):
    """No such task."""

    title = "Task not found"


class OperationNotFound(NotFound):
    """No such operation."""

    title = "Operation not found"


class KeyNotFound(NotFound):
    """No such API key."""

    title = "API key not found"


class ScheduleNotFound(NotFound):
    """No such schedule."""

    title = "Schedule not found"


class GroupNotFound(NotFound):
    """No such group."""

    title = "Group not found"


class AuthenticationFailed(TaskgateError):
    """A valid API key is required."""

    status = 401
    title = "Unauthorized"

    def __init__(self, message: str | None = None, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        """Why: ``missing``, ``malformed``, ``unknown``, ``revoked`` or ``expired``."""


class PermissionDenied(TaskgateError):
    """This API key's role does not allow this."""

    status = 403
    title = "Forbidden"


class Conflict(TaskgateError):
    """The task's state does not allow this."""

    status = 409
    title = "Conflict"


class IdempotencyConflict(Conflict):
    """This Idempotency-Key was already used for a different request."""

    status = 422  # draft-ietf-httpapi-idempotency-key-header: payload mismatch
    title = "Idempotency key reused"


class StorageError(TaskgateError):
    """The task store failed."""

    title = "Storage error"


class StorageUnavailable(StorageError):
    """The task store is unavailable; try again shortly."""

    status = 503
    title = "Service unavailable"


class TaskInterrupt(TaskgateError):
    """The task was interrupted."""


class TaskCanceled(TaskInterrupt):
    """The task was canceled."""


class TaskTimedOut(TaskInterrupt):
    """The task ran past its timeout."""
