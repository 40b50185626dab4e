"""CloudCoin's local wallet API tasks (seed 002), served over the `TaskService`.

Enabled by ``Settings.dialects`` containing ``cloudcoin``; mounted at
``Settings.cloudcoin_prefix`` (default: the root), so the document's own pollers work
against this server with only their host changed:

- ``GET /api/v1/tasks/{id}`` and its alias ``GET /get-task-status/{id}``: the task in
  CloudCoin's envelope, ``{"status": "success", "payload": {id, status, progress,
  message, data}}``. ``status`` is ``running`` until the task ends, then ``completed``
  or ``error``; ``progress`` an integer 0-100; ``message`` the task's message
  (``Command Started`` before the handler says anything, ``Command Completed`` at the
  end, the error's text on failure); ``data`` the result, only once completed.
- Kickoffs an app declares (`kickoff`): ``POST /api/v1/<command>`` and its alias run an
  operation with the JSON body as its parameters and answer 200 with the new task in the
  envelope (``Command Started``), as CloudCoin's ``/backup`` and ``/join`` do.
- Errors: ``{"status": "error", "payload": {"code", "message"}}`` with the HTTP status
  (`CODES` lists the codes).

CloudCoin's wallet API is a local service without authentication, and its documents'
clients send none. Here ``Authorization: Bearer <key>`` carries a taskgate key as
natively; a request without one acts for ``Settings.cloudcoin_tenant`` with the role
``write`` when that is set (the local-service behaviour, for a trusted network only), and
is refused (401) when it is not.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskgate.app import App
from taskgate.errors import (
    AuthenticationFailed,
    InvalidId,
    InvalidParameters,
    NotFound,
    TaskgateError,
)
from taskgate.http.asgi import Receive, Scope, Send
from taskgate.http.auth import ANONYMOUS, Principal
from taskgate.http.dialects import (
    StatusRenderings,
    field_errors,
    key_principal,
    open_request,
    respond,
)
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import Request
from taskgate.http.responses import CT_JSON, Response
from taskgate.ids import parse_task_id
from taskgate.model import State, Task
from taskgate.service import Submission

if TYPE_CHECKING:
    from taskgate.http.application import Application

logger = logging.getLogger("taskgate.http")

_COMMAND = re.compile(r"^[a-z][a-z0-9-]{0,63}\Z")

CODES = {
    400: 4000,
    401: 4010,
    403: 4030,
    404: 4040,
    405: 4050,
    409: 4090,
    413: 4130,
    415: 4150,
    422: 4220,
    500: 5000,
    503: 5030,
}
"""The ``payload.code`` of an error, by HTTP status (CloudCoin's own codes are per
command; clients branch on the status and show the message)."""
STARTED = "Command Started"
COMPLETED = "Command Completed"


class CloudCoinError(Exception):
    """An error answered in CloudCoin's envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- kickoffs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kickoff:
    """``POST /api/v1/<command>`` (and ``POST /<alias>``) starts ``operation``."""

    command: str
    operation: str
    alias: str | None = None


_KICKOFFS: weakref.WeakKeyDictionary[App, dict[str, Kickoff]] = weakref.WeakKeyDictionary()


def kickoff(app: App, command: str, operation: str, *, alias: str | None = None) -> Kickoff:
    """Declare ``POST /api/v1/<command>`` (and ``POST /<alias>``) for ``app``: the JSON
    body is the parameters of ``operation``, answered with the new task at once."""
    for name in (command, alias):
        if name is not None and not _COMMAND.match(name):
            raise ValueError(f"a CloudCoin command is lowercase letters, digits and '-': {name!r}")
    declared = Kickoff(command, operation, alias)
    _KICKOFFS.setdefault(app, {})[command] = declared
    return declared


def kickoffs(app: App) -> dict[str, Kickoff]:
    return _KICKOFFS.get(app, {})


# -- translation ------------------------------------------------------------------


def status_of(task: Task) -> str:
    if task.state is State.SUCCEEDED:
        return "completed"
    if task.terminal:
        return "error"
    return "running"


def message_of(task: Task) -> str:
    if task.state is State.SUCCEEDED:
        return COMPLETED
    if task.terminal:
        if task.error is not None:
            return task.error.message or task.error.type
        return {State.CANCELED: "Task canceled", State.TIMED_OUT: "Task timed out"}.get(
            task.state, task.message or "Task failed"
        )
    return task.message or STARTED


def payload(task: Task) -> dict[str, Any]:
    """The task as CloudCoin's ``payload``."""
    completed = task.state is State.SUCCEEDED
    progress = 100 if completed else int(task.progress or 0)
    return {
        "id": task.id,
        "status": status_of(task),
        "progress": min(max(progress, 0), 100),
        "message": message_of(task),
        "data": task.result if completed else None,
    }


def envelope(task: Task) -> bytes:
    return orjson.dumps({"status": "success", "payload": payload(task)})


# -- the dialect ---------------------------------------------------------------------

Handler = Callable[["CloudCoinDialect", Request, Principal, str], Awaitable[Response]]


class CloudCoinDialect:
    """The ASGI callable `Application` hands every request under its prefixes."""

    name = "cloudcoin"

    def __init__(self, application: Application) -> None:
        self.application = application
        prefix = application.settings.cloudcoin_prefix
        self.api = prefix + "/api/v1"
        self.alias = prefix + "/get-task-status"
        self.tasks = self.api + "/tasks/"
        self.commands: dict[str, Kickoff] = {}
        for declared in kickoffs(application.service.app).values():
            self.commands[f"{self.api}/{declared.command}"] = declared
            if declared.alias is not None:
                self.commands[f"{prefix}/{declared.alias}"] = declared
        aliases = [p for p in self.commands if not p.startswith(self.api + "/")]
        self.prefixes = [self.api, self.alias, *aliases]
        self.renderings = StatusRenderings()
        """Envelopes by task id, served only while the task's version is unchanged."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = open_request(self.application, scope, receive)
        answer = self._answer(request, scope["method"], request.path)
        await respond(request, send, answer, lambda exc: error_response(exc, request.request_id))

    async def _answer(self, request: Request, method: str, path: str) -> Response:
        for base in (self.tasks, self.alias + "/"):
            if path.startswith(base):
                raw = path[len(base) :]
                if not raw or "/" in raw:
                    break
                if method != "GET":
                    raise CloudCoinError(405, f"Method {method} is not allowed on {path}")
                principal = request.principal = await self._principal(request)
                return await self.status(request, principal, raw)
        declared = self.commands.get(path.rstrip("/"))
        if declared is not None:
            if method != "POST":
                raise CloudCoinError(405, f"Method {method} is not allowed on {path}")
            principal = request.principal = await self._principal(request)
            if not principal.allows("write"):
                raise CloudCoinError(
                    403, f"User {principal.user!r} has role {principal.role!r}; this needs 'write'"
                )
            return await self.start(request, principal, declared)
        raise CloudCoinError(404, f"No such command: {path}")

    async def _principal(self, request: Request) -> Principal:
        keys = self.application.keys
        if keys is None:
            if self.application.settings.auth:
                raise CloudCoinError(401, "API keys are not available on this server")
            return ANONYMOUS
        raw = request.headers.get(b"authorization")
        if raw is None:
            tenant = self.application.settings.cloudcoin_tenant
            if tenant is None:
                raise CloudCoinError(401, "Authentication required: Authorization: Bearer <key>")
            return Principal(tenant=tenant, user="cloudcoin", role="write")
        scheme, _, token_raw = raw.strip().partition(b" ")
        token_raw = token_raw.strip()
        if scheme.lower() != b"bearer" or not token_raw:
            raise CloudCoinError(401, "The Authorization header must be 'Bearer <key>'")
        try:
            token = token_raw.decode("ascii")
            principal = await key_principal(keys, token)
        except UnicodeDecodeError:
            raise CloudCoinError(401, "Invalid API key") from None
        except AuthenticationFailed as exc:
            raise CloudCoinError(401, exc.message) from None
        return principal

    async def status(self, request: Request, principal: Principal, raw: str) -> Response:
        """The status read the pollers repeat: the cached envelope while the task's
        version is unchanged (one two-column read), as the native cache does."""
        tenant = principal.scope
        try:
            task_id = parse_task_id(raw)
        except InvalidId:
            raise CloudCoinError(
                400, f"Invalid task id {raw!r}: a GUID (32 hex digits, dashes allowed)"
            ) from None
        try:
            body = await self.renderings.read(request.service, task_id, task_id, tenant, envelope)
        except NotFound:
            raise CloudCoinError(404, f"Task not found: {raw}") from None
        return Response(200, body, [CT_JSON])

    async def start(self, request: Request, principal: Principal, declared: Kickoff) -> Response:
        try:
            params = await request.json_object(required=False) or {}
        except HTTPProblem as exc:
            raise CloudCoinError(exc.status, f"Validation error. {exc.detail}") from None
        try:
            task, _ = await request.service.submit_one(
                declared.operation,
                params,
                Submission(
                    tenant=principal.tenant,
                    user=principal.user,
                    user_id=principal.user_id,
                    request_id=request.request_id,
                ),
            )
        except InvalidParameters as exc:
            raise CloudCoinError(400, f"Validation error. {field_errors(exc)}") from None
        return Response(200, envelope(task), [CT_JSON])


def error_response(exc: Exception, request_id: str) -> Response:
    """CloudCoin's error envelope for ``exc``; anything unexpected is a bare 500."""
    if isinstance(exc, CloudCoinError):
        status, message = exc.status, exc.message
    elif isinstance(exc, HTTPProblem):
        status, message = exc.status, exc.detail
    elif isinstance(exc, TaskgateError) and (exc.status < 500 or exc.status == 503):
        status, message = exc.status, exc.message
    else:
        logger.error("cloudcoin dialect request failed (request %s)", request_id, exc_info=exc)
        status, message = 500, "Internal server error"
    body = {"status": "error", "payload": {"code": CODES.get(status, 5000), "message": message}}
    return Response(status, orjson.dumps(body), [CT_JSON])


def create(application: Application) -> CloudCoinDialect:
    """The CloudCoin dialect for ``application``."""
    return CloudCoinDialect(application)
