"""Fixtures of the worker runtime tests: a store in a tmp_path SQLite file (or memory),
a service over it, and workers run as tasks on the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskgate.app import App
from taskgate.model import State, Task
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect
from taskgate.storage.connector import Connector, Params, Step

from . import handlers

WAIT = 60.0
"""Generous: nothing here asserts on timing; this only ends a hung test."""


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'tasks.db'}",
        "concurrency": 4,
        "claim_batch": 4,
        "lease": 5.0,
        "heartbeat_interval": 0.2,
        "poll_interval": 0.5,
        "reaper_interval": 0.2,
        "leader_interval": 0.05,
        "cancel_grace": 0.3,
        "shutdown_grace": 5.0,
        "flush_interval": 0.02,
    }
    values.update(overrides)
    return Settings(**values)


class CountingConnector:
    """Wraps a connector and counts the writes issued through it, by query name."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.writes: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def count(self, query: str) -> int:
        return self.writes.get(query, 0)

    async def execute(
        self, query: str, params: Params, *, notify: str | None = None, payload: str = ""
    ) -> list[dict[str, Any]]:
        self.writes[query] = self.writes.get(query, 0) + 1
        return await self.inner.execute(query, params, notify=notify, payload=payload)

    async def execute_batch(
        self, steps: Any, *, notify: str | None = None, payload: str = ""
    ) -> list[list[dict[str, Any]]]:
        for step in steps:
            assert isinstance(step, Step)
            self.writes[step.query] = self.writes.get(step.query, 0) + 1
        return await self.inner.execute_batch(steps, notify=notify, payload=payload)


@pytest.fixture(autouse=True)
def _reset_gates() -> Iterator[None]:
    yield
    # let any handler still blocked on a gate (an abandoned thread) finish
    for key, event in list(handlers.GATES.items()):
        if key.endswith(".release"):
            event.set()
    handlers.GATES.clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app() -> App:
    return handlers.app


async def open_service(
    url: str, app: App, *, counting: bool = False, clock: Callable[[], float] | None = None
) -> TaskService:
    connector: Any = connect(url)
    if counting:
        connector = CountingConnector(connector)
    service = (
        TaskService(connector, app) if clock is None else TaskService(connector, app, clock=clock)
    )
    await service.open()
    return service


@pytest.fixture
async def service(settings: Settings, app: App) -> AsyncIterator[TaskService]:
    svc = await open_service(settings.database, app, counting=True)
    yield svc
    await svc.close()


@contextlib.asynccontextmanager
async def running(
    service: TaskService, settings: Settings, *, worker_id: str | None = None
) -> AsyncIterator[Worker]:
    """A worker running as a task; stopped (gracefully) and awaited at the end."""
    worker = Worker(service, settings, worker_id=worker_id)
    job = asyncio.create_task(worker.run())
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({job, ready}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    if job.done():
        ready.cancel()
        job.result()  # raises what went wrong
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(job, WAIT)


async def wait_state(service: TaskService, task_id: str, *states: State) -> Task:
    """The task once it is in one of ``states`` (terminal states by default)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        task = await service.get(task_id)
        if (task.state in states) if states else task.terminal:
            return task
        if loop.time() > deadline:
            raise AssertionError(f"task {task_id} stayed {task.state}, wanted {states}")
        await service.wait(task_id, 0.2, seen_version=task.version)


async def wait_for(predicate: Callable[[], bool], what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_event(key: str) -> None:
    """Wait (without blocking the loop) until a handler sets ``GATES[key]``."""
    event = handlers.gate(key)
    if not await asyncio.to_thread(event.wait, WAIT):
        raise AssertionError(f"gate {key} never opened")


async def log_texts(service: TaskService, task_id: str) -> list[str]:
    page = await service.log(task_id, limit=5000)
    return [line.t for line in page.lines]
