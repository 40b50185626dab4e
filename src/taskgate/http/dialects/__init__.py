"""Dialects: other systems' task APIs, served over the same `TaskService`.

A dialect is a thin translation (DESIGN.md §5): a state map, a field map, its own auth
header mapped onto taskgate's API keys and tenants, its own error shape, its own routes.
It never touches storage, and everything it shows comes from the task.

Each dialect module has ``create(application) -> Dialect``: an ASGI callable plus the
path prefixes it answers. `Application` hands a request to the first dialect whose
prefix starts its path, before the native routes; each dialect then does its own auth,
routing and errors. Which dialects run, and where, is configuration
(``Settings.dialects``, ``Settings.<name>_prefix``).
"""

from __future__ import annotations

import importlib
import random
import re
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from taskgate.errors import InvalidParameters, NotFound
from taskgate.http.asgi import Receive, Scope, Send
from taskgate.http.auth import Principal
from taskgate.http.request import ClientDisconnected, Request
from taskgate.logcontext import REQUEST_ID

if TYPE_CHECKING:
    from taskgate.auth.service import KeyService
    from taskgate.http.application import Application
    from taskgate.http.responses import Response
    from taskgate.model import Task
    from taskgate.service import TaskService

X_REQUEST_ID = b"x-request-id"
_REQUEST_ID = re.compile(rb"^[!-~]{1,200}\Z")
"""1-200 visible ASCII characters, as the native API takes them."""

DIALECTS: dict[str, str] = {
    "proxmox": "taskgate.http.dialects.proxmox",
    "gcore": "taskgate.http.dialects.gcore",
    "cloudcoin": "taskgate.http.dialects.cloudcoin",
    "rediscloud": "taskgate.http.dialects.rediscloud",
    "pulp": "taskgate.http.dialects.pulp",
}
"""Every dialect taskgate knows, by name: the module that builds it."""


class Dialect(Protocol):
    name: str
    prefixes: Sequence[str]
    """Path prefixes this dialect answers (a request path equal to one, or under it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


Mounts = tuple[tuple[str, str, Dialect], ...]
"""(prefix, prefix + "/", dialect) for each prefix of each dialect, made once."""


def load(application: Application) -> Mounts:
    """The dialects the settings enable, built for ``application``, by prefix."""
    mounts: list[tuple[str, str, Dialect]] = []
    for name in application.settings.dialects:
        dialect: Dialect = importlib.import_module(DIALECTS[name]).create(application)
        mounts.extend((prefix, prefix + "/", dialect) for prefix in dialect.prefixes)
    return tuple(mounts)


def find(mounts: Mounts, path: str) -> Dialect | None:
    """The dialect serving ``path`` (the path equals one of its prefixes or is under it)."""
    for prefix, under, dialect in mounts:
        if path == prefix or path.startswith(under):
            return dialect
    return None


def open_request(application: Application, scope: Scope, receive: Receive) -> Request:
    """The `Request` of a dialect's call: its path without the root path, and its request
    id (the ``X-Request-ID`` sent, or a new one), which the answer echoes."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :] or "/"
    request = Request(scope, receive, application, path)
    raw_id = request.headers.get(X_REQUEST_ID)
    if raw_id is None or not _REQUEST_ID.match(raw_id):
        request.request_id = f"{random.getrandbits(64):016x}"
    else:
        request.request_id = raw_id.decode("ascii")
    REQUEST_ID.set(request.request_id)  # for the log; `Application` restores it after
    return request


def request_id_header(request: Request) -> tuple[bytes, bytes]:
    return (X_REQUEST_ID, request.request_id.encode())


async def respond(
    request: Request,
    send: Send,
    answer: Awaitable[Response],
    error: Callable[[Exception], Response],
) -> None:
    """Send the response ``answer`` gives, or ``error``'s for what it raised (in the
    dialect's own error shape), with the request id; nothing if the client left first."""
    try:
        response = await answer
    except ClientDisconnected:
        return
    except Exception as exc:
        response = error(exc)
    await response.send(send, request_id_header(request))


async def key_principal(keys: KeyService, token: str) -> Principal:
    """The principal of the taskgate key ``token`` (cached checks first), as the native
    API resolves it; `AuthenticationFailed` for a bad key."""
    key = keys.cached(token) or await keys.authenticate(token)
    return Principal(
        tenant=key.tenant, user=key.user, role=key.role, user_id=key.user_id, key_id=key.id
    )


def field_errors(exc: InvalidParameters) -> str:
    """The fields a submit refused, one ``field: why`` each, for a dialect's message."""
    return "; ".join(
        f"{e['field']}: {e['message']}" if e.get("field") else str(e["message"]) for e in exc.errors
    )


class _Rendering(NamedTuple):
    tenant: str
    version: int
    body: bytes


class StatusRenderings:
    """A dialect's rendered status reads, kept as the native cache keeps its own
    (`taskgate.http.cache`): a rendering is sent only after the store says the task's
    version is still the one rendered (a two-column read), and only to its tenant."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._items: dict[Hashable, _Rendering] = {}

    async def read(
        self,
        service: TaskService,
        key: Hashable,
        task_id: str,
        tenant: str | None,
        render: Callable[[Task], bytes],
    ) -> bytes:
        """The body of ``task_id`` as ``render`` makes it; `NotFound` (the caller
        answers its own 404) if the task does not exist for ``tenant``."""
        items = self._items
        cached = items.get(key)
        try:
            if (
                cached is not None
                and (tenant is None or cached.tenant == tenant)
                and await service.version(task_id, tenant=tenant) == cached.version
            ):
                return cached.body
            task = await service.get(task_id, tenant=tenant)
        except NotFound:
            items.pop(key, None)
            raise
        body = render(task)
        if len(items) >= self.limit:
            del items[next(iter(items))]  # the oldest
        items[key] = _Rendering(task.tenant, task.version, body)
        return body
