"""Pulp's task APIs (seed 001), served over the `TaskService`: Pulp 1's "A.20 Tasks"
under ``<prefix>`` and ``<prefix>/v1``, and Pulp 2's under ``<prefix>/v2``
(``Settings.pulp_prefix``, default ``/pulp/api``). The shapes are in `pulp_tasks`.

Pulp 1:

- ``GET /tasks/`` (``id`` repeated; ``state`` repeated, any case: waiting, running,
  complete, incomplete, current, archived; 400 ``Unknown state: X``). Without ``state``
  (or with ``current``) every task of the hot table; ``archived`` adds history, newest
  finish first, and only it shows archived tasks.
- ``GET /tasks/<id>/`` (404 ``Task not found: <id>``; history too), ``POST
  /tasks/<id>/cancel/`` (202), ``DELETE /tasks/<id>/`` (202, admin: an ended task is
  deleted, a waiting one canceled: it leaves the queue, a running one is left alone).
- Snapshots, admin keys only: ``GET /tasks/snapshots/``, ``GET`` and ``DELETE
  /tasks/<id>/snapshot/``. A snapshot is what is stored to run the task again; the
  fields Pulp 1 pickled are JSON-encoded text here, and nothing a client sends is ever
  unpickled. Deleting one deletes an ended task's record.
- Errors are a JSON string with the status, as Pulp 1's were.

Pulp 2:

- Task reports: ``GET /tasks/<id>/``, ``GET /tasks/?tag=`` (every tag given),
  ``DELETE /tasks/<id>/`` cancels (200 ``null``, also for an ended task), ``DELETE
  /tasks/?state=finished|error|skipped`` purges (admin, 204), ``POST /tasks/search/``
  (criteria: filters by equality or ``$in``, fields, sort, limit, skip).
- Groups: ``GET /task_groups/<id>/state_summary/``, ``DELETE /task_groups/<id>/``
  cancels.
- Kickoffs an app declares (`kickoff`) answer 202 with a call report listing
  ``spawned_tasks``, or a group call report for a group of tasks.
- Errors are Pulp 2's body: ``http_status``, ``error_message``, ``error`` ``{code,
  description, data, sub_errors}`` and the request's method and href.

Auth: ``Authorization: Basic`` (user and password: the password is a taskgate key whose
user is that user) or ``Bearer <key>``; tenants and roles as natively. Another tenant's
task is a 404 as an unknown one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskgate.app import App
from taskgate.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidParameters,
    NotFound,
    TaskgateError,
)
from taskgate.http.asgi import Receive, Scope, Send
from taskgate.http.auth import ANONYMOUS, Principal, Role
from taskgate.http.dialects import (
    StatusRenderings,
    field_errors,
    key_principal,
    open_request,
    respond,
)
from taskgate.http.dialects import pulp_tasks as shapes
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import Request
from taskgate.http.responses import CT_JSON, Response
from taskgate.model import State, Task, TaskFilter
from taskgate.schedules import ScheduleService
from taskgate.service import Submission

if TYPE_CHECKING:
    from taskgate.http.application import Application

logger = logging.getLogger("taskgate.http")

_ID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_GROUP = r"([A-Za-z0-9][A-Za-z0-9._:@-]{0,254})"
MAX_LIST = 10_000
"""Most tasks one list or search reads."""
CODES = {
    400: "PLP0015",
    401: "PLP0025",
    403: "PLP0026",
    404: "PLP0009",
    405: "PLP0017",
    409: "PLP0023",
    413: "PLP0015",
    415: "PLP0015",
    422: "PLP0015",
    500: "PLP0000",
    503: "PLP0000",
}
"""Pulp 2's error codes by HTTP status (PLP0009: missing resource; PLP0015: invalid
value; PLP0025/26: authentication, authorization)."""


class PulpError(Exception):
    """An error answered in the Pulp version's own shape."""

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "PLP0000")


# -- kickoffs ----------------------------------------------------------------------


Params = Callable[[Mapping[str, str], Mapping[str, Any]], "dict[str, Any] | list[dict[str, Any]]"]


@dataclass(frozen=True, slots=True)
class Kickoff:
    """``POST <prefix>/v2/<path>`` starts ``operation``: once (a call report), or once per
    parameters object ``params`` returns (a new group: a group call report)."""

    path: str
    """Relative to ``/v2/``, with ``{name}`` segments: ``repositories/{repo_id}/actions/sync``."""
    operation: str
    params: Params
    """(path segments by name, the JSON body) → the parameters, or a list of them."""
    pattern: re.Pattern[str]


_KICKOFFS: weakref.WeakKeyDictionary[App, list[Kickoff]] = weakref.WeakKeyDictionary()


def kickoff(app: App, path: str, operation: str, *, params: Params) -> Kickoff:
    """Declare ``POST <prefix>/v2/<path>/`` for ``app``."""
    parts = path.strip("/").split("/")
    regex = "/".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in parts
    )
    declared = Kickoff(path.strip("/"), operation, params, re.compile(rf"^{regex}/?\Z"))
    _KICKOFFS.setdefault(app, []).append(declared)
    return declared


def kickoffs(app: App) -> list[Kickoff]:
    return _KICKOFFS.get(app, [])


# -- the dialect ---------------------------------------------------------------------

Handler = Callable[["Call"], Awaitable[Response]]


class Call:
    """One request: the dialect, the `Request`, its principal, the path's ids."""

    __slots__ = ("dialect", "ids", "principal", "request", "version")

    def __init__(
        self,
        dialect: PulpDialect,
        request: Request,
        principal: Principal,
        ids: Sequence[str],
        version: int,
    ) -> None:
        self.dialect = dialect
        self.request = request
        self.principal = principal
        self.ids = tuple(ids)
        self.version = version


def json(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value), [CT_JSON])


class PulpDialect:
    """The ASGI callable `Application` hands every request under ``pulp_prefix``."""

    name = "pulp"

    def __init__(self, application: Application) -> None:
        self.application = application
        self.prefix = application.settings.pulp_prefix
        self.prefixes = [self.prefix]
        self.kickoffs = kickoffs(application.service.app)
        v1: list[tuple[str, dict[str, tuple[Handler, Role]]]] = [
            (r"tasks/?", {"GET": (v1_list, "read")}),
            (r"tasks/snapshots/?", {"GET": (v1_snapshots, "admin")}),
            (
                rf"tasks/{_ID}/?",
                {"GET": (v1_get, "read"), "DELETE": (v1_delete, "admin")},
            ),
            (rf"tasks/{_ID}/cancel/?", {"POST": (v1_cancel, "write")}),
            (
                rf"tasks/{_ID}/snapshot/?",
                {"GET": (v1_snapshot, "admin"), "DELETE": (v1_delete_snapshot, "admin")},
            ),
        ]
        v2: list[tuple[str, dict[str, tuple[Handler, Role]]]] = [
            (r"tasks/?", {"GET": (v2_list, "read"), "DELETE": (v2_purge, "admin")}),
            (r"tasks/search/?", {"POST": (v2_search, "read")}),
            (rf"tasks/{_ID}/?", {"GET": (v2_get, "read"), "DELETE": (v2_cancel, "write")}),
            (rf"task_groups/{_GROUP}/state_summary/?", {"GET": (v2_summary, "read")}),
            (rf"task_groups/{_GROUP}/?", {"DELETE": (v2_cancel_group, "write")}),
        ]
        self.routes: list[tuple[int, re.Pattern[str], dict[str, tuple[Handler, Role]]]] = []
        base = re.escape(self.prefix)
        for version, root, table in ((1, "/v1/", v1), (1, "/", v1), (2, "/v2/", v2)):
            for pattern, methods in table:
                self.routes.append((version, re.compile(rf"^{base}{root}{pattern}\Z"), methods))
        self.v2_base = self.prefix + "/v2/"
        self.renderings = StatusRenderings()
        """Rendered tasks by (Pulp version, id), served while the task is unchanged."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = open_request(self.application, scope, receive)
        version = 2 if request.path.startswith(self.v2_base) else 1
        answer = self._answer(request, scope["method"], request.path)
        await respond(request, send, answer, lambda exc: error_response(exc, request, version))

    async def _answer(self, request: Request, method: str, path: str) -> Response:
        for version, pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            entry = methods.get(method)
            if entry is None:
                raise PulpError(405, f"Method {method} is not allowed on {path}")
            handler, role = entry
            principal = request.principal = await self._principal(request)
            self._allow(principal, role)
            return await handler(Call(self, request, principal, match.groups(), version))
        if method == "POST" and path.startswith(self.v2_base):
            rest = path[len(self.v2_base) :]
            for declared in self.kickoffs:
                match = declared.pattern.match(rest)
                if match is not None:
                    principal = request.principal = await self._principal(request)
                    self._allow(principal, "write")
                    return await start(self, request, principal, declared, match.groupdict())
        raise PulpError(404, f"Missing resource: {path}")

    @staticmethod
    def _allow(principal: Principal, role: Role) -> None:
        if not principal.allows(role):
            raise PulpError(
                403,
                f"User {principal.user!r} has role {principal.role!r}; this needs {role!r}"
                + (" (a super user)" if role == "admin" else ""),
            )

    async def _principal(self, request: Request) -> Principal:
        keys = self.application.keys
        if keys is None:
            if self.application.settings.auth:
                raise PulpError(401, "API keys are not available on this server")
            return ANONYMOUS
        raw = request.headers.get(b"authorization")
        if raw is None:
            raise PulpError(401, "Authentication failed: send Basic (user, key) or Bearer <key>")
        scheme, _, value = raw.strip().partition(b" ")
        user = None
        if scheme.lower() == b"basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise PulpError(401, "Authentication failed: malformed Basic credentials") from None
            user, sep, token = decoded.partition(":")
            if not sep:
                raise PulpError(401, "Authentication failed: Basic credentials are user:key")
        elif scheme.lower() == b"bearer":
            token = value.strip().decode("ascii", errors="replace")
        else:
            raise PulpError(401, "Authentication failed: send Basic (user, key) or Bearer <key>")
        try:
            principal = await key_principal(keys, token)
        except AuthenticationFailed as exc:
            raise PulpError(401, f"Authentication failed: {exc.message}") from None
        if user is not None and user != principal.user:
            raise PulpError(401, f"Authentication failed: the key is not {user!r}'s")
        return principal


def error_response(exc: Exception, request: Request, version: int) -> Response:
    """Pulp's error for ``exc``: a JSON string (Pulp 1) or Pulp 2's error body."""
    if isinstance(exc, PulpError):
        status, message, code = exc.status, exc.message, exc.code
    elif isinstance(exc, HTTPProblem):
        status, message, code = exc.status, exc.detail, CODES.get(exc.status, "PLP0000")
    elif isinstance(exc, TaskgateError) and (exc.status < 500 or exc.status == 503):
        status, message, code = exc.status, exc.message, CODES.get(exc.status, "PLP0000")
    else:
        logger.error("pulp dialect request failed (request %s)", request.request_id, exc_info=exc)
        status, message, code = 500, "Internal server error", "PLP0000"
    if version == 1:
        return json(message, status)
    body = {
        "http_status": status,
        "error_message": message,
        "exception": None,
        "traceback": None,
        "_href": request.path,
        "http_request_method": request.scope["method"],
        "error": {"code": code, "description": message, "data": {}, "sub_errors": []},
    }
    return json(body, status)


# -- reading ------------------------------------------------------------------------


async def _get(call: Call, task_id: str) -> Task:
    try:
        return await call.request.service.get(task_id, tenant=call.principal.scope)
    except NotFound:
        raise PulpError(404, f"Task not found: {task_id}") from None


async def _all(call: Call, filter: TaskFilter) -> list[Task]:
    found: list[Task] = []
    cursor = None
    while len(found) < MAX_LIST:
        page = await call.request.service.list(filter, cursor=cursor, limit=500)
        found += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found[:MAX_LIST]


async def _cached(call: Call, render: Callable[[Task], Any]) -> Response:
    """A status read: this Pulp version's rendering of the task, sent while the task's
    version is unchanged (`StatusRenderings`)."""
    task_id = call.ids[0].lower()
    try:
        body = await call.dialect.renderings.read(
            call.request.service,
            (call.version, task_id),
            task_id,
            call.principal.scope,
            lambda task: orjson.dumps(render(task)),
        )
    except NotFound:
        raise PulpError(404, f"Task not found: {task_id}") from None
    return Response(200, body, [CT_JSON])


async def v1_get(call: Call) -> Response:
    return await _cached(call, shapes.v1_task)


async def v1_list(call: Call) -> Response:
    request = call.request
    wanted = [s.lower() for s in request.query_all("state")]
    for state in wanted:
        if state not in (*shapes.V1_FILTERS, "current", "archived"):
            raise PulpError(400, f"Unknown state: {state}")
    ids = [i.lower() for i in request.query_all("id")]
    hot = not wanted or "current" in wanted or any(s in shapes.V1_FILTERS for s in wanted)
    states: tuple[State, ...] = ()
    if wanted and "current" not in wanted:
        states = tuple(s for s in State if any(s in shapes.V1_FILTERS.get(w, ()) for w in wanted))
    scope = call.principal.scope
    tasks: list[Task] = []
    if hot:
        tasks = await _all(call, TaskFilter(tenant=scope, states=states, archived=False))
        tasks.reverse()  # submit order, as Pulp 1's queue lists them
    if "archived" in wanted:
        history = await _all(call, TaskFilter(tenant=scope, archived=True))
        history.sort(key=lambda t: t.finished_at or t.updated_at, reverse=True)
        tasks += history
    if ids:
        tasks = [t for t in tasks if t.id in ids]
    return json([shapes.v1_task(t) for t in tasks])


async def v1_cancel(call: Call) -> Response:
    task = await _get(call, call.ids[0].lower())
    with contextlib.suppress(Conflict):  # it has ended: nothing to cancel, the task as it is
        task = await call.request.service.cancel(task.id, tenant=call.principal.scope)
    return json(shapes.v1_task(task), 202)


async def v1_delete(call: Call) -> Response:
    """Remove a task from the queue without interrupting it: an ended one's record is
    deleted, a waiting one is canceled (it leaves the queue), a running one stays."""
    service = call.request.service
    task = await _get(call, call.ids[0].lower())
    if task.terminal:
        await service.delete(task.id, tenant=call.principal.scope)
    elif task.state in (State.QUEUED, State.SCHEDULED, State.SUSPENDED):
        task = await service.cancel(task.id, tenant=call.principal.scope)
    return json(shapes.v1_task(task), 202)


async def _snapshot(call: Call, task: Task) -> dict[str, Any]:
    failure_threshold = schedule_threshold = None
    if task.schedule_id is not None:
        try:
            schedule = await ScheduleService(call.request.service).get(task.schedule_id)
        except NotFound:
            pass
        else:
            failure_threshold = schedule.failure_threshold
            schedule_threshold = schedule.schedule_threshold
    operation = call.request.service.app.operations.get(task.type)
    handler = operation.handler if operation is not None else None
    return shapes.v1_snapshot(
        task,
        callable_name=(
            f"{handler.__module__}.{handler.__qualname__}" if handler is not None else task.type
        ),
        failure_threshold=failure_threshold,
        schedule_threshold=schedule_threshold,
    )


async def v1_snapshots(call: Call) -> Response:
    tasks = await _all(call, TaskFilter(tenant=call.principal.scope, archived=False))
    return json([await _snapshot(call, t) for t in reversed(tasks)])


async def v1_snapshot(call: Call) -> Response:
    return json(await _snapshot(call, await _get(call, call.ids[0].lower())))


async def v1_delete_snapshot(call: Call) -> Response:
    task = await _get(call, call.ids[0].lower())
    shown = await _snapshot(call, task)
    try:
        await call.request.service.delete(task.id, tenant=call.principal.scope)
    except Conflict:
        raise PulpError(
            409,
            f"Task {task.id} is {shapes.V1_STATES[task.state]}: its snapshot is"
            " what runs it, and stays until it has ended",
        ) from None
    return json(shown)


# -- Pulp 2 -------------------------------------------------------------------------


def _report(call: Call, task: Task) -> dict[str, Any]:
    return shapes.v2_task(task, call.dialect.prefix)


async def v2_get(call: Call) -> Response:
    return await _cached(call, functools.partial(_report, call))


async def v2_cancel(call: Call) -> Response:
    task = await _get(call, call.ids[0].lower())
    with contextlib.suppress(Conflict):  # an ended task: a no-op that still answers 200
        await call.request.service.cancel(task.id, tenant=call.principal.scope)
    return json(None)


def _tag_filter(tags: Sequence[str], scope: str | None) -> tuple[TaskFilter, list[str]]:
    """A store filter for Pulp 2 tags, and the tags it does not cover (checked after)."""
    resource = type_ = None
    labels: list[tuple[str, str]] = []
    rest: list[str] = []
    for tag in tags:
        if tag.startswith("pulp:action:") and type_ is None:
            type_ = tag.removeprefix("pulp:action:")
        elif tag.startswith("pulp:") and resource is None:
            resource = tag.removeprefix("pulp:")
        elif ":" in tag and not tag.startswith("pulp:"):
            key, _, value = tag.partition(":")
            labels.append((key, value))
        else:
            rest.append(tag)
    filter = TaskFilter(
        tenant=scope,
        types=(type_,) if type_ else (),
        resource=resource,
        labels=tuple(labels),
        archived=None,
    )
    return filter, rest


async def v2_list(call: Call) -> Response:
    tags = call.request.query_all("tag")
    filter, rest = _tag_filter(tags, call.principal.scope)
    reports = [_report(call, t) for t in await _all(call, filter)]
    return json([r for r in reports if all(tag in r["tags"] for tag in rest)])


async def v2_purge(call: Call) -> Response:
    names = call.request.query_all("state")
    if not names:
        raise PulpError(403, "A purge needs a state= (finished, error, skipped)", code="PLP1012")
    states: list[State] = []
    for name in names:
        if name not in shapes.V2_PURGE:
            raise PulpError(
                400,
                f"Invalid state {name!r}: a purge takes finished, error, skipped",
                code="PLP1011",
            )
        states += shapes.V2_PURGE[name]
    if states:
        await call.request.service.purge(tenant=call.principal.scope, states=states)
    return Response(204, b"", [])


async def v2_search(call: Call) -> Response:
    try:
        body = await call.request.json_object(required=True)
    except HTTPProblem as exc:
        raise PulpError(400, f"Invalid search body: {exc.detail}") from None
    try:
        filters, fields, sort, limit, skip = shapes.parse_criteria(body)
    except shapes.CriteriaError as exc:
        raise PulpError(400, f"Invalid criteria: {exc}") from None
    store = TaskFilter(tenant=call.principal.scope, archived=None)
    states = [v for v in filters.get("state", ()) if isinstance(v, str)]
    if "state" in filters:
        wanted = tuple(s for name in states for s in shapes.V2_STATE_NAMES.get(name, ()))
        if not wanted:
            return json([])
        store = TaskFilter(tenant=store.tenant, states=wanted, archived=None)
    if "task_type" in filters and len(filters["task_type"]) >= 1:
        types = tuple(str(t) for t in filters["task_type"])
        store = TaskFilter(tenant=store.tenant, states=store.states, types=types, archived=None)
    reports = [_report(call, t) for t in await _all(call, store)]
    reports = [r for r in reports if shapes.matches(r, filters)]
    for field, descending in reversed(sort):  # stable sorts: the first key last
        reports.sort(key=functools.partial(_sort_key, field), reverse=descending)
    reports = reports[skip:]
    if limit is not None:
        reports = reports[:limit]
    if fields is not None:
        reports = [{f: r[f] for f in fields if f in r} for r in reports]
    return json(reports)


def _sort_key(field: str, report: Mapping[str, Any]) -> tuple[bool, str]:
    value = report.get(field)
    return value is None, "" if value is None else str(value)


async def v2_summary(call: Call) -> Response:
    group = await call.request.service.group(call.ids[0], tenant=call.principal.scope)
    return json(shapes.summary(group.states))


async def v2_cancel_group(call: Call) -> Response:
    await call.request.service.cancel_group(call.ids[0], tenant=call.principal.scope)
    return json(None)


async def start(
    dialect: PulpDialect,
    request: Request,
    principal: Principal,
    declared: Kickoff,
    segments: Mapping[str, str],
) -> Response:
    try:
        body = await request.json_object(required=False) or {}
        made = declared.params(segments, body)
    except HTTPProblem as exc:
        raise PulpError(400, f"Invalid request body: {exc.detail}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise PulpError(400, f"Invalid request body: {exc}") from None
    options = Submission(
        tenant=principal.tenant,
        user=principal.user,
        user_id=principal.user_id,
        request_id=request.request_id,
    )
    service = request.service
    try:
        if isinstance(made, list):
            group_id, _ = await service.submit_group(
                [(declared.operation, p, options) for p in made]
            )
            href = f"{dialect.prefix}/v2/task_groups/{group_id}/"
            return json({"_href": href, "group_id": group_id}, 202)
        task, _ = await service.submit_one(declared.operation, made, options)
    except InvalidParameters as exc:
        raise PulpError(400, f"Invalid properties: {field_errors(exc)}") from None
    return json(shapes.call_report([task], dialect.prefix), 202)


def create(application: Application) -> PulpDialect:
    """The Pulp dialect for ``application``."""
    return PulpDialect(application)
