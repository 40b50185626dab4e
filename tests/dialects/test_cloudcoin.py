"""The CloudCoin dialect in-process: the envelope, states, progress and data, the
alias, kickoffs, errors in CloudCoin's shape (never a 500), keys, the keyless tenant,
tenant isolation.

The ASGI app runs over ``memory://`` with the example app; the test plays the worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import create_app
from taskgate.model import ErrorInfo, State
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.work import Progress

BASE = "http://testserver"


def client_for(service: TaskService, key: str | None = None, **settings: Any) -> httpx.AsyncClient:
    api = create_app(service, Settings(dialects=("cloudcoin",), **settings))
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE, headers=headers)


@pytest.fixture
async def key(keys: KeyService) -> str:
    return (await keys.create(tenant="wallets", user="ann", role="write")).token


@pytest.fixture
async def client(service: TaskService, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(service, key) as c:
        yield c


def error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and set(body["payload"]) == {"code", "message"}, body
    assert body["payload"]["code"] == code
    message: str = body["payload"]["message"]
    return message


async def test_a_backup_from_its_kickoff_to_its_data(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    started = await client.post("/api/v1/backup", json={"folder": "/tmp", "tag": "nightly"})
    assert started.status_code == 200, started.text
    envelope = started.json()
    task_id = envelope["payload"]["id"]
    assert envelope == {
        "status": "success",
        "payload": {
            "id": task_id,
            "status": "running",
            "progress": 0,
            "message": "Command Started",
            "data": None,
        },
    }
    [task] = await service.claim_reserved("w", 5, 30) or await service.claim("w", 5, 30)
    await service.report(task, Progress(progress=49.6, message="Backing up wallet Default"))
    for path in (f"/api/v1/tasks/{task_id}", f"/get-task-status/{task_id}"):
        payload = (await client.get(path)).json()["payload"]
        assert (payload["status"], payload["progress"]) == ("running", 49)
        assert payload["message"] == "Backing up wallet Default" and payload["data"] is None
    await service.finish(task, State.SUCCEEDED, result={"coins": 50})
    payload = (await client.get(f"/api/v1/tasks/{task_id}")).json()["payload"]
    assert payload == {
        "id": task_id,
        "status": "completed",
        "progress": 100,
        "message": "Command Completed",
        "data": {"coins": 50},
    }
    no_dashes = task_id.replace("-", "")  # the document calls it a 32-character GUID
    assert (await client.get(f"/api/v1/tasks/{no_dashes}")).json()["payload"]["id"] == task_id


@pytest.mark.parametrize(
    ("state", "error_info", "message"),
    [
        (State.FAILED, ErrorInfo("FileNotFoundError", "no folder"), "no folder"),
        (State.CANCELED, None, "Task canceled"),
        (State.TIMED_OUT, None, "Task timed out"),
    ],
)
async def test_an_ended_task_that_did_not_succeed_is_an_error(
    client: httpx.AsyncClient,
    service: TaskService,
    state: State,
    error_info: ErrorInfo | None,
    message: str,
) -> None:
    task_id = (await client.post("/api/v1/join", json={})).json()["payload"]["id"]
    [task] = await service.claim("w", 5, 30)
    await service.finish(task, state, error=error_info)
    payload = (await client.get(f"/get-task-status/{task_id}")).json()["payload"]
    assert (payload["status"], payload["message"], payload["data"]) == ("error", message, None)


async def test_bad_input_is_answered_in_cloudcoin_s_shape(client: httpx.AsyncClient) -> None:
    assert "Invalid task id" in error(await client.get("/api/v1/tasks/not-a-guid"), 400, 4000)
    unknown = "01900000-0000-7000-8000-000000000000"
    assert "Task not found" in error(await client.get(f"/api/v1/tasks/{unknown}"), 404, 4040)
    error(await client.get("/get-task-status/"), 404, 4040)
    error(await client.get("/api/v1/tasks/a/b"), 404, 4040)
    error(await client.get("/api/v1/echo"), 404, 4040)
    error(await client.delete(f"/api/v1/tasks/{unknown}"), 405, 4050)
    error(await client.get("/api/v1/backup"), 405, 4050)
    bad = error(await client.post("/api/v1/backup", json={"folder": "x", "tag": "a b"}), 400, 4000)
    assert bad.startswith("Validation error.") and "folder" in bad and "tag" in bad
    error(await client.post("/api/v1/backup", json={"colour": 1}), 400, 4000)
    error(
        await client.post(
            "/api/v1/backup", content=b"{", headers={"Content-Type": "application/json"}
        ),
        400,
        4000,
    )
    error(
        await client.post("/api/v1/backup", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        4150,
    )
    error(await client.post("/api/v1/backup", json=[1]), 422, 4220)


async def test_keys_and_the_keyless_tenant(
    service: TaskService, keys: KeyService, key: str
) -> None:
    async with client_for(service) as anonymous:
        assert "Authorization" in error(await anonymous.post("/api/v1/join"), 401, 4010)
    async with client_for(service, "tgk_nope") as wrong:
        error(await wrong.post("/api/v1/join"), 401, 4010)
    async with client_for(service, cloudcoin_tenant="local") as local:
        task_id = (await local.post("/consolidate-coins")).json()["payload"]["id"]
        assert (await local.get(f"/api/v1/tasks/{task_id}")).status_code == 200
    assert (await service.get(task_id)).tenant == "local"
    async with client_for(service, key) as ann:  # another tenant: not found
        error(await ann.get(f"/api/v1/tasks/{task_id}"), 404, 4040)
        mine = (await ann.post("/api/v1/join")).json()["payload"]["id"]
    reader = (await keys.create(tenant="wallets", user="rita", role="read")).token
    async with client_for(service, reader) as rita:
        assert (await rita.get(f"/api/v1/tasks/{mine}")).status_code == 200
        error(await rita.post("/api/v1/join"), 403, 4030)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(service, Settings(dialects=("cloudcoin",)))),
        base_url=BASE,
        headers={"Authorization": f"APIKey {key}"},
    ) as scheme:
        assert "Bearer" in error(await scheme.get(f"/api/v1/tasks/{mine}"), 401, 4010)


async def test_the_native_api_is_untouched(client: httpx.AsyncClient, key: str) -> None:
    native = await client.get("/v1/tasks")
    assert native.status_code == 200 and native.json()["items"] == []
