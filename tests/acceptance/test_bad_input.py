"""Bad requests, end to end: each gets a 4xx problem+json document, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .server import SETTINGS_ENV, submit, wait_ended

pytestmark = pytest.mark.acceptance

UNKNOWN_ID = "01900000-0000-7000-8000-000000000000"
JSON = {"content-type": "application/json"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body.get("detail")
    return body


def test_malformed_json(client: httpx.Client) -> None:
    problem(client.post("/v1/operations/echo", content=b'{"name": ', headers=JSON), 400)
    problem(client.post("/v1/tasks", content=b"[1, 2", headers=JSON), 400)


def test_wrong_types_name_the_field(client: httpx.Client) -> None:
    body = problem(client.post("/v1/operations/echo", json={"steps": "many"}), 422)
    assert "steps" in body["detail"]
    body = problem(client.post("/v1/operations/echo", json={"steps": 0}), 422)
    assert "steps" in body["detail"]
    body = problem(client.post("/v1/tasks", json={"type": "echo", "params": {"steps": []}}), 422)
    assert "steps" in body["detail"]


def test_not_an_object(client: httpx.Client) -> None:
    response = client.post("/v1/operations/echo", json=[1, 2])
    assert response.status_code in (400, 422)
    problem(response, response.status_code)


def test_unknown_operation(client: httpx.Client) -> None:
    body = problem(client.post("/v1/operations/no_such_operation", json={}), 404)
    assert "no_such_operation" in body["detail"]
    # in a body, the unknown name is a wrong field value: 422 naming "type"
    body = problem(client.post("/v1/tasks", json={"type": "no_such_operation"}), 422)
    assert [e["field"] for e in body["errors"]] == ["type"]


def test_unknown_task(client: httpx.Client) -> None:
    problem(client.get(f"/v1/tasks/{UNKNOWN_ID}"), 404)
    problem(client.get(f"/v1/tasks/{UNKNOWN_ID}", params={"wait": 1}), 404)
    problem(client.get(f"/v1/tasks/{UNKNOWN_ID}/log"), 404)
    problem(client.post(f"/v1/tasks/{UNKNOWN_ID}/cancel"), 404)
    problem(client.delete(f"/v1/tasks/{UNKNOWN_ID}"), 404)


def test_bad_task_id(client: httpx.Client) -> None:
    for path in ("/v1/tasks/not-a-uuid", "/v1/tasks/12345/log"):
        problem(client.get(path), 400)
    problem(client.post("/v1/tasks/zzz/cancel"), 400)


def test_oversized_body(client: httpx.Client) -> None:
    limit = int(SETTINGS_ENV["TASKGATE_MAX_BODY_SIZE"])
    big = {"name": "x" * (limit + 10)}
    problem(client.post("/v1/operations/echo", json=big), 413)

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(limit // 1000 + 10):
            yield b" " * 1000

    problem(client.post("/v1/operations/echo", content=chunks(), headers=JSON), 413)


def test_wrong_content_type(client: httpx.Client) -> None:
    response = client.post(
        "/v1/operations/echo", content=b"name=x", headers={"content-type": "text/plain"}
    )
    problem(response, 415)
    problem(client.post("/v1/tasks", data={"type": "echo"}), 415)


def test_bad_filters_and_paging(client: httpx.Client) -> None:
    for params in (
        {"state": "bogus"},
        {"limit": "0"},
        {"limit": "many"},
        {"since": "yesterday"},
        {"cursor": "!!!"},
        {"label": "no-equals-sign"},
    ):
        problem(client.get("/v1/tasks", params=params), 400)
    task_id = submit(client, "noop")
    wait_ended(client, task_id)
    problem(client.get(f"/v1/tasks/{task_id}", params={"wait": "soon"}), 400)
    problem(client.get(f"/v1/tasks/{task_id}/log", params={"start": "-1"}), 400)


def test_bad_task_options(client: httpx.Client) -> None:
    problem(client.post("/v1/operations/echo", json={}, params={"timeout": "-1"}), 422)
    problem(client.post("/v1/operations/echo", json={}, params={"delay": "soon"}), 422)


def test_the_server_is_still_healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
