"""Server-Sent Events: the wire format, the streaming response, and ending promptly when
the client goes away.

A stream is answered in two steps. The handler does everything that can still fail as
a problem document (parse the request, check the task exists, subscribe to changes) and
returns an `EventStream` holding a `Stream`; the application then sends it like any
response, and `EventStream.send` runs the stream until it ends, the client disconnects,
or the server stops. A stream's data are single JSON lines, so each event is one
``data:`` line (https://html.spec.whatwg.org/multipage/server-sent-events.html).
"""

from __future__ import annotations

import logging
from typing import Protocol

from taskgate.errors import TaskgateError
from taskgate.http.asgi import Headers, Send
from taskgate.http.disconnect import UntilDisconnect
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import ClientDisconnected, Request
from taskgate.http.responses import CONTENT_TYPE, NO_STORE, Response

log = logging.getLogger("taskgate.http")

KEEPALIVE_INTERVAL = 15.0
"""Seconds of silence after which a stream sends a comment, so that proxies and clients
with read timeouts keep the connection."""
KEEPALIVE = b": keep-alive\n\n"
RETRY = b"retry: 2000\n\n"
"""Sent first: how long (ms) an EventSource waits before it reconnects."""

CT_EVENT_STREAM = (CONTENT_TYPE, b"text/event-stream; charset=utf-8")
NO_BUFFERING = (b"x-accel-buffering", b"no")
"""nginx: pass each event on at once instead of buffering the response."""

_BODY = "http.response.body"


def event(data: bytes, *, kind: str, id: str | None = None) -> bytes:
    """One event; ``data`` must be a single line (compact JSON is)."""
    if id is None:
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
    return b"id: " + id.encode() + b"\nevent: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def last_event_id(request: Request) -> str | None:
    """The ``Last-Event-ID`` header (None when absent or empty), or a 400 when it is not
    text an event id could be."""
    raw = request.headers.get(b"last-event-id")
    if raw is None or not raw.strip():
        return None
    try:
        return raw.strip().decode("ascii")
    except UnicodeDecodeError:
        raise bad_last_event_id("it is not ASCII") from None


def bad_last_event_id(reason: str) -> HTTPProblem:
    return HTTPProblem(
        400,
        f"Last-Event-ID is not an event id of this stream: {reason}",
        slug="invalid-header",
        title="Invalid header",
        header="Last-Event-ID",
    )


class Channel:
    """Where a stream writes its events."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def write(self, chunk: bytes) -> None:
        await self._send({"type": _BODY, "body": chunk, "more_body": True})


class Stream(Protocol):
    """What an `EventStream` runs: subscribed already, it writes events until it ends."""

    async def run(self, channel: Channel) -> None: ...

    def close(self) -> None:
        """Unsubscribe; called once, whether or not `run` ran."""


class EventStream(Response):
    """A ``text/event-stream`` response: the headers at once, then the stream's events."""

    __slots__ = ("request", "stream")

    def __init__(self, request: Request, stream: Stream, headers: Headers | None = None) -> None:
        super().__init__(200, b"", [CT_EVENT_STREAM, NO_STORE, NO_BUFFERING, *(headers or ())])
        self.request = request
        self.stream = stream

    async def send(
        self, send: Send, request_id: tuple[bytes, bytes], *, head: bool = False
    ) -> None:
        try:
            self.headers.append(request_id)
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            if head:
                await send({"type": _BODY, "body": b""})
                return
            try:
                with UntilDisconnect(self.request):
                    channel = Channel(send)
                    await channel.write(RETRY)
                    await self.stream.run(channel)
            except ClientDisconnected:
                return
            except TaskgateError as exc:  # the store failed: the client resumes later
                log.warning(
                    "event stream %s ended: %s (request %s)",
                    self.request.path,
                    exc,
                    self.request.request_id,
                )
            except Exception:
                log.exception(
                    "event stream %s failed (request %s)",
                    self.request.path,
                    self.request.request_id,
                )
            await send({"type": _BODY, "body": b"", "more_body": False})
        finally:
            self.stream.close()
