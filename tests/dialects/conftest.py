"""What the dialects' in-process tests share: the example app on the memory backend,
and an API-key service with a cheap hash (the real scrypt cost is not the subject)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskgate.auth.service import KeyService
from taskgate.example import app as example_app
from taskgate.service import TaskService
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
