"""An SSE client that drives the ASGI app by hand.

`httpx.ASGITransport` hands over a response only once the app has finished it, and
tells the app of a disconnect only then: fine for a stream that ends by itself, useless
for one that does not. `SSEStream` runs the app in a task, parses events as the body
arrives, and disconnects when the test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from api_helpers import scope

GUARD = 10.0
"""A read that should succeed at once fails the test after this, instead of hanging."""


@dataclass
class Event:
    """One event, or one comment (``kind == "comment"``)."""

    kind: str
    data: str = ""
    id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.data)


def parse_block(block: str) -> Event:
    lines = block.split("\n")
    if all(line.startswith(":") for line in lines):
        return Event("comment", "\n".join(line[1:].strip() for line in lines))
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
    return Event(fields.get("event", "message"), "\n".join(data), fields.get("id"), fields)


class SSEStream:
    """``async with SSEStream(app, "/v1/events") as s: event = await s.next()``."""

    def __init__(
        self,
        app: Any,
        path: str,
        *,
        query: bytes = b"",
        headers: Sequence[tuple[bytes, bytes]] = (),
        key: str | None = None,
        method: str = "GET",
    ) -> None:
        self.app = app
        self.scope = scope(method, path, headers=headers, query=query, key=key)
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.complete = False
        self._buffer = ""
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._started = asyncio.Event()
        self._leave = asyncio.Event()
        self._sent_request = False
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self._sent_request:
            self._sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._leave.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
            self._started.set()
            return
        chunk: bytes = message.get("body", b"")
        self.body += chunk
        if self.status == 200:
            self._buffer += chunk.decode()
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                self._events.put_nowait(parse_block(block))
        if not message.get("more_body", False):
            self.complete = True

    async def __aenter__(self) -> SSEStream:
        self._task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        await asyncio.wait_for(self._started.wait(), GUARD)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def disconnect(self) -> None:
        """Leave; return once the app has finished the request."""
        self._leave.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, GUARD)

    async def finished(self) -> None:
        """Wait for the app to end the response by itself."""
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), GUARD)
        assert self.complete

    def problem(self) -> dict[str, Any]:
        assert self.status is not None and self.status >= 400, self.status
        assert self.headers[b"content-type"] == b"application/problem+json"
        result: dict[str, Any] = orjson.loads(self.body)
        return result

    async def next(self, *, comments: bool = False) -> Event:
        """The next event (comments skipped unless asked for)."""
        while True:
            event = await asyncio.wait_for(self._events.get(), GUARD)
            if event.kind == "retry" or "retry" in event.fields:
                continue
            if event.kind == "comment" and not comments:
                continue
            return event

    async def take(self, count: int) -> list[Event]:
        return [await self.next() for _ in range(count)]

    def pending(self) -> list[Event]:
        """The events received and not read yet (comments and retry dropped)."""
        found: list[Event] = []
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                event = self._events.get_nowait()
                if event.kind != "comment" and "retry" not in event.fields:
                    found.append(event)
        return found
