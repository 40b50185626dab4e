"""The storage contract: every backend must pass every test in this folder.

Each test runs once per entry of `BACKENDS`, through `TaskService`, so what is checked is
the behaviour a user sees, on each store. A new backend is one more line there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from postgres import postgres_database, postgres_databases
from taskgate.service import TaskService
from taskgate.storage import connect

from .helpers import Backend, Clock, make_app

__all__ = ["postgres_database", "postgres_databases"]  # fixtures, shared with acceptance

BACKENDS = [
    Backend("memory", lambda tmp: "memory://", shared=False),
    Backend("sqlite", lambda tmp: f"sqlite:///{tmp / 'tasks.db'}", shared=True),
    # a fresh database per test, made by the `postgres_database` fixture (url is unused)
    Backend("postgres", lambda tmp: "", shared=True, marks=(pytest.mark.postgres,)),
]


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    result: Backend = request.param
    return result


@pytest.fixture
def url(backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend.name == "postgres":
        database: str = request.getfixturevalue("postgres_database")
        return database
    return backend.url(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(url: str, clock: Clock) -> AsyncIterator[TaskService]:
    svc = TaskService(connect(url), make_app(), clock=clock)
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def peer(
    backend: Backend, url: str, clock: Clock, service: TaskService
) -> AsyncIterator[TaskService]:
    """Another process on the same store: its own connector where the backend has
    separate connections, else the same service."""
    if not backend.shared:
        yield service
        return
    svc = TaskService(connect(url), make_app(), clock=clock)
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()
