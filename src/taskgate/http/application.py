"""`Application`: the ASGI callable of the native API, and `create_app`.

Per request it does only this: find the endpoint (a dict lookup or a few regexes),
take or make the request id, resolve the principal, call the handler, send the
response it returns as two ASGI messages. Every error becomes a problem document. There
is no middleware stack: what a middleware would do is a line here.

The ASGI ``lifespan`` protocol opens the service on startup, on the server's own event
loop (the SQLite connector binds its notification socket to that loop), and closes it
on shutdown. `httpx.ASGITransport` does not run lifespan: tests open the service
themselves (see ``tests/http/conftest.py``).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from time import perf_counter

from taskgate import tracing
from taskgate.auth.service import KeyService
from taskgate.http import (
    acknowledge,
    dialects,
    events,
    groups,
    meta,
    metrics,
    overview,
    schedules,
    submit,
    tasks,
    ui,
)
from taskgate.http.asgi import Message, Receive, Scope, Send
from taskgate.http.auth import NOBODY, Authenticator, KeyAuthenticator, anonymous, forbidden
from taskgate.http.cache import RenderCache
from taskgate.http.openapi import build as build_openapi
from taskgate.http.problems import HTTPProblem, from_exception
from taskgate.http.request import ClientDisconnected, Request
from taskgate.http.responses import Response, dumps
from taskgate.http.routing import METHODS, Endpoint, Router
from taskgate.logcontext import REQUEST_ID
from taskgate.metrics import UNMATCHED
from taskgate.service import TaskService
from taskgate.settings import Settings

logger = logging.getLogger("taskgate.http")

X_REQUEST_ID = b"x-request-id"
_REQUEST_ID = re.compile(rb"^[!-~]{1,200}\Z")
"""1-200 visible ASCII characters: safe to echo in a header and to log."""

Hook = Callable[[], Awaitable[None]]

_METHOD_LABELS = {m: m for m in (*METHODS, "HEAD", "OPTIONS")}
"""Methods as metric labels; any other is "other" (a client may send any token)."""


def endpoints() -> list[Endpoint]:
    """Every endpoint of the native API, hot ones first (they are matched in order)."""
    return [
        *tasks.api.items,
        *submit.api.items,
        *acknowledge.api.items,
        *schedules.api.items,
        *groups.api.items,
        *events.api.items,
        *meta.operations_api.items,
        *overview.api.items,
        *meta.api.items,
        *metrics.api.items,
        *ui.api.items,
    ]


class Application:
    """The native HTTP API v1 as one ASGI application."""

    def __init__(
        self,
        service: TaskService,
        settings: Settings,
        *,
        authenticate: Authenticator | None = None,
        routes: Iterable[Endpoint] | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.keys: KeyService | None = None
        """The API keys requests are checked against (None: another authenticator)."""
        if authenticate is None:
            if settings.auth:
                self.keys = KeyService(service.connector)
                authenticate = KeyAuthenticator(self.keys)
            else:
                authenticate = anonymous
        self.authenticate = authenticate
        declared = endpoints() if routes is None else routes
        self.router = Router(metrics.public(declared) if settings.metrics_public else declared)
        self.metrics = service.metrics
        self.tracing: tracing.Tracing | None = tracing.load(settings)
        """Spans for requests, when tracing is on (`taskgate.tracing`)."""
        if self.tracing is not None and service.tracing is None:
            service.tracing = self.tracing  # submits store the request span's context
        self.retry_after = str(settings.retry_after).encode()
        self.renderings = RenderCache()
        """Rendered task JSON for status reads, checked against the task's version."""
        self.closing = False
        self.on_startup: list[Hook] = []
        """Run after the service opens, in order (e.g. an in-process scheduler)."""
        self.on_shutdown: list[Hook] = []
        """Run before the service closes, in order."""
        self._openapi: dict[str, bytes] = {}
        self._docs: bytes | None = None
        self.dialects: dialects.Mounts = dialects.load(self)
        """Other systems' task APIs mounted beside the native one (`taskgate.http.dialects`)."""

    @property
    def authenticate(self) -> Authenticator:
        """Resolves each request's `Principal` (the one seam for an auth layer)."""
        return self._authenticate

    @authenticate.setter
    def authenticate(self, authenticate: Authenticator) -> None:
        self._authenticate = authenticate
        self._anonymous = authenticate is anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # none served: refuse the handshake (403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    # -- http ---------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
            path = path[len(root) :] or "/"  # servers differ on whether path includes it
        if self.dialects and (dialect := dialects.find(self.dialects, path)) is not None:
            await self._dialect(dialect, scope, receive, send, started)
            return
        request = Request(scope, receive, self, path)
        raw_id = request.headers.get(X_REQUEST_ID)
        bad_id = raw_id is not None and not _REQUEST_ID.match(raw_id)
        if raw_id is None or bad_id:
            # not a secret, just unique enough: 64 random bits, no system call
            request.request_id = f"{random.getrandbits(64):016x}"
            request_id = (X_REQUEST_ID, request.request_id.encode())
        else:
            request.request_id = raw_id.decode("ascii")
            request_id = (X_REQUEST_ID, raw_id)
        token = REQUEST_ID.set(request.request_id)  # log records name the request
        try:
            if self.tracing is None:
                route, status = await self._answer(request, request_id, send, bad_id)
            else:
                with self.tracing.http_span(
                    scope["method"], request.header(b"traceparent"), request.header(b"tracestate")
                ) as span:
                    route, status = await self._answer(request, request_id, send, bad_id)
                    span.done(route, status)
        finally:
            REQUEST_ID.reset(token)
        if status:
            method = _METHOD_LABELS.get(scope["method"], "other")
            self.metrics.http_answered(method, route, status, perf_counter() - started)

    async def _answer(
        self, request: Request, request_id: tuple[bytes, bytes], send: Send, bad_id: bool
    ) -> tuple[str, int]:
        """Find the endpoint, run it, send its answer: the route template (`UNMATCHED`:
        none) and the status sent (0: the client went away first)."""
        scope = request.scope
        route = UNMATCHED
        try:
            if bad_id:
                raise HTTPProblem(
                    400,
                    "X-Request-ID must be 1 to 200 visible ASCII characters",
                    slug="invalid-header",
                    title="Invalid header",
                    header="X-Request-ID",
                )
            endpoint, request.path_params = self.router.resolve(scope["method"], request.path)
            route = endpoint.path
            if self._anonymous:  # no auth configured: skip a coroutine per request
                principal = request.principal
            elif endpoint.public:  # health, docs: no key needed, and no tenant seen
                principal = request.principal = NOBODY
            else:
                principal = request.principal = await self._authenticate(request)
            if endpoint.role != "read" and not principal.allows(endpoint.role):
                raise forbidden(principal, endpoint.role)
            if scope["query_string"]:
                endpoint.check_query(request.query)
            response = await endpoint.handler(request)
        except ClientDisconnected:
            return route, 0
        except Exception as exc:
            response = self._problem(exc, request)
        await response.send(send, request_id, head=scope["method"] == "HEAD")
        return route, response.status

    async def _dialect(
        self, dialect: dialects.Dialect, scope: Scope, receive: Receive, send: Send, started: float
    ) -> None:
        """Hand the request to a dialect; its metrics are labelled with its name as the
        route (each dialect routes on its own)."""
        status = 0

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = REQUEST_ID.set(None)  # the dialect sets it once it has the request's id
        try:
            await dialect(scope, receive, sent)
        finally:
            REQUEST_ID.reset(token)
        if status:
            method = _METHOD_LABELS.get(scope["method"], "other")
            self.metrics.http_answered(
                method, f"dialect:{dialect.name}", status, perf_counter() - started
            )

    def _problem(self, exc: Exception, request: Request) -> Response:
        response, fault = from_exception(
            exc,
            instance=request.root_path + request.path,
            request_id=request.request_id,
            retry_after=self.settings.retry_after,
        )
        if fault:
            logger.error(
                "%s %s failed (request %s)",
                request.method,
                request.path,
                request.request_id,
                exc_info=exc,
            )
        return response

    # -- lifespan -----------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    logger.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the service, then run the startup hooks."""
        self.closing = False
        await self.service.open()
        for hook in self.on_startup:
            await hook()

    async def shutdown(self) -> None:
        """Stop being ready, run the shutdown hooks, close the service."""
        self.closing = True
        try:
            for hook in self.on_shutdown:
                await hook()
        finally:
            if self.keys is not None:
                self.keys.close()
            await self.service.close()

    # -- documents ----------------------------------------------------------------

    def openapi(self, root_path: str = "") -> dict[str, object]:
        return build_openapi(self.router.endpoints, self.service.app, root_path=root_path)

    def openapi_bytes(self, root_path: str = "") -> bytes:
        """The OpenAPI document, built once per root path."""
        body = self._openapi.get(root_path)
        if body is None:
            body = self._openapi[root_path] = dumps(self.openapi(root_path))
        return body

    def docs_page(self) -> bytes:
        """The docs page with its script and style inlined: it needs no network."""
        if self._docs is None:
            static = resources.files("taskgate.http").joinpath("static")
            page = static.joinpath("docs.html").read_text("utf-8")
            page = page.replace("/*STYLE*/", static.joinpath("docs.css").read_text("utf-8"))
            page = page.replace("/*SCRIPT*/", static.joinpath("docs.js").read_text("utf-8"))
            self._docs = page.encode()
        return self._docs


def create_app(
    service: TaskService, settings: Settings, *, authenticate: Authenticator | None = None
) -> Application:
    """The native API over ``service``. Serve it with any ASGI server (uvicorn).

    Without ``authenticate``, every request needs an API key of the service's store
    (``Authorization: Bearer <key>``) when ``settings.auth`` is on, and is the anonymous
    admin when it is off.
    """
    return Application(service, settings, authenticate=authenticate)
