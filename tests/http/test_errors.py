"""The bad-input matrix: every malformed request gets a 4xx problem document, never a
500; server faults are 500/503 problems that leak nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import BASE, MAX_BODY, RETRY_AFTER, problem

from taskgate.errors import StorageError, StorageUnavailable
from taskgate.http import HTTPProblem, Principal, create_app
from taskgate.http.request import Request
from taskgate.service import TaskService
from taskgate.settings import Settings

SUBMITS = ["/v1/operations/noop", "/v1/tasks"]


@pytest.mark.parametrize("path", SUBMITS)
@pytest.mark.parametrize("body", [b"{", b'{"a": }', b"nul", b"\xff\xfe", b'{"a": 1}x', b"[" * 2000])
async def test_malformed_json_is_400(client: httpx.AsyncClient, path: str, body: bytes) -> None:
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    doc = problem(response, 400, "malformed-json")
    assert "JSON" in doc["detail"]


@pytest.mark.parametrize("path", SUBMITS)
@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "an array"), (b'"x"', "a string"), (b"null", "null"), (b"3", "a number")],
)
async def test_a_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, path: str, body: bytes, kind: str
) -> None:
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    doc = problem(response, 422, "invalid-body")
    assert f"must be a JSON object, not {kind}" in doc["detail"]
    assert doc["errors"] == [{"field": None, "message": doc["detail"]}]


async def test_submit_task_needs_a_body(client: httpx.AsyncClient) -> None:
    doc = problem(await client.post("/v1/tasks"), 422, "invalid-body")
    assert "required" in doc["detail"]


@pytest.mark.parametrize("path", SUBMITS)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "json",
        None,
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = await client.post(path, content=b'{"type": "noop"}', headers=headers)
    problem(response, 415)
    assert response.headers["accept-post"] == "application/json"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
     "application/vnd.example+json", "application/merge-patch+json"],
)  # fmt: skip
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post(
        "/v1/tasks", content=b'{"type": "noop"}', headers={"content-type": content_type}
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", SUBMITS)
async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient, path: str) -> None:
    body = b'{"type": "noop", "params": {"x": "' + b"a" * MAX_BODY + b'"}}'
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    doc = problem(response, 413, "body-too-large")
    assert doc["limit"] == MAX_BODY


@pytest.mark.parametrize("path", SUBMITS)
async def test_a_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient, path: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "noop", "params": {"x": "'
        for _ in range(MAX_BODY // 100 + 1):
            yield b"a" * 100
        yield b'"}}'

    response = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # really streamed
    problem(response, 413, "body-too-large")


async def test_a_chunked_body_under_the_limit_is_fine(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": '
        yield b'"echo", "params": {"name": "x"}}'

    response = await client.post(
        "/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["params"]["name"] == "x"


async def test_unknown_routes_are_404(client: httpx.AsyncClient) -> None:
    for path in ["/nope", "/v1/tasks/", "/v1/task", "/v2/tasks", "/docs/x", "/v1/tasks/a/b"]:
        doc = problem(await client.get(path), 404)
        assert doc["type"] == "about:blank" and doc["title"] == "Not Found"
        assert doc["instance"] == path


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/tasks", "DELETE, GET, HEAD, POST"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("PATCH", "/v1/tasks/01900000-0000-7000-8000-000000000000", "DELETE, GET, HEAD"),
        ("GET", "/v1/tasks/01900000-0000-7000-8000-000000000000/cancel", "POST"),
        ("GET", "/v1/operations/noop", "POST"),
        ("HEAD", "/v1/operations/noop", "POST"),
        ("OPTIONS", "/readyz", "GET, HEAD"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    if method != "HEAD":
        doc = problem(response, 405)
        assert allow in doc["detail"]


async def test_malformed_query_string_is_400(client: httpx.AsyncClient) -> None:
    problem(await client.get("/v1/tasks?state=%ff"), 400)
    too_many = "&".join(f"label=k{i}=v" for i in range(201))
    problem(await client.get(f"/v1/tasks?{too_many}"), 400)


async def test_an_unexpected_exception_is_a_500_that_leaks_nothing(
    client: httpx.AsyncClient,
    service: TaskService,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/db password=hunter2")

    monkeypatch.setattr(service, "list", broken)
    with caplog.at_level(logging.ERROR, logger="taskgate.http"):
        response = await client.get("/v1/tasks", headers={"X-Request-ID": "trace-me"})
    doc = problem(response, 500, "internal-error")
    assert "secret" not in response.text and "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "trace-me" in doc["detail"]  # to find the log line
    logged = [r for r in caplog.records if r.name == "taskgate.http"]
    assert logged and "trace-me" in logged[0].getMessage()
    assert logged[0].exc_info is not None


async def test_storage_errors_are_500_or_503(
    client: httpx.AsyncClient, service: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("SQLite is busy: database is locked at /srv/x.db")

    async def failed(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("SQLite: disk I/O error at /srv/x.db")

    monkeypatch.setattr(service, "list", unavailable)
    response = await client.get("/v1/tasks")
    doc = problem(response, 503, "storage-unavailable")
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert "/srv" not in response.text
    assert doc["detail"] == "The task store is unavailable; try again shortly."
    monkeypatch.setattr(service, "list", failed)
    response = await client.get("/v1/tasks")
    problem(response, 500)
    assert "/srv" not in response.text and "I/O" not in response.text


async def test_a_store_that_is_not_open_is_503(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    await service.close()
    response = await client.post("/v1/operations/noop")
    problem(response, 503)


# -- the principal ----------------------------------------------------------------------


async def _client_as(
    service: TaskService, settings: Settings, principal: Principal | None
) -> httpx.AsyncClient:
    async def authenticate(request: Request) -> Principal:
        if principal is None:
            raise HTTPProblem(401, "an API key is required")
        return principal

    api = create_app(service, settings, authenticate=authenticate)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE)


async def test_a_read_only_principal_cannot_submit_or_cancel(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("noop", {}, tenant="t1")
    async with await _client_as(service, settings, Principal("t1", "bob", "read")) as c:
        assert (await c.get(f"/v1/tasks/{task.id}")).status_code == 200
        doc = problem(await c.post("/v1/operations/noop"), 403)
        assert "bob" in doc["detail"] and "write" in doc["detail"]
        problem(await c.post(f"/v1/tasks/{task.id}/cancel"), 403)
        problem(await c.delete(f"/v1/tasks/{task.id}"), 403)


async def test_the_principal_sets_tenant_and_user(service: TaskService, settings: Settings) -> None:
    async with await _client_as(service, settings, Principal("t2", "alice", "write")) as c:
        task = (await c.post("/v1/operations/noop")).json()
        assert (task["tenant"], task["user"]) == ("t2", "alice")
        assert "alice@taskgate" in task["upid"]
        assert [t["id"] for t in (await c.get("/v1/tasks")).json()["items"]] == [task["id"]]
    other = await service.submit("noop", {}, tenant="t3")
    async with await _client_as(service, settings, Principal("t2", "alice", "write")) as c:
        problem(await c.get(f"/v1/tasks/{other.id}"), 404)


async def test_an_authenticator_can_refuse(service: TaskService, settings: Settings) -> None:
    async with await _client_as(service, settings, None) as c:
        doc = problem(await c.get("/v1/tasks"), 401)
        assert doc["detail"] == "an API key is required"
