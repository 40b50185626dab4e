"""Gcore Cloud's task API (``/cloud/v1/tasks``), served over the `TaskService`.

Enabled by ``Settings.dialects`` containing ``gcore``; mounted at
``Settings.gcore_prefix`` (default: the root), so the official ``gcore`` SDK works
with ``base_url`` set to this server. ``Authorization: APIKey <key>`` (the scheme in
any case) carries a taskgate API key; its tenant, user and role apply as in the native
API, so another tenant's task is a 404 here too. Errors are Gcore's
``{"exception_class", "message", "request_id"}``. The field and state map is in
`gcore_tasks`; kickoff routes (``POST /cloud/v1/<resource>/{project_id}/{region_id}``)
in `gcore_kickoff`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from taskgate.errors import AuthenticationFailed, InvalidId, NotFound, TaskgateError
from taskgate.http.asgi import Receive, Scope, Send
from taskgate.http.auth import ANONYMOUS, Principal
from taskgate.http.dialects import (
    StatusRenderings,
    gcore_kickoff,
    key_principal,
    open_request,
    respond,
)
from taskgate.http.dialects.gcore_tasks import (
    GCORE_STATES,
    LABEL_PROJECT,
    LABEL_REGION,
    list_tasks,
    store_filter,
    task_dict,
)
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import Request
from taskgate.http.responses import CT_JSON, Response
from taskgate.ids import parse_task_id
from taskgate.model import TaskFilter
from taskgate.service import MAX_ACK_IDS

if TYPE_CHECKING:
    from taskgate.http.application import Application

logger = logging.getLogger("taskgate.http")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 10

EXCEPTION_CLASSES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "RequestEntityTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "ValidationError",
    503: "ServiceUnavailableError",
}


class GcoreError(Exception):
    """An error answered in Gcore's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[["Call"], Awaitable[Response]]


class Call:
    """One request to the dialect: the lazy `Request`, its principal and path ids."""

    __slots__ = ("dialect", "ids", "principal", "request")

    def __init__(
        self,
        dialect: GcoreDialect,
        request: Request,
        principal: Principal,
        ids: tuple[str, ...],
    ) -> None:
        self.dialect = dialect
        self.request = request
        self.principal = principal
        self.ids = ids


def json(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value), [CT_JSON])


class GcoreDialect:
    """The ASGI callable `Application` hands every request under ``<prefix>/cloud``."""

    name = "gcore"

    def __init__(self, application: Application) -> None:
        self.application = application
        self.prefix = application.settings.gcore_prefix
        self.prefixes = [self.prefix + "/cloud"]
        self.renderings = StatusRenderings()
        """Task JSON by id, as the native status cache (`taskgate.http.cache`): served
        only while the stored version still equals the rendering's."""
        base = re.escape(self.prefix) + "/cloud/v1"
        self.tasks_path = self.prefix + "/cloud/v1/tasks/"
        seg = "([^/]+)"
        num = "([^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, tuple[Handler, bool]]]] = [
            (re.compile(rf"^{base}/tasks\Z"), {"GET": (list_route, False)}),
            (
                re.compile(rf"^{base}/tasks/acknowledge_all\Z"),
                {"POST": (acknowledge_all_route, True)},
            ),
            (re.compile(rf"^{base}/tasks/acknowledge\Z"), {"POST": (acknowledge_ids_route, True)}),
            (re.compile(rf"^{base}/tasks/{num}/{num}/active\Z"), {"GET": (active_route, False)}),
            (
                re.compile(rf"^{base}/tasks/{seg}/acknowledge\Z"),
                {"POST": (acknowledge_route, True)},
            ),
            (re.compile(rf"^{base}/tasks/{seg}\Z"), {"GET": (get_route, False)}),
            (
                re.compile(rf"^{base}/{seg}/{num}/{num}\Z"),
                {"POST": (gcore_kickoff.create_route, True)},
            ),
            (
                re.compile(rf"^{base}/{seg}/{num}/{num}/{seg}\Z"),
                {"GET": (gcore_kickoff.resource_route, False)},
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = open_request(self.application, scope, receive)
        answer = self._answer(request, scope["method"], request.path)
        await respond(request, send, answer, lambda exc: error_response(exc, request.request_id))

    async def _answer(self, request: Request, method: str, path: str) -> Response:
        tasks = self.tasks_path
        if method == "GET" and path.startswith(tasks) and "/" not in path[len(tasks) :]:
            # the status read clients poll: no route search
            task_id = path[len(tasks) :]
            if task_id:
                principal = request.principal = await self._principal(request)
                return await get_route(Call(self, request, principal, (task_id,)))
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            entry = methods.get(method)
            if entry is None:
                raise GcoreError(405, f"Method {method} is not allowed on {path}")
            handler, writes = entry
            principal = await self._principal(request)
            if writes and not principal.allows("write"):
                raise GcoreError(
                    403, f"User {principal.user!r} has role {principal.role!r}; this needs 'write'"
                )
            request.principal = principal
            return await handler(Call(self, request, principal, match.groups()))
        raise GcoreError(404, f"No such endpoint: {path}")

    async def _principal(self, request: Request) -> Principal:
        keys = self.application.keys
        if keys is None:
            if self.application.settings.auth:
                raise GcoreError(401, "API keys are not available on this server")
            return ANONYMOUS
        raw = request.headers.get(b"authorization")
        if raw is None:
            raise GcoreError(401, "Authentication credentials were not provided.")
        scheme, _, token_raw = raw.strip().partition(b" ")
        token_raw = token_raw.strip()
        if scheme.lower() != b"apikey" or not token_raw:
            raise GcoreError(401, "The Authorization header must be 'APIKey <key>'")
        try:
            token = token_raw.decode("ascii")
            principal = await key_principal(keys, token)
        except UnicodeDecodeError:
            raise GcoreError(401, "Invalid API key") from None
        except AuthenticationFailed as exc:
            raise GcoreError(401, exc.message) from None
        return principal


def error_response(exc: Exception, request_id: str) -> Response:
    """Gcore's error body for ``exc``; anything unexpected is a bare 500."""
    if isinstance(exc, GcoreError):
        status, message = exc.status, exc.message
    elif isinstance(exc, HTTPProblem):
        status, message = exc.status, exc.detail
    elif isinstance(exc, TaskgateError) and exc.status < 500:
        status, message = exc.status, exc.message
    elif isinstance(exc, TaskgateError) and exc.status == 503:
        status, message = 503, exc.message
    else:
        logger.error("gcore dialect request failed (request %s)", request_id, exc_info=exc)
        status, message = 500, "Internal server error"
    body = {
        "exception_class": EXCEPTION_CLASSES.get(status, "InternalServerError"),
        "message": message,
        "request_id": request_id,
    }
    headers = [CT_JSON]
    if status == 409:  # permanent here: the SDK retries 409 unless told not to
        headers.append((b"x-should-retry", b"false"))
    return Response(status, orjson.dumps(body), headers)


# -- query parsing ------------------------------------------------------------------


def _one(request: Request, name: str) -> str | None:
    values = request.query_all(name)
    if not values:
        return None
    if len(values) > 1:
        raise GcoreError(400, f"Query parameter {name!r} may be given only once")
    return values[0]


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = _one(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise GcoreError(400, f"{name}: {raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise GcoreError(400, f"{name}: must be {bound}")
    return value


MAX_ID = 2**63 - 1
"""Gcore's project, region and client ids are 64-bit integers."""


def _id(raw: str) -> int | None:
    """``raw`` as a project or region id, or None."""
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_ID else None


def _ints(request: Request, name: str) -> list[int]:
    out = []
    for raw in request.query_all(name):
        value = _id(raw)
        if value is None:
            raise GcoreError(400, f"{name}: {raw!r} is not an id (an integer)")
        out.append(value)
    return out


def path_int(raw: str, name: str) -> int:
    """A project or region id in the path; 404 when it cannot be one."""
    value = _id(raw)
    if value is None:
        raise GcoreError(404, f"{name} {raw!r} not found")
    return value


def _bool(request: Request, name: str) -> bool | None:
    raw = _one(request, name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise GcoreError(400, f"{name}: {raw!r} is not a boolean (true or false)")


def _time(request: Request, name: str) -> datetime | None:
    raw = _one(request, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        # naive times are UTC, as Gcore shows them; in UTC from here on
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise GcoreError(400, f"{name}: {raw!r} is not an ISO 8601 date-time") from None


def _order(request: Request) -> bool:
    """True for ``asc``. ``order_by`` wins over the deprecated ``sorting``."""
    chosen = "desc"
    for name in ("sorting", "order_by"):
        raw = _one(request, name)
        if raw is not None:
            if raw.lower() not in ("asc", "desc"):
                raise GcoreError(400, f"{name}: {raw!r} must be asc or desc")
            chosen = raw.lower()
    return chosen == "asc"


def _task_id(raw: str) -> str:
    try:
        return parse_task_id(raw)
    except InvalidId:
        raise GcoreError(404, f"Task {raw} not found") from None


# -- routes -------------------------------------------------------------------------


async def get_route(call: Call) -> Response:
    """A status read: clients poll it, so, like the native one, it asks the store only
    for the task's version when a rendering of it is at hand, and sends that rendering
    while the version matches (every change raises the version)."""
    raw = call.ids[0]
    try:
        body = await call.dialect.renderings.read(
            call.request.service,
            _task_id(raw),
            _task_id(raw),
            call.principal.scope,
            lambda task: orjson.dumps(task_dict(task)),
        )
    except NotFound:
        raise GcoreError(404, f"Task {raw} not found") from None
    return Response(200, body, [CT_JSON])


async def _page(
    call: Call, *, states: list[str], projects: list[int], regions: list[int]
) -> Response:
    request = call.request
    task_type = _one(request, "task_type")
    since = _time(request, "from_timestamp")
    until = _time(request, "to_timestamp")
    acknowledged = _bool(request, "is_acknowledged")
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, None)
    ascending = _order(request)
    filter = store_filter(
        tenant=call.principal.scope,
        states=states,
        task_type=task_type,
        projects=projects,
        regions=regions,
        since=since,
        until=until,
        acknowledged=acknowledged,
    )
    count, tasks = await list_tasks(
        request.service,
        filter,
        states=states,
        projects=projects,
        regions=regions,
        until=until,
        ascending=ascending,
        offset=offset,
        limit=limit,
    )
    return json({"count": count, "results": [task_dict(t) for t in tasks]})


def _states(request: Request) -> list[str]:
    states = request.query_all("state")
    for s in states:
        if s not in GCORE_STATES:
            raise GcoreError(400, f"state: {s!r} is not one of {', '.join(GCORE_STATES)}")
    return states


async def list_route(call: Call) -> Response:
    request = call.request
    return await _page(
        call,
        states=_states(request),
        projects=_ints(request, "project_id"),
        regions=_ints(request, "region_id"),
    )


async def active_route(call: Call) -> Response:
    project = path_int(call.ids[0], "Project")
    region = path_int(call.ids[1], "Region")
    return await _page(call, states=["NEW", "RUNNING"], projects=[project], regions=[region])


async def acknowledge_route(call: Call) -> Response:
    raw = call.ids[0]
    try:
        task = await call.request.service.acknowledge(
            _task_id(raw), user=_ack_user(call.principal), tenant=call.principal.scope
        )
    except TaskgateError as exc:
        if exc.status == 404:
            raise GcoreError(404, f"Task {raw} not found") from None
        raise
    return json(task_dict(task))


def _ack_user(principal: Principal) -> str:
    """Who acknowledges: the key's user (shown as its user id: see `gcore_tasks`)."""
    return principal.user


async def _acknowledge_where(call: Call, project: int | None, region: int | None) -> None:
    service = call.request.service
    user = _ack_user(call.principal)
    scope = call.principal.scope
    if project is None and region is None:
        await service.acknowledge_many(user=user, tenant=scope)
        return
    labels = []
    if project is not None:
        labels.append((LABEL_PROJECT, str(project)))
    if region is not None:
        labels.append((LABEL_REGION, str(region)))
    filter = TaskFilter(tenant=scope, labels=tuple(labels), acknowledged=False)
    while True:  # each round acknowledges what it listed, so the next page is new
        page = await service.list(filter, limit=500)
        if not page.items:
            return
        await service.acknowledge_many(user=user, tenant=scope, ids=[t.id for t in page.items])


async def acknowledge_all_route(call: Call) -> Response:
    request = call.request
    project = _one_int(request, "project_id")
    region = _one_int(request, "region_id")
    await _acknowledge_where(call, project, region)
    return Response(204)


def _one_int(request: Request, name: str) -> int | None:
    raw = _one(request, name)
    if raw is None:
        return None
    value = _id(raw)
    if value is None:
        raise GcoreError(400, f"{name}: {raw!r} is not an id (an integer)")
    return value


async def acknowledge_ids_route(call: Call) -> Response:
    """The deprecated ``POST /v1/tasks/acknowledge``: ``{"task_ids": [...] | null}``."""
    request = call.request
    project = _one_int(request, "project_id")
    region = _one_int(request, "region_id")
    body = await request.json_object(required=False) or {}
    ids = body.get("task_ids")
    if ids is None:
        await _acknowledge_where(call, project, region)
        return Response(204)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise GcoreError(400, "task_ids: must be a list of strings or null")
    if len(ids) > MAX_ACK_IDS:
        raise GcoreError(400, f"task_ids: at most {MAX_ACK_IDS} ids at once")
    wanted = []
    for raw in ids:
        try:
            wanted.append(parse_task_id(raw))
        except InvalidId:
            raise GcoreError(400, f"task_ids: {raw!r} is not a task id") from None
    if project is not None or region is not None:
        tasks = await request.service.get_many(wanted)
        wanted = [
            t.id
            for t in tasks
            if (project is None or t.labels.get(LABEL_PROJECT) == str(project))
            and (region is None or t.labels.get(LABEL_REGION) == str(region))
        ]
    await request.service.acknowledge_many(
        user=_ack_user(call.principal), tenant=call.principal.scope, ids=wanted
    )
    return Response(204)


def create(application: Application) -> GcoreDialect:
    """The Gcore Cloud dialect for ``application``."""
    return GcoreDialect(application)
