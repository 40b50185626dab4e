"""What the dialects' in-process tests share: the example app on the memory backend,
an API-key service with a cheap hash (the real scrypt cost is not the subject), and
several API processes on one store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from taskgate.auth.service import KeyService
from taskgate.example import app as example_app
from taskgate.http import Application, create_app
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

CHEAP_HASH = 2**4


@pytest.fixture
async def service() -> AsyncIterator[TaskService]:
    svc = TaskService(connect("memory://"), example_app)
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def keys(service: TaskService) -> AsyncIterator[KeyService]:
    key_service = KeyService(service.connector, hash_cost=CHEAP_HASH)
    yield key_service
    key_service.close()


ApiNodes = Callable[..., AbstractAsyncContextManager[list[Application]]]
"""``api_nodes(*node_names)``: one Proxmox-dialect API per name, all on one store."""


@pytest.fixture
def api_nodes(tmp_path: Path) -> ApiNodes:
    """API processes on one SQLite file, each with its own connector (as separate
    processes would have) and the given node name (None: the host name)."""

    @asynccontextmanager
    async def make(*names: str | None) -> AsyncIterator[list[Application]]:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        services = [TaskService(connect(url), example_app, node=name) for name in names]
        for svc in services:
            await svc.open()
        try:
            yield [create_app(svc, Settings(dialects=("proxmox",))) for svc in services]
        finally:
            for svc in services:
                await svc.close()

    return make
