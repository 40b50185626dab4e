"""Redis Cloud's task API (seed 003), served over the `TaskService`.

Enabled by ``Settings.dialects`` containing ``rediscloud``; mounted at
``Settings.rediscloud_prefix`` (default ``/rediscloud/v1``, where Redis Cloud has
``https://api.redislabs.com/v1``):

- ``GET /tasks/{taskId}``: ``taskId``, ``commandType``, ``status`` (``received``,
  ``processing-in-progress``, ``processing-completed``, ``processing-error``), the
  ``description`` of that status, ``timestamp`` (the last update, UTC, milliseconds, Z),
  ``response`` (``{resourceId, additionalResourceId, resource}`` once completed,
  ``{error: {type, status, description}}`` on failure), and the links: ``_links`` (as
  the documents show them) and ``links`` (as the newer API does).
- ``GET /tasks``: the account's tasks of the last ``rediscloud_task_days`` days (10),
  most recently updated first, as ``{"tasks": [...]}``.
- Kickoffs an app declares (`kickoff`): ``POST /<resource>`` starts an operation and
  answers 202 with the task just received; ``GET /<resource>/{id}`` answers the
  resource, so that a completed task's ``resource`` link resolves.

**Auth.** ``x-api-key`` is the account, ``x-api-secret-key`` the user's key: here the
account is a taskgate tenant and the secret key a taskgate API key. The key's tenant must
be the account (a mismatch is a 401); an admin key may name any account, and acts in it.
Errors are ``{"error": {"type", "status", "description"}}``, the shape of a failed task's
error, with the HTTP status.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from taskgate.model import State, Task, TaskFilter
from taskgate.service import Submission

if TYPE_CHECKING:
    from taskgate.http.application import Application

logger = logging.getLogger("taskgate.http")

_RESOURCE = re.compile(r"^[a-z][A-Za-z0-9-]{0,63}\Z")
MAX_LIST = 10_000
"""Most tasks one ``GET /tasks`` answers."""
LABEL_COMMAND = "rediscloud.command_type"

DESCRIPTIONS = {
    "received": "Task request received and is being queued for processing.",
    "processing-in-progress": "Task request is being processed.",
    "processing-completed": "Request processing completed successfully and its resources"
    " are now being provisioned / de-provisioned.",
    "processing-error": "Task request failed during processing. See error information for"
    " failure details.",
}
REASONS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class RedisCloudError(Exception):
    """An error answered in Redis Cloud's shape."""

    def __init__(self, status: int, type: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.type = type
        self.description = description


def error_object(status: int, type: str, description: str) -> dict[str, str]:
    return {
        "type": type,
        "status": f"{status} {REASONS.get(status, 'ERROR')}",
        "description": description,
    }


# -- kickoffs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kickoff:
    """``POST /<resource>`` starts ``operation``; ``GET /<resource>/{id}`` shows what a
    finished one created (its ``created_resources[resource]``)."""

    resource: str
    operation: str
    command_type: str
    """What ``commandType`` says (``subscriptionCreateRequest``)."""
    params: Callable[[Mapping[str, Any]], dict[str, Any]]
    """Redis Cloud's body → the operation's parameters."""
    show: Callable[[Task, str], dict[str, Any]]
    """(creating task, resource id) → the resource as Redis Cloud shows it."""
    title: str
    """The title of a completed task's ``resource`` link (``getSubscriptionInformation``)."""


_KICKOFFS: weakref.WeakKeyDictionary[App, dict[str, Kickoff]] = weakref.WeakKeyDictionary()


def kickoff(
    app: App,
    resource: str,
    operation: str,
    *,
    command_type: str,
    params: Callable[[Mapping[str, Any]], dict[str, Any]],
    show: Callable[[Task, str], dict[str, Any]],
    title: str,
) -> Kickoff:
    """Declare ``POST /<resource>`` and ``GET /<resource>/{id}`` for ``app``."""
    if not _RESOURCE.match(resource):
        raise ValueError(f"a Redis Cloud resource is a path segment: {resource!r}")
    declared = Kickoff(resource, operation, command_type, params, show, title)
    _KICKOFFS.setdefault(app, {})[resource] = declared
    return declared


def kickoffs(app: App) -> dict[str, Kickoff]:
    return _KICKOFFS.get(app, {})


# -- translation ------------------------------------------------------------------


def status_of(task: Task) -> str:
    if task.state is State.SUCCEEDED:
        return "processing-completed"
    if task.terminal:
        return "processing-error"
    if task.state in (State.RUNNING, State.CANCELING):
        return "processing-in-progress"
    return "received"


def _timestamp(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _resource_id(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def response_of(task: Task, kind: str | None) -> dict[str, Any] | None:
    """``response``: what a completed task made, or why a failed one failed."""
    if task.state is State.SUCCEEDED:
        made = task.created_resources.get(kind, []) if kind else []
        if not made:
            made = [v for values in task.created_resources.values() for v in values]
        out: dict[str, Any] = {}
        if made:
            out["resourceId"] = _resource_id(made[0])
        if len(made) > 1:
            out["additionalResourceId"] = _resource_id(made[1])
        if isinstance(task.result, dict):
            out["resource"] = task.result
        return out
    if not task.terminal:
        return None
    if task.state is State.CANCELED:
        error = error_object(409, "TASK_CANCELED", "The task was canceled")
    elif task.state is State.TIMED_OUT:
        error = error_object(504, "TASK_TIMED_OUT", "The task ran past its timeout")
    else:
        info = task.error
        kind_name = _snake(info.type) if info is not None else "GENERAL_ERROR"
        error = error_object(500, kind_name, info.message if info is not None else "failed")
    return {"error": error}


# -- the dialect ---------------------------------------------------------------------


class RedisCloudDialect:
    """The ASGI callable `Application` hands every request under its prefix."""

    name = "rediscloud"

    def __init__(self, application: Application) -> None:
        self.application = application
        self.prefix = application.settings.rediscloud_prefix
        self.prefixes = [self.prefix]
        self.kickoffs = kickoffs(application.service.app)
        self.by_operation = {k.operation: k for k in self.kickoffs.values()}
        self.renderings = StatusRenderings()
        """Task JSON by (id, base URL), served only while the task's version is unchanged."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = open_request(self.application, scope, receive)
        answer = self._answer(request, scope["method"], request.path[len(self.prefix) :])
        await respond(request, send, answer, lambda exc: error_response(exc, request.request_id))

    async def _answer(self, request: Request, method: str, path: str) -> Response:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["tasks"] and len(parts) <= 2:
            if method != "GET":
                raise RedisCloudError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
            principal = request.principal = await self._principal(request)
            if len(parts) == 2:
                return await self.task(request, principal, parts[1])
            return await self.tasks(request, principal)
        declared = self.kickoffs.get(parts[0]) if parts and len(parts) <= 2 else None
        if declared is not None:
            principal = request.principal = await self._principal(request)
            if len(parts) == 1 and method == "POST":
                if not principal.allows("write"):
                    raise RedisCloudError(
                        403, "FORBIDDEN", f"user {principal.user!r} may not start tasks (read key)"
                    )
                return await self.start(request, principal, declared)
            if len(parts) == 2 and method == "GET":
                return await self.show(request, principal, declared, parts[1])
            raise RedisCloudError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
        raise RedisCloudError(404, "NOT_FOUND", f"No such resource: {self.prefix}{path}")

    async def _principal(self, request: Request) -> Principal:
        keys = self.application.keys
        account_raw = request.headers.get(b"x-api-key")
        if keys is None:
            if self.application.settings.auth:
                raise RedisCloudError(401, "UNAUTHORIZED", "API keys are not available here")
            if account_raw is None:
                return ANONYMOUS
            return Principal(tenant=account_raw.decode("latin-1"), user="anonymous", role="write")
        secret_raw = request.headers.get(b"x-api-secret-key")
        if account_raw is None or secret_raw is None:
            raise RedisCloudError(
                401, "UNAUTHORIZED", "Send both x-api-key (the account) and x-api-secret-key"
            )
        try:
            account = account_raw.decode("ascii").strip()
            secret = secret_raw.decode("ascii").strip()
            principal = await key_principal(keys, secret)
        except UnicodeDecodeError:
            raise RedisCloudError(401, "UNAUTHORIZED", "Invalid API key") from None
        except AuthenticationFailed as exc:
            raise RedisCloudError(401, "UNAUTHORIZED", exc.message) from None
        if principal.role == "admin":  # an admin acts in the account it names
            return dataclasses.replace(principal, tenant=account, role="write")
        if account != principal.tenant:
            raise RedisCloudError(
                401, "UNAUTHORIZED", "the secret key does not belong to this account (x-api-key)"
            )
        return principal

    # -- routes -----------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return request.base_url() + self.prefix

    def task_dict(self, task: Task, base: str) -> dict[str, Any]:
        status = status_of(task)
        declared = self.by_operation.get(task.type)
        href = f"{base}/tasks/{task.id}"
        body: dict[str, Any] = {
            "taskId": task.id,
            "commandType": task.labels.get(LABEL_COMMAND)
            or (declared.command_type if declared else task.type),
            "status": status,
            "description": DESCRIPTIONS[status],
            "timestamp": _timestamp(task.updated_at),
        }
        response = response_of(task, declared.resource if declared else None)
        if response is not None:
            body["response"] = response
        links: dict[str, Any] = {
            "task": {"href": href, "title": "getTaskStatusUpdates", "type": "GET"},
            "self": {"href": href, "type": "GET"},
        }
        array = [{"href": href, "rel": "self", "type": "GET"}]
        if declared is not None and response is not None and "resourceId" in response:
            resource = f"{base}/{declared.resource}/{response['resourceId']}"
            links["resource"] = {"href": resource, "title": declared.title, "type": "GET"}
            array.append({"href": resource, "rel": "resource", "type": "GET"})
        body["_links"] = links
        body["links"] = array
        return body

    async def task(self, request: Request, principal: Principal, raw: str) -> Response:
        """The status read waiters repeat: the cached rendering while the task's version
        is unchanged, as the native cache does."""
        base = self._base(request)
        try:
            task_id = parse_task_id(raw)
        except InvalidId:
            raise RedisCloudError(400, "BAD_REQUEST", f"Invalid task id {raw!r}: a UUID") from None
        try:
            body = await self.renderings.read(
                request.service,
                (task_id, base),
                task_id,
                principal.scope,
                lambda task: orjson.dumps(self.task_dict(task, base)),
            )
        except NotFound:
            raise RedisCloudError(404, "TASK_NOT_FOUND", f"Task {raw} not found") from None
        return Response(200, body, [CT_JSON])

    async def tasks(self, request: Request, principal: Principal) -> Response:
        if request.scope["query_string"]:
            raise RedisCloudError(400, "BAD_REQUEST", "GET /tasks takes no query parameters")
        days = self.application.settings.rediscloud_task_days
        since = datetime.now(UTC) - timedelta(days=days)
        service = request.service
        found: list[Task] = []
        cursor = None
        # created in the window, in both tables; then by their last update
        filter = TaskFilter(tenant=principal.scope, created_since=since, archived=None)
        while len(found) < MAX_LIST:
            page = await service.list(filter, cursor=cursor, limit=500)
            found += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        found.sort(key=lambda t: (t.updated_at, t.id), reverse=True)
        base = self._base(request)
        body = {"tasks": [self.task_dict(t, base) for t in found[:MAX_LIST]]}
        return Response(200, orjson.dumps(body), [CT_JSON])

    async def start(self, request: Request, principal: Principal, declared: Kickoff) -> Response:
        try:
            body = await request.json_object(required=True) or {}
        except HTTPProblem as exc:
            raise RedisCloudError(exc.status, "BAD_REQUEST", exc.detail) from None
        try:
            params = declared.params(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise RedisCloudError(400, "BAD_REQUEST", f"Invalid request body: {exc}") from None
        try:
            task, _ = await request.service.submit_one(
                declared.operation,
                params,
                Submission(
                    tenant=principal.tenant,
                    user=principal.user,
                    user_id=principal.user_id,
                    request_id=request.request_id,
                    labels={LABEL_COMMAND: declared.command_type},
                ),
            )
        except InvalidParameters as exc:
            raise RedisCloudError(400, "BAD_REQUEST", field_errors(exc)) from None
        return Response(202, orjson.dumps(self.task_dict(task, self._base(request))), [CT_JSON])

    async def show(
        self, request: Request, principal: Principal, declared: Kickoff, resource_id: str
    ) -> Response:
        filter = TaskFilter(
            states=(State.SUCCEEDED,),
            types=(declared.operation,),
            tenant=principal.scope,
            archived=None,
        )
        cursor: str | None = None
        while True:  # newest first: a resource just created is on the first page
            page = await request.service.list(filter, cursor=cursor, limit=500)
            for task in page.items:
                if resource_id in task.created_resources.get(declared.resource, ()):
                    shown = declared.show(task, resource_id)
                    return Response(200, orjson.dumps(shown), [CT_JSON])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        raise RedisCloudError(
            404, "NOT_FOUND", f"{declared.resource} {resource_id} not found in this account"
        )


def error_response(exc: Exception, request_id: str) -> Response:
    """Redis Cloud's error body for ``exc``; anything unexpected is a bare 500."""
    if isinstance(exc, RedisCloudError):
        status, type, description = exc.status, exc.type, exc.description
    elif isinstance(exc, HTTPProblem):
        status, type, description = exc.status, REASONS.get(exc.status, "ERROR"), exc.detail
    elif isinstance(exc, TaskgateError) and (exc.status < 500 or exc.status == 503):
        status, type, description = exc.status, REASONS.get(exc.status, "ERROR"), exc.message
    else:
        logger.error("rediscloud dialect request failed (request %s)", request_id, exc_info=exc)
        status, type, description = 500, "GENERAL_ERROR", "Internal server error"
    body = {"error": error_object(status, type, description)}
    return Response(status, orjson.dumps(body), [CT_JSON])


def create(application: Application) -> RedisCloudDialect:
    """The Redis Cloud dialect for ``application``."""
    return RedisCloudDialect(application)
