"""Never a 500 for bad input: many random (seeded) requests mixing valid and broken
paths, methods, query parameters, bodies and headers, on both stores."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
from api_helpers import submit

QUERY_NAMES = [
    "state", "type", "label", "limit", "cursor", "since", "until", "object_id", "wait",
    "start", "priority", "delay", "timeout", "max_attempts", "scheduled_at", "x",
]  # fmt: skip
QUERY_VALUES = [
    "", "-1", "0", "1", "1e308", "nan", "a=b", "=", "%", "%ff", "queued",
    "2025-01-01T00:00:00Z", "2025-01-01", "\u00e9", "9" * 30, ",", "a,b", "\U0001f642", "null",
]  # fmt: skip
BODIES = [
    b"",
    b"{}",
    b"[]",
    b"null",
    b'{"type":"echo","params":{"name":1}}',
    b'{"name":"x","count":1e400}',
    b'{"a":' * 50,
    b'{"type":"add","params":{"a":99999999999999999999999,"b":1}}',
    b'{"name":"v","disks":[{"size_gb":"1"}]}',
    b'{"type":"echo","labels":{"":""}}',
    b'"\\ud800"',
    b'{"type":"echo","params":{"name":"\\u0000"}}',
    b"\xff" * 10,
    b"x" * 3000,
]


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 't.db'}"


async def test_random_requests_never_get_a_500(client: httpx.AsyncClient) -> None:
    rng = random.Random(20250101)
    task = await submit(client, "echo", {"name": "x"})
    tail = task["id"][-12:]
    paths = [
        "/v1/tasks",
        f"/v1/tasks/{task['id']}",
        f"/v1/tasks/{task['id']}/log",
        f"/v1/tasks/{task['id']}/cancel",
        "/v1/tasks/not-an-id",
        "/v1/operations/echo",
        "/v1/operations/add",
        "/v1/operations/create.volume",
        "/v1/operations/nope",
        "/readyz",
        "/",
    ]
    statuses: set[int] = set()
    for _ in range(1500):
        method = rng.choice(["GET", "POST", "DELETE", "PUT"])
        path = rng.choice(paths)
        query = [
            (rng.choice(QUERY_NAMES), rng.choice(QUERY_VALUES)) for _ in range(rng.randint(0, 3))
        ]
        if rng.random() < 0.1:
            query.append(("wait", "0.001"))
        headers: dict[str, str | bytes] = {
            "content-type": rng.choice(["application/json", "text/plain", "application/x+json"])
        }
        if rng.random() < 0.2:
            headers["if-none-match"] = rng.choice(
                ['"x"', "*", "W/", f'"{tail}.abc"', f'"{tail}.{"9" * 30}"', f'"{tail}.1"']
            )
        if rng.random() < 0.2:
            headers["idempotency-key"] = rng.choice([b"k", "\u00e9".encode("latin-1"), "a" * 300])
        response = await client.request(
            method, path, params=query, content=rng.choice(BODIES), headers=headers
        )
        statuses.add(response.status_code)
        assert response.status_code < 500, (method, path, query, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert {200, 202, 400, 404, 405, 413, 415, 422} <= statuses
