"""Fixtures for the HTTP API tests: a service on a store, the ASGI app, a client.

`httpx.ASGITransport` does not run the ASGI lifespan protocol, so the service is
opened here, around the test, instead of by the app's startup. This is the pattern for
driving `create_app` in-process:

    service = TaskService(connect("memory://"), app)
    await service.open()                      # what lifespan startup would do
    api = create_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=...):
        ...
    await service.close()                     # what lifespan shutdown would do
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_helpers import BASE, CHEAP_HASH, MAX_BODY, MAX_WAIT, RETRY_AFTER, bearer, make_app

from taskgate.auth import KeyService
from taskgate.http import Application, create_app
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect


@pytest.fixture
def url() -> str:
    """The store the tests run on (``test_sqlite.py`` overrides it)."""
    return "memory://"


@pytest.fixture
def settings() -> Settings:
    return Settings(max_body_size=MAX_BODY, max_wait=MAX_WAIT, retry_after=RETRY_AFTER)


@pytest.fixture
async def service(url: str) -> AsyncIterator[TaskService]:
    svc = TaskService(connect(url), make_app())
    await svc.open()  # httpx.ASGITransport runs no lifespan: open it here
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def api(service: TaskService, settings: Settings) -> Application:
    return create_app(service, settings)


@pytest.fixture
async def keys(service: TaskService) -> AsyncIterator[KeyService]:
    """Makes keys in the service's store (with a cheap hash: the check is the real one)."""
    key_service = KeyService(service.connector, hash_cost=CHEAP_HASH)
    yield key_service
    key_service.close()


@pytest.fixture
async def api_key(keys: KeyService) -> str:
    """The key `client` sends: role ``write`` in tenant ``default``, user ``tester`` (7)."""
    new = await keys.create(tenant="default", user="tester", user_id=7, role="write")
    return new.token


@pytest.fixture
async def client(api: Application, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=bearer(api_key)) as c:
        yield c
