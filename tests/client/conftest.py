"""Fixtures of the SDK tests: the real ASGI app and a real worker in process, behind the
async client (`httpx.ASGITransport`) and the sync client (`LoopThread`'s transport).

`httpx.ASGITransport` runs no lifespan, so the service is opened here, as in
tests/http/conftest.py. It also reads a whole response before returning it, so a
followed log arrives in one piece when its task has ended, and ``/v1/events`` (which
never ends) can only be tested against a real server (test_server.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from taskgate.client import AsyncClient, Client, Retry
from taskgate.http import Application, create_app
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

from .app import app as sdk_app

BASE = "http://sdk.test"
WAIT = 60.0
"""Generous: nothing here asserts on timing; this only ends a hung test."""
FAST_RETRY = Retry(attempts=3, backoff=0.001, max_backoff=0.01)

T = TypeVar("T")


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": "memory://",
        "auth": False,
        "concurrency": 8,
        "claim_batch": 8,
        "lease": 5.0,
        "heartbeat_interval": 0.2,
        "poll_interval": 0.5,
        "reaper_interval": 0.2,
        "cancel_grace": 0.3,
        "shutdown_grace": 0.5,
        "flush_interval": 0.02,
        "max_wait": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


async def open_stack(
    settings: Settings,
) -> tuple[TaskService, Application, Worker, asyncio.Task[None]]:
    """The service (opened), its ASGI app, and a running worker."""
    service = TaskService(connect(settings.database), sdk_app)
    await service.open()  # httpx.ASGITransport runs no lifespan: open it here
    api = create_app(service, settings)
    worker = Worker(service, settings)
    job = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), WAIT)
    return service, api, worker, job


async def close_stack(service: TaskService, worker: Worker, job: asyncio.Task[None]) -> None:
    worker.request_stop(immediate=True)
    await asyncio.wait_for(job, WAIT)
    await service.close()


class Stack:
    """What the async tests get: the service (to look behind the API) and the app."""

    def __init__(self, service: TaskService, api: Application) -> None:
        self.service = service
        self.api = api


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    service, api, worker, job = await open_stack(settings)
    try:
        yield Stack(service, api)
    finally:
        await close_stack(service, worker, job)


@pytest.fixture
async def aclient(stack: Stack) -> AsyncIterator[AsyncClient]:
    transport = httpx.ASGITransport(app=stack.api)
    async with AsyncClient(BASE, transport=transport, retry=FAST_RETRY) as client:
        yield client


# -- the sync client: the app on a loop in a thread --------------------------------------


class LoopThread(httpx.BaseTransport):
    """The service, app and worker on an event loop in a background thread, and a sync
    transport that hands each request to `httpx.ASGITransport` on that loop."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.service, self.api, self._worker, self._job = self.call(open_stack(settings))
        self._inner = httpx.ASGITransport(app=self.api)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the app's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.read()
        )

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self.call(send())
        return httpx.Response(status, headers=headers, content=content, request=request)

    def stop(self) -> None:
        try:
            self.call(close_stack(self.service, self._worker, self._job))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            self.loop.close()


@pytest.fixture
def loop_thread(settings: Settings) -> Iterator[LoopThread]:
    thread = LoopThread(settings)
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def client(loop_thread: LoopThread) -> Iterator[Client]:
    with Client(BASE, transport=loop_thread, retry=FAST_RETRY) as c:
        yield c
