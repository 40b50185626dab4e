"""`Request`: one HTTP request, read lazily.

Nothing is parsed until a handler asks: headers become a dict on first use, the query
string is split on first use, the body is read (under a size limit) only by handlers
that take one. A status read therefore touches only the two headers it needs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from taskgate.http.asgi import Receive, Scope
from taskgate.http.auth import ANONYMOUS, Principal
from taskgate.http.problems import HTTPProblem

if TYPE_CHECKING:
    from taskgate.http.application import Application
    from taskgate.service import TaskService
    from taskgate.settings import Settings

MAX_QUERY_FIELDS = 200

# A Host header we are willing to echo into an absolute URL: a name, IPv4 or [IPv6],
# and an optional port. Anything else falls back to the address the server listens on.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)


class ClientDisconnected(Exception):
    """The client went away before the request was answered."""


class Request:
    """The request a handler answers: scope, lazily parsed headers, query and body."""

    __slots__ = (
        "_body",
        "_headers",
        "_query",
        "app",
        "path",
        "path_params",
        "principal",
        "receive",
        "request_id",
        "scope",
        "service",
        "settings",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        app: Application,
        path: str,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.app = app
        self.service: TaskService = app.service
        self.settings: Settings = app.settings
        self.path = path
        """The path the router matched (without the ASGI ``root_path``)."""
        self.path_params: dict[str, str] = {}
        self.request_id = ""
        self.principal: Principal = ANONYMOUS
        """Set by the application from its authenticator before the handler runs."""
        self._headers: dict[bytes, bytes] | None = None
        self._query: dict[str, list[str]] | None = None
        self._body: bytes | None = None

    # -- headers ------------------------------------------------------------------

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Raw headers by lower-case name (the last one wins if a name repeats)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = dict(self.scope["headers"])
        return headers

    def header(self, name: bytes) -> str | None:
        """A header's value as text, or None. ``name`` is lower-case bytes."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    # -- query --------------------------------------------------------------------

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters: every value of each name, in order."""
        query = self._query
        if query is None:
            query = {}
            raw: bytes = self.scope.get("query_string", b"")
            if raw:
                try:
                    pairs = parse_qsl(
                        raw.decode("latin-1"),
                        keep_blank_values=True,
                        errors="strict",
                        max_num_fields=MAX_QUERY_FIELDS,
                    )
                except (ValueError, UnicodeDecodeError):
                    raise HTTPProblem(
                        400,
                        "the query string is malformed (bad percent-encoding, or more than "
                        f"{MAX_QUERY_FIELDS} parameters)",
                    ) from None
                for name, value in pairs:
                    query.setdefault(name, []).append(value)
            self._query = query
        return query

    def query_one(self, name: str) -> str | None:
        """The value of a single-valued query parameter (400 if it is repeated)."""
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise HTTPProblem(400, f"query parameter {name!r} may be given only once")
        return values[0]

    def query_all(self, name: str) -> list[str]:
        return self.query.get(name, [])

    # -- body ---------------------------------------------------------------------

    async def body(self) -> bytes:
        """The whole body; 413 past ``settings.max_body_size`` (declared or streamed)."""
        if self._body is not None:
            return self._body
        limit = self.settings.max_body_size
        declared = self.headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPProblem(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:  # a chunked body, or one longer than it said
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = b"".join(chunks)
        return self._body

    def _declares_body(self) -> bool:
        headers = self.headers
        length = headers.get(b"content-length")
        if length is not None:
            return length != b"0"
        return b"transfer-encoding" in headers

    def _check_content_type(self) -> None:
        raw = self.header(b"content-type")
        media = (raw or "").split(";", 1)[0].strip().lower()
        if media == "application/json" or (media.endswith("+json") and "/" in media):
            return
        raise HTTPProblem(
            415,
            f"the body must be JSON (Content-Type: application/json), not {raw!r}"
            if raw
            else "the body must be JSON: send Content-Type: application/json",
            headers=[(b"accept-post", b"application/json")],
        )

    async def json_object(self, *, required: bool) -> dict[str, Any] | None:
        """The body as a JSON object; None when there is none and none is required.

        415 for a body that is not JSON by its Content-Type, 413 for one too large, 400
        for malformed JSON, 422 for JSON that is not an object.
        """
        declared = self._declares_body()
        if declared:
            self._check_content_type()
        body = await self.body()
        if not body.strip():
            if required:
                raise HTTPProblem(
                    422,
                    "a JSON object body is required",
                    slug="invalid-body",
                    title="Invalid body",
                    errors=[{"field": None, "message": "a JSON object body is required"}],
                )
            return None
        if not declared:
            self._check_content_type()
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPProblem(
                400,
                f"the body is not valid JSON: {exc}",
                slug="malformed-json",
                title="Malformed JSON",
            ) from None
        if not isinstance(value, dict):
            message = f"the body must be a JSON object, not {_json_kind(value)}"
            raise HTTPProblem(
                422,
                message,
                slug="invalid-body",
                title="Invalid body",
                errors=[{"field": None, "message": message}],
            )
        return value

    async def wait_disconnect(self) -> None:
        """Return when the client disconnects (used to abandon a long poll)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return

    # -- URLs ---------------------------------------------------------------------

    @property
    def root_path(self) -> str:
        root: str = self.scope.get("root_path", "")
        return root

    def base_url(self) -> str:
        """``scheme://host[:port]`` plus the root path, for absolute URLs in headers."""
        scheme = self.scope.get("scheme", "http")
        host = self.header(b"host")
        if host is None or not _HOST.match(host):
            server = self.scope.get("server")
            if server and server[1] is not None:
                name = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
                host = f"{name}:{server[1]}"
            else:
                host = str(server[0]) if server else "localhost"
        return f"{scheme}://{host}{self.root_path}"


def _too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(
        413,
        f"the body is larger than this server accepts ({limit} bytes)",
        slug="body-too-large",
        title="Body too large",
        limit=limit,
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
