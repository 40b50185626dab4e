"""Responses as raw ASGI messages: a status, ready header byte pairs, and body bytes.

A `Response` is built by a handler and sent once by the application. There is no
header object, no cookie jar, no background task: the header list is the one ASGI
sends, and the common pairs are module-level constants so a hot request allocates only
the few that vary (``content-length``, ``etag``, ``x-request-id``).
"""

from __future__ import annotations

from typing import Any

import orjson

from taskgate.http.asgi import Headers, Send

JSON_OPTIONS = orjson.OPT_UTC_Z
"""Datetimes are aware UTC values; orjson writes them as RFC 3339 with a ``Z``."""

CONTENT_TYPE = b"content-type"
CONTENT_LENGTH = b"content-length"

CT_JSON = (CONTENT_TYPE, b"application/json")
CT_PROBLEM = (CONTENT_TYPE, b"application/problem+json")
CT_HTML = (CONTENT_TYPE, b"text/html; charset=utf-8")
NO_STORE = (b"cache-control", b"no-store")
NO_CACHE = (b"cache-control", b"no-cache")

_START = "http.response.start"
_BODY = "http.response.body"


def dumps(value: Any) -> bytes:
    """JSON bytes for a response body."""
    return orjson.dumps(value, option=JSON_OPTIONS)


def header(name: bytes, value: str | int) -> tuple[bytes, bytes]:
    """One header pair; the value is encoded as Latin-1, as HTTP/1.1 sends it."""
    return (name, str(value).encode("latin-1"))


class Response:
    """A complete response. ``headers`` excludes ``content-length`` (added on send)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        self.status = status
        self.body = body
        self.headers: Headers = headers if headers is not None else []

    async def send(
        self, send: Send, request_id: tuple[bytes, bytes], *, head: bool = False
    ) -> None:
        """Send it; for a HEAD request, the headers a GET would get and no body."""
        headers = self.headers
        headers.append(request_id)
        if self.status != 204 and self.status != 304:
            # RFC 9110 §8.6: no Content-Length on 204; none needed on 304.
            headers.append((CONTENT_LENGTH, b"%d" % len(self.body)))
        await send({"type": _START, "status": self.status, "headers": headers})
        await send({"type": _BODY, "body": b"" if head else self.body})


def json_response(
    value: Any, status: int = 200, headers: Headers | None = None, *, cache: bool = False
) -> Response:
    """A JSON response; ``Cache-Control: no-store`` unless ``cache``."""
    pairs: Headers = [CT_JSON] if cache else [CT_JSON, NO_STORE]
    if headers:
        pairs.extend(headers)
    return Response(status, dumps(value), pairs)


def raw_json_response(body: bytes, status: int = 200, headers: Headers | None = None) -> Response:
    """A JSON response from body bytes already encoded."""
    pairs: Headers = [CT_JSON, NO_STORE]
    if headers:
        pairs.extend(headers)
    return Response(status, body, pairs)


def empty_response(status: int = 204, headers: Headers | None = None) -> Response:
    return Response(status, b"", headers if headers is not None else [])
