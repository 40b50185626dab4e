"""Bad input to every route of the three seed dialects of Dialects II (Pulp, CloudCoin,
Redis Cloud): odd ids, paths, methods, bodies and credentials are answered in the
dialect's own error shape, with a 4xx, never a 500."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import create_app
from taskgate.service import TaskService
from taskgate.settings import Settings

BASE = "http://testserver"
IDS = ["x", "0" * 40, "01900000-0000-7000-8000-000000000000", "%00", "..", "a" * 300, "é"]
BODIES: list[dict[str, Any]] = [
    {},
    {"content": b"{", "headers": {"content-type": "application/json"}},
    {"content": b"[1]", "headers": {"content-type": "application/json"}},
    {"content": b"null", "headers": {"content-type": "application/json"}},
    {"content": b"x", "headers": {"content-type": "text/plain"}},
    {"json": {"name": 5, "folder": [], "repo_ids": "a", "criteria": {"filters": 1}}},
]
ROUTES = [
    "/api/v1/tasks/{id}",
    "/get-task-status/{id}",
    "/api/v1/backup",
    "/api/v1/join",
    "/rediscloud/v1/tasks",
    "/rediscloud/v1/tasks/{id}",
    "/rediscloud/v1/subscriptions",
    "/rediscloud/v1/subscriptions/{id}",
    "/pulp/api/tasks/{id}/",
    "/pulp/api/v1/tasks/{id}/cancel/",
    "/pulp/api/tasks/{id}/snapshot/",
    "/pulp/api/v2/tasks/{id}/",
    "/pulp/api/v2/tasks/search/",
    "/pulp/api/v2/task_groups/{id}/state_summary/",
    "/pulp/api/v2/repositories/{id}/actions/sync/",
    "/pulp/api/v2/repositories/actions/sync/",
]


@pytest.fixture
async def clients(service: TaskService, keys: KeyService) -> AsyncIterator[list[httpx.AsyncClient]]:
    api = create_app(service, Settings(dialects=("pulp", "cloudcoin", "rediscloud")))
    key = (await keys.create(tenant="t", user="u", role="admin")).token
    credentials = [
        {},
        {"Authorization": f"Bearer {key}", "x-api-key": "t", "x-api-secret-key": key},
        {"Authorization": "Basic Og==", "x-api-key": "t", "x-api-secret-key": "tgk_x"},
    ]
    made = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE, headers=h)
        for h in credentials
    ]
    yield made
    for client in made:
        await client.aclose()


async def test_nothing_is_a_500(clients: list[httpx.AsyncClient]) -> None:
    seen = 0
    for client, route, raw_id, method in itertools.product(
        clients, ROUTES, IDS, ("GET", "POST", "DELETE", "PUT")
    ):
        path = route.replace("{id}", raw_id)
        for body in BODIES if method in ("POST", "PUT") else [{}]:
            response = await client.request(method, path, **body)
            seen += 1
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                assert "json" in response.headers["content-type"], (
                    path
                )  # ".." may leave the dialect
                response.json()
    assert seen > 1000
