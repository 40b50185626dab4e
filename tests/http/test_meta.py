"""The service's own resources, the docs page, and the ASGI protocol itself (lifespan,
disconnects, root paths, raw headers)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from api_helpers import BASE, make_app, problem, scope, submit

from taskgate.errors import StorageUnavailable
from taskgate.http import Application, create_app
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

# -- index, health, readiness -------------------------------------------------------------


async def test_index_points_to_the_docs_and_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs" and body["api"] == "/v1"
    assert body["openapi"] == "/openapi.json"
    assert (await client.get(body["docs"])).status_code == 200
    v1 = (await client.get(body["api"])).json()
    assert v1 == {"tasks": "/v1/tasks", "operations": "/v1/operations"}
    for url in v1.values():
        assert (await client.get(url)).status_code == 200


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz(
    client: httpx.AsyncClient, service: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}

    async def down() -> int:
        raise StorageUnavailable("nope")

    monkeypatch.setattr(service.connector, "schema_version", down)
    response = await client.get("/readyz")
    doc = problem(response, 503, "not-ready")
    assert "StorageUnavailable" in doc["detail"]
    assert response.headers["retry-after"]


async def test_readyz_when_the_store_hangs(
    client: httpx.AsyncClient, service: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hang() -> int:
        await asyncio.sleep(3600)
        return 0

    monkeypatch.setattr(service.connector, "schema_version", hang)
    monkeypatch.setattr("taskgate.http.meta.READY_TIMEOUT", 0.01)
    doc = problem(await client.get("/readyz"), 503)
    assert "did not answer" in doc["detail"]


async def test_readyz_while_shutting_down(client: httpx.AsyncClient, api: Application) -> None:
    api.closing = True
    doc = problem(await client.get("/readyz"), 503)
    assert "shutting down" in doc["detail"]
    assert (await client.get("/healthz")).status_code == 200  # still alive


async def test_operations_list_each_with_its_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/operations")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [op["name"] for op in items] == ["add", "create.volume", "echo", "noop"]
    add = items[0]
    assert add == {
        "name": "add",
        "description": "Adds two integers.",
        "parameters": add["parameters"],
        "timeout": 30,
        "max_attempts": 3,
        "retry_on_worker_loss": False,
        "isolation": "async",
        "priority": 5,
        "exclusive": [],
        "shared": [],
        "limits": [],
        "archive_after": 86400.0,
        "purge_after": 30 * 86400.0,
    }
    assert add["parameters"]["properties"].keys() == {"a", "b"}
    assert add["parameters"]["required"] == ["a", "b"]
    echo = items[2]
    assert echo["isolation"] == "thread" and echo["timeout"] is None
    assert echo["parameters"]["properties"]["count"]["default"] == 1
    volume = items[1]
    assert "Disk" in volume["parameters"]["$defs"]  # self-contained JSON Schema


# -- docs page -----------------------------------------------------------------------------


async def test_docs_page_works_offline(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<script>" in page and "/*SCRIPT*/" not in page and "/*STYLE*/" not in page
    assert 'fetch("openapi.json")' in page
    # nothing is loaded from elsewhere: no external scripts, styles, fonts or images
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert "cdn" not in page.lower()


# -- lifespan --------------------------------------------------------------------------------


class Lifespan:
    """Drives an app's ASGI lifespan as a server would."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        await self.outbox.put(message)

    async def step(self, message: str) -> dict[str, Any]:
        if self.task is None:
            self.task = asyncio.create_task(
                self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, self.receive, self.send)
            )
        await self.inbox.put({"type": message})
        return await self.outbox.get()


async def test_lifespan_opens_and_closes_the_service(settings: Settings) -> None:
    service = TaskService(connect("memory://"), make_app())
    api = create_app(service, settings.model_copy(update={"auth": False}))
    events: list[str] = []

    async def started() -> None:
        events.append("started")

    async def stopping() -> None:
        events.append("stopping")

    api.on_startup.append(started)
    api.on_shutdown.append(stopping)
    lifespan = Lifespan(api)
    assert (await lifespan.step("lifespan.startup")) == {"type": "lifespan.startup.complete"}
    assert events == ["started"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        task = await submit(c, "noop")
        assert (await c.get("/readyz")).status_code == 200
        shutdown = await lifespan.step("lifespan.shutdown")
        assert shutdown == {"type": "lifespan.shutdown.complete"}
        assert events == ["started", "stopping"]
        problem(await c.get("/readyz"), 503)
        problem(await c.post("/v1/operations/noop"), 503)  # the store is closed
    assert lifespan.task is not None
    await lifespan.task
    assert task["state"] == "queued"


async def test_lifespan_reports_a_failed_startup(settings: Settings) -> None:
    connector = connect("memory://")

    async def fail() -> None:
        raise StorageUnavailable("cannot open the store")

    connector.open = fail  # type: ignore[method-assign]
    api = create_app(TaskService(connector, make_app()), settings)
    lifespan = Lifespan(api)
    answer = await lifespan.step("lifespan.startup")
    assert answer["type"] == "lifespan.startup.failed"
    assert "cannot open the store" in answer["message"]
    assert lifespan.task is not None
    await lifespan.task


# -- raw ASGI --------------------------------------------------------------------------------


async def call(api: Application, s: dict[str, Any], *messages: dict[str, Any]) -> list[Any]:
    """Run one request with ``messages`` as the client's; the messages the app sent."""
    inbox = list(messages)
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await api(s, receive, send)
    done.set()
    return sent


def status_of(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], bytes]:
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


async def test_a_client_that_leaves_a_long_poll_frees_it(
    api: Application, service: TaskService, api_key: str
) -> None:
    task = await service.submit("noop", {})
    sent = await call(
        api,
        scope("GET", f"/v1/tasks/{task.id}", query=b"wait=5", key=api_key),
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    )
    assert sent == []  # nobody to answer
    assert len(service.feed) == 0  # the wait was abandoned, not left to time out


async def test_a_bad_content_length_is_400(api: Application, api_key: str) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"12x")]
    sent = await call(
        api,
        scope("POST", "/v1/tasks", headers=headers, key=api_key),
        {"type": "http.request", "body": b'{"type": "noop"}', "more_body": False},
    )
    status, _, body = status_of(sent)
    assert status == 400 and b"Content-Length" in body


async def test_a_body_longer_than_declared_is_still_counted(api: Application, api_key: str) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    chunk = b"a" * 1024
    sent = await call(
        api,
        scope("POST", "/v1/tasks", headers=headers, key=api_key),
        *[{"type": "http.request", "body": chunk, "more_body": True} for _ in range(3)],
        {"type": "http.request", "body": b"", "more_body": False},
    )
    assert status_of(sent)[0] == 413


async def test_a_client_that_leaves_while_sending_gets_nothing(
    api: Application, api_key: str
) -> None:
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    sent = await call(
        api,
        scope("POST", "/v1/tasks", headers=headers, key=api_key),
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    )
    assert sent == []


async def test_responses_carry_content_length(
    api: Application, service: TaskService, api_key: str
) -> None:
    task = await service.submit("noop", {})
    read = scope("GET", f"/v1/tasks/{task.id}", key=api_key)
    status, headers, body = status_of(await call(api, read))
    assert status == 200
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"x-request-id"]
    await service.cancel(task.id)
    await service.delete(task.id)
    status, headers, _ = status_of(await call(api, read))
    assert status == 404 and b"content-length" in headers


async def test_the_root_path_prefixes_urls(api: Application, api_key: str) -> None:
    s = scope("POST", "/api/v1/operations/noop", key=api_key)
    s["root_path"] = "/api"
    status, headers, _ = status_of(await call(api, s, {"type": "http.request", "body": b""}))
    assert status == 202
    assert headers[b"location"].startswith(b"/api/v1/tasks/")
    assert headers[b"operation-location"].startswith(b"http://testserver/api/v1/tasks/")
    s = scope("GET", "/api/openapi.json")
    s["root_path"] = "/api"
    status, _, body = status_of(await call(api, s))
    assert status == 200 and b'"servers":[{"url":"/api"}]' in body
    s = scope("GET", "/apix/healthz")  # not under the root path
    s["root_path"] = "/api"
    assert status_of(await call(api, s))[0] == 404
    s = scope("GET", "/healthz")  # a server that leaves the root path out of path
    s["root_path"] = "/api"
    assert status_of(await call(api, s))[0] == 200


async def test_websockets_are_refused(api: Application) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await api({"type": "websocket", "path": "/", "headers": []}, receive, send)
    assert sent[0]["type"] == "websocket.close"
