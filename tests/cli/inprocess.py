"""The real ASGI app and a worker, on an event loop in a thread, behind a sync transport.

The CLI is synchronous (click) and its SDK `Client` takes a sync httpx transport, while
the app is ASGI: `Bridge` hands each request to `httpx.ASGITransport` on the
background loop and waits for the answer. `httpx.ASGITransport` reads a whole response
before returning it, so a followed log arrives when its task ends (which is all the
tests need). No lifespan runs: the service is opened and closed here, as in
tests/http/conftest.py.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from taskgate.app import App
from taskgate.http import create_app
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

BASE = "http://cli.test"
WAIT = 60.0


class Bridge(httpx.BaseTransport):
    """A sync transport that runs each request on ``loop`` through the ASGI app."""

    def __init__(self, loop: asyncio.AbstractEventLoop, api: Any) -> None:
        self._loop = loop
        self._inner = httpx.ASGITransport(app=api)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(send(), self._loop).result(
            WAIT * 2
        )
        return httpx.Response(status, headers=headers, content=content, request=request)


class InProcessServer:
    """A service on ``memory://``, its ASGI app (API keys required) and one worker, on a
    background loop. ``keys`` holds a token per role: ``admin``, ``write`` and ``read``
    of tenant ``default``, and ``other`` (write) of tenant ``acme``."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.service: TaskService | None = None
        self._worker: Worker | None = None
        self._job: asyncio.Task[None] | None = None
        self.transport: Bridge | None = None
        self.keys: dict[str, str] = {}

    def start(self) -> InProcessServer:
        self._thread.start()
        self.call(self._open())
        return self

    def stop(self) -> None:
        try:
            self.call(self._close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            self.loop.close()

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    async def _open(self) -> None:
        self.service = TaskService(connect("memory://"), self.app)
        await self.service.open()
        api = create_app(self.service, self.settings)
        assert api.keys is not None, "the CLI tests run with auth on"
        for name, tenant, user, role in (
            ("admin", "default", "alice", "admin"),
            ("write", "default", "bob", "write"),
            ("read", "default", "carol", "read"),
            ("other", "acme", "dave", "write"),
        ):
            new = await api.keys.create(
                tenant=tenant, user=user, role=role, user_id=len(self.keys) + 1
            )
            self.keys[name] = new.token
        self.transport = Bridge(self.loop, api)
        self._worker = Worker(self.service, self.settings)
        self._job = asyncio.create_task(self._worker.run())
        await asyncio.wait_for(self._worker.ready.wait(), WAIT)

    async def _close(self) -> None:
        assert self.service is not None and self._worker is not None and self._job is not None
        self._worker.request_stop(immediate=True)
        await asyncio.wait_for(self._job, WAIT)
        await self.service.close()
