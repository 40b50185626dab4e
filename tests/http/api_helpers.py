"""What the HTTP tests share besides fixtures: the test App, submitting, playing the
worker, checking problem documents, calling the ASGI app by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pydantic

from taskgate import App, Context
from taskgate.http.problems import PROBLEM_BASE
from taskgate.model import State, Task
from taskgate.service import TaskService

BASE = "http://testserver"
MAX_BODY = 2048
MAX_WAIT = 5.0
RETRY_AFTER = 2
CHEAP_HASH = 2**4
"""scrypt's cost for the tests' keys: the check runs as in production, in microseconds."""


def bearer(key: str) -> dict[str, str]:
    """The header that sends an API key."""
    return {"Authorization": f"Bearer {key}"}


class Disk(pydantic.BaseModel):
    size_gb: int = pydantic.Field(ge=1)
    label: str | None = None


class VolumeSpec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    disks: list[Disk] = []


def make_app() -> App:
    app = App("http-tests")

    @app.operation("echo", object_id="name")
    def echo(ctx: Context, name: str, count: int = 1) -> dict[str, Any]:
        """Says the name back."""
        return {"name": name, "count": count}

    @app.operation("add", timeout=30, max_attempts=3, priority=5)
    async def add(ctx: Context, a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @app.operation("noop")
    def noop(ctx: Context) -> None:
        """Does nothing."""

    @app.operation("create.volume")
    def create_volume(ctx: Context, spec: VolumeSpec) -> None:
        """Takes one pydantic model: its schema has $defs."""

    return app


async def submit(
    client: httpx.AsyncClient, type: str = "noop", params: Any = None, **query: Any
) -> dict[str, Any]:
    """Submit through the API; the task JSON of the 202."""
    response = await client.post(f"/v1/operations/{type}", json=params or {}, params=query)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def claim(service: TaskService, task_id: str) -> Task:
    """Play the worker: claim the task."""
    claimed = [t for t in await service.claim("worker-1", 100, 30.0) if t.id == task_id]
    assert claimed, "the task was not claimed"
    return claimed[0]


async def finish(
    service: TaskService, task_id: str, state: State = State.SUCCEEDED, **outcome: Any
) -> Task:
    """Play the worker: claim the task and end it."""
    done = await service.finish(await claim(service, task_id), state, **outcome)
    assert done is not None
    return done


async def follow(client: httpx.AsyncClient, task_id: str, wait: float = 5.0) -> list[str]:
    """Long-poll the task as a client would, until it ends; the states seen."""
    seen: list[str] = []
    etag: str | None = None
    for _ in range(20):
        headers = {} if etag is None else {"If-None-Match": etag}
        response = await client.get(f"/v1/tasks/{task_id}?wait={wait}", headers=headers)
        assert response.status_code in (200, 304), response.text
        etag = response.headers["etag"]
        if response.status_code == 200:
            seen.append(response.json()["state"])
            if "retry-after" not in response.headers:  # ended
                return seen
    raise AssertionError(f"the task did not end: {seen}")


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """Check ``response`` is a problem document with ``status`` (and type); return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    for key in ("type", "title", "status", "detail", "instance"):
        assert key in doc, f"problem lacks {key}: {doc}"
    assert doc["status"] == status
    assert isinstance(doc["detail"], str) and doc["detail"]
    assert response.headers["x-request-id"] == doc["request_id"]
    if slug is not None:
        assert doc["type"] == PROBLEM_BASE + slug, doc
    return doc


def fields(doc: dict[str, Any]) -> set[str]:
    """The field names a 422 problem's ``errors`` lists."""
    return {e["field"] for e in doc["errors"]}


def scope(
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    query: bytes = b"",
    key: str | None = None,
) -> dict[str, Any]:
    """An ASGI HTTP scope, for calling the app by hand (sending the API ``key``)."""
    if key is not None:
        headers = [*headers, (b"authorization", f"Bearer {key}".encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("127.0.0.1", 8006),
        "client": ("127.0.0.1", 50000),
    }
