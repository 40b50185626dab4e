"""The Proxmox VE task API (``/api2/json``), over the same `TaskService`.

What PVE clients (proxmoxer) use, and nothing more: ``GET /nodes``, the node index, the
task list with PVE's filters, a task's index, ``/status`` and ``/log``, ``DELETE`` (stop =
cancel), ``POST /access/ticket``, and the kickoff routes an app declares
(`taskgate.http.dialects.proxmox_kickoff`). Auth: `proxmox_auth`; shapes and list
parameters: `proxmox_tasks`.

Translation (every field comes from the stored task):

- ``upid``, ``node``, ``pid``, ``pstart``, ``starttime``, ``type``, ``id`` and ``user`` are
  the task's UPID fields (taskgate assigns a PVE-valid UPID at submit); ``endtime`` is
  ``finished_at``.
- ``status``: a task that has not ended (queued, scheduled, running, canceling) is
  ``running``, as PVE has no waiting state a client could act on; an ended one is
  ``stopped``, with ``exitstatus``: ``OK``; ``WARNINGS: n`` (succeeded with warnings);
  else the error message (failed, canceled, timed out), newlines made spaces.
- The log: the stored lines (``warning`` lines as PVE's ``WARN: ...``), then, once the
  task has ended, ``TASK OK`` / ``TASK WARNINGS: n`` / ``TASK ERROR: <exitstatus>``,
  derived from the task and never stored.
- The node is this server's UPID node name (`TaskService.node`); other names are
  refused. Lists show every task of the caller's tenant (one taskgate deployment is one
  PVE node).
- Errors as PVE sends them: ``{"data": null, "errors": {...}, "message": "..."}``; 400 for
  parameters (an unparsable UPID, another tenant's or an unknown task: "no such task"),
  401, 403, 501 for an unknown method or path. The standard reason phrase is sent (ASGI
  has no custom one), so proxmoxer users see the detail in ``errors``.

List filters that the store cannot index (``userfilter``, ``statusfilter``, ``errors``) are
applied while reading the tenant's matching tasks, as PVE reads its archive file: the
cost grows with the tasks that pass the indexed filters (source, type, vmid, since, until).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from taskgate.errors import (
    Conflict,
    InvalidId,
    InvalidParameters,
    OperationNotFound,
    TaskgateError,
    TaskNotFound,
)
from taskgate.http.asgi import Receive, Scope, Send
from taskgate.http.auth import Principal
from taskgate.http.dialects.proxmox_auth import ProxmoxAuth, Refused
from taskgate.http.dialects.proxmox_kickoff import Kickoff, routes
from taskgate.http.dialects.proxmox_tasks import (
    ACTIVE,
    ENDED,
    ListQuery,
    PveError,
    last_line,
    list_item,
    param_error,
    read_bool,
    read_int,
    task_status,
)
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import ClientDisconnected, Request
from taskgate.http.responses import dumps
from taskgate.ids import Upid
from taskgate.model import State, Task, TaskFilter
from taskgate.service import MAX_LOG_PAGE, MAX_PAGE, Submission

if TYPE_CHECKING:
    from taskgate.http.application import Application

logger = logging.getLogger("taskgate.http.proxmox")

_JSON = (b"content-type", b"application/json;charset=UTF-8")
MAX_CACHED = 10_000


# -- the dialect ---------------------------------------------------------------------


class ProxmoxDialect:
    """The ASGI callable `Application` hands every request under the prefix."""

    name = "proxmox"

    def __init__(self, application: Application) -> None:
        self.application = application
        self.service = application.service
        self.prefix = application.settings.proxmox_prefix
        self.prefixes: Sequence[str] = (self.prefix,)
        self.auth = ProxmoxAuth(
            application.keys if application.settings.auth else None, self.service.connector
        )
        self.kickoffs: dict[str, Kickoff] = routes(application.service.app)
        self._status: dict[str, tuple[str, str, int, bytes]] = {}
        """Rendered status bodies by UPID: (task id, tenant, version, body)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        request = Request(scope, receive, self.application, path)
        try:
            status, body, headers = await self._answer(request)
        except ClientDisconnected:
            return
        except PveError as exc:
            status, body, headers = exc.status, self._error_body(exc), [_JSON]
        except Exception:
            logger.exception("%s %s failed", scope["method"], path)
            status, headers = 500, [_JSON]
            body = dumps({"data": None, "message": "internal error\n"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(body))],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    @staticmethod
    def _error_body(exc: PveError) -> bytes:
        data: dict[str, Any] = {"data": None}
        if exc.errors is not None:
            data["errors"] = exc.errors
        data["message"] = exc.message.rstrip("\n") + "\n"
        data.update(exc.extra)
        return dumps(data)

    # -- routing --------------------------------------------------------------------

    async def _answer(self, request: Request) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        method = request.method
        if method == "HEAD":
            method = "GET"
        parts = [p for p in request.path[len(self.prefix) :].split("/") if p]
        try:
            if parts == ["access", "ticket"] and method == "POST":
                return await self._login(request)
            principal = await self.auth.principal(
                request.header(b"authorization"),
                _cookie(request.header(b"cookie")),
                request.header(b"csrfpreventiontoken"),
                method,
            )
            request.principal = principal
            return 200, await self._route(request, method, parts), [_JSON]
        except _Download as download:
            task = download.task
            started = task.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            name = f"task-{self.service.node}-{Upid.decode(task.upid).type}-{started}.log"
            disposition = f'attachment; filename="{name}"'.encode()
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-disposition", disposition),
            ]
            return 200, download.text.encode(), headers
        except Refused as exc:
            raise PveError(401, str(exc)) from None
        except HTTPProblem as exc:  # malformed query or body, body too large
            raise PveError(
                exc.status if exc.status < 500 else 400, exc.detail or exc.title
            ) from None

    async def _route(self, request: Request, method: str, parts: list[str]) -> bytes:
        n = len(parts)
        if n == 0 and method == "GET":
            return dumps({"data": [{"subdir": "nodes"}, {"subdir": "access"}]})
        if n >= 1 and parts[0] == "nodes":
            if n == 1 and method == "GET":
                return self._nodes()
            if n >= 2:
                node = parts[1]
                self._check_node(node)
                if n == 2 and method == "GET":
                    names = ["tasks", *sorted({k.split("/")[0] for k in self.kickoffs})]
                    return dumps({"data": [{"name": name} for name in names]})
                if n >= 3 and parts[2] == "tasks":
                    if n == 3 and method == "GET":
                        return await self._list(request)
                    if n >= 4:
                        upid = parts[3]
                        if n == 4 and method == "GET":
                            await self._task(request, node, upid)
                            return dumps({"data": [{"name": "log"}, {"name": "status"}]})
                        if n == 4 and method == "DELETE":
                            return await self._stop(request, node, upid)
                        if n == 5 and parts[4] == "status" and method == "GET":
                            return await self._task_status(request, node, upid)
                        if n == 5 and parts[4] == "log" and method == "GET":
                            return await self._log(request, node, upid)
                elif method == "POST" and (route := self.kickoffs.get("/".join(parts[2:]))):
                    return await self._kickoff(request, route)
        raise PveError(501, f"Method '{method} /{'/'.join(parts)}' not implemented")

    def _check_node(self, node: str) -> None:
        if node != self.service.node:
            raise param_error(node=f"no such cluster node '{node}'")

    def _nodes(self) -> bytes:
        node = self.service.node
        return dumps(
            {"data": [{"node": node, "status": "online", "type": "node", "id": f"node/{node}"}]}
        )

    async def _task(self, request: Request, node: str, upid: str) -> Task:
        try:
            if Upid.decode(upid).node != node:
                raise TaskNotFound(upid)
            return await self.service.get_by_upid(upid, tenant=request.principal.scope)
        except InvalidId:
            raise param_error(upid="unable to parse worker upid") from None
        except TaskNotFound:
            raise param_error(upid="no such task") from None

    # -- reads ----------------------------------------------------------------------

    async def _task_status(self, request: Request, node: str, upid: str) -> bytes:
        scope = request.principal.scope
        cached = self._status.get(upid)
        if (
            cached is not None
            and (scope is None or cached[1] == scope)
            and upid.split(":", 2)[1] == node
        ):
            task_id, _, version, body = cached
            try:
                if await self.service.version(task_id) == version:
                    return body
            except TaskNotFound:  # deleted since
                self._status.pop(upid, None)
        task = await self._task(request, node, upid)
        body = dumps({"data": task_status(task)})
        if len(self._status) >= MAX_CACHED:
            self._status.clear()
        self._status[upid] = (task.id, task.tenant, task.version, body)
        return body

    async def _list(self, request: Request) -> bytes:
        query = ListQuery(request.query)
        tenant = request.principal.scope
        states: list[tuple[State, ...]] = []
        if query.source in ("active", "all"):
            states.append(ACTIVE)
        if query.source in ("archive", "all"):
            states.append(ENDED)
        items: list[dict[str, Any]] = []
        total = 0
        end = query.start + query.limit if query.limit else None
        for group in states:
            async for task in self._scan(query.filter(tenant, group)):
                if not query.keeps(task):
                    continue
                if total >= query.start and (end is None or total < end):
                    items.append(list_item(task))
                total += 1
        body: dict[str, Any] = {"data": items}
        if total:
            body["total"] = total
        return dumps(body)

    async def _scan(self, task_filter: TaskFilter) -> AsyncIterator[Task]:
        cursor: str | None = None
        while True:
            page = await self.service.list(task_filter, cursor=cursor, limit=MAX_PAGE)
            for task in page.items:
                yield task
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _log(self, request: Request, node: str, upid: str) -> bytes:
        query = request.query
        unknown = sorted(set(query) - {"start", "limit", "download", "_dc"})
        if unknown:
            raise param_error(**dict.fromkeys(unknown, "property is not defined in schema"))
        download = read_bool(query, "download")
        if download and ("start" in query or "limit" in query):
            raise param_error(download="'start' and 'limit' cannot be used with 'download'")
        start = read_int(query, "start", 0)
        limit = 0 if download else read_int(query, "limit", 50)
        task = await self._task(request, node, upid)
        lines = await self._lines(task, start, limit)
        total = task.log_count + (1 if task.terminal else 0)
        if total == 0:
            total = 1
            lines = [{"n": 1, "t": "no content"}] if start == 0 else []
        if download:
            raise _Download(task, "\n".join(str(line["t"]) for line in lines) + "\n")
        return dumps({"data": lines, "total": total})

    async def _lines(self, task: Task, start: int, limit: int) -> list[dict[str, Any]]:
        stop = task.log_count if limit == 0 else min(task.log_count, start + limit)
        out: list[dict[str, Any]] = []
        at = start
        while at < stop:
            page = await self.service.log(task.id, start=at, limit=min(MAX_LOG_PAGE, stop - at))
            if not page.lines:
                break
            for line in page.lines:
                text = line.t
                if line.level == "warning" and not text.startswith("WARN"):
                    text = f"WARN: {text}"
                out.append({"n": line.n, "t": text})
            at = page.lines[-1].n
        if task.terminal:
            n = task.log_count + 1
            if start < n and (limit == 0 or n <= start + limit):
                out.append({"n": n, "t": last_line(task)})
        return out

    # -- writes ---------------------------------------------------------------------

    def _check_write(self, principal: Principal, path: str, privilege: str) -> None:
        if not principal.allows("write"):
            raise PveError(403, f"Permission check failed ({path}, {privilege})")

    async def _stop(self, request: Request, node: str, upid: str) -> bytes:
        task = await self._task(request, node, upid)
        self._check_write(request.principal, f"/nodes/{node}", "Sys.Modify")
        # already ended (Conflict): PVE finds no process to signal and says nothing
        with contextlib.suppress(Conflict):
            await self.service.cancel(task.id, tenant=request.principal.scope)
        return dumps({"data": None})

    async def _kickoff(self, request: Request, route: Kickoff) -> bytes:
        principal = request.principal
        node = self.service.node
        self._check_write(principal, f"/nodes/{node}", route.operation)
        form = await _form(request)
        try:
            taken = self.service.operation(route.operation).params_model.model_fields
        except OperationNotFound as exc:
            raise PveError(501, str(exc)) from None
        params: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, values in form.items():
            if name not in route.fields:
                errors[name] = (
                    "property is not defined in schema and the schema does not allow"
                    " additional properties"
                )
                continue
            convert = route.fields[name]
            if convert is None:
                continue
            try:
                value = convert(values[-1])
            except (TypeError, ValueError) as exc:
                errors[name] = str(exc) or f"invalid value '{values[-1]}'"
                continue
            if name in taken:  # checked either way; kept only if the operation takes it
                params[name] = value
        if errors:
            raise param_error(**errors)
        submission = Submission(
            tenant=principal.tenant,
            user=principal.user,
            user_id=principal.user_id,
        )
        try:
            task, _ = await self.service.submit_one(route.operation, params, submission)
        except InvalidParameters as exc:
            raise param_error(
                **{str(e.get("field") or "params"): str(e.get("message")) for e in exc.errors}
            ) from None
        except OperationNotFound as exc:
            raise PveError(501, str(exc)) from None
        except TaskgateError as exc:
            raise PveError(exc.status if exc.status < 500 else 503, str(exc)) from None
        return dumps({"data": task.upid})

    # -- login ----------------------------------------------------------------------

    async def _login(self, request: Request) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        form = await _form(request)
        username = (form.get("username") or [""])[-1]
        password = (form.get("password") or [""])[-1]
        realm = (form.get("realm") or [""])[-1]
        if realm and "@" not in username:
            username = f"{username}@{realm}"
        try:
            ticket = await self.auth.login(username, password)
        except Refused:
            # proxmoxer 2.2 reads body["data"] before checking the status: keep it JSON
            return 401, dumps({"data": None, "message": "authentication failure\n"}), [_JSON]
        data = {
            "username": ticket.username,
            "ticket": ticket.ticket,
            "CSRFPreventionToken": ticket.csrf,
            "cap": {},
        }
        return 200, dumps({"data": data}), [_JSON]


class _Download(Exception):
    def __init__(self, task: Task, text: str) -> None:
        self.task = task
        self.text = text


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    if not body:
        return {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise PveError(400, "unable to parse the form body") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def _cookie(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "PVEAuthCookie" and value:
            from urllib.parse import unquote

            return unquote(value)
    return None


def create(application: Application) -> ProxmoxDialect:
    """The Proxmox VE dialect of ``application`` (`taskgate.http.dialects`)."""
    return ProxmoxDialect(application)


__all__ = ["ProxmoxDialect", "create"]
