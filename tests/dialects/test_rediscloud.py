"""The Redis Cloud dialect in-process: the task, its statuses and descriptions, response
and links, the list, kickoffs and the resource link, errors in Redis Cloud's shape
(never a 500), the two headers onto keys and tenants.

The ASGI app runs over ``memory://`` with the example app; the test plays the worker.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import create_app
from taskgate.model import ErrorInfo, State, Task
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.work import Progress

BASE = "http://testserver"
PREFIX = "/rediscloud/v1"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def client_for(service: TaskService, account: str | None, secret: str | None) -> httpx.AsyncClient:
    api = create_app(service, Settings(dialects=("rediscloud",)))
    headers = {}
    if account is not None:
        headers["x-api-key"] = account
    if secret is not None:
        headers["x-api-secret-key"] = secret
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url=BASE + PREFIX, headers=headers
    )


@pytest.fixture
async def secret(keys: KeyService) -> str:
    return (await keys.create(tenant="acme", user="bob", role="write")).token


@pytest.fixture
async def client(service: TaskService, secret: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(service, "acme", secret) as c:
        yield c


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "status", "description"}
    assert body["error"]["status"].startswith(f"{status} ")
    found: dict[str, str] = body["error"]
    return found


async def claim(service: TaskService) -> Task:
    [task] = await service.claim("w", 5, 30)
    return task


async def test_a_subscription_from_received_to_completed(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    created = await client.post("/subscriptions", json={"name": "cache", "databases": [{}]})
    assert created.status_code == 202, created.text
    task = created.json()
    task_id = task["taskId"]
    assert task["status"] == "received" and task["commandType"] == "subscriptionCreateRequest"
    assert task["description"] == "Task request received and is being queued for processing."
    assert TIMESTAMP.match(task["timestamp"]) and "response" not in task
    href = f"{BASE}{PREFIX}/tasks/{task_id}"
    assert task["_links"]["task"] == {"href": href, "title": "getTaskStatusUpdates", "type": "GET"}
    assert task["links"] == [{"href": href, "rel": "self", "type": "GET"}]

    running = await claim(service)
    await service.report(running, Progress(progress=40))
    middle = (await client.get(f"/tasks/{task_id}")).json()
    assert middle["status"] == "processing-in-progress"
    assert middle["timestamp"] >= task["timestamp"]
    await service.report(running, Progress(created_resources={"subscriptions": ["77899"]}))
    await service.finish(running, State.SUCCEEDED, result={"id": 77899})
    done = (await client.get(f"/tasks/{task_id}")).json()
    assert done["status"] == "processing-completed"
    assert done["description"].startswith("Request processing completed successfully")
    assert done["response"] == {"resourceId": 77899, "resource": {"id": 77899}}
    resource = f"{BASE}{PREFIX}/subscriptions/77899"
    assert done["_links"]["resource"]["href"] == resource
    assert done["_links"]["self"] == {"href": href, "type": "GET"}
    assert {"href": resource, "rel": "resource", "type": "GET"} in done["links"]
    shown = await client.get("/subscriptions/77899")
    assert shown.status_code == 200 and shown.json()["id"] == 77899
    error(await client.get("/subscriptions/1"), 404)


@pytest.mark.parametrize(
    ("state", "info", "kind", "status"),
    [
        (
            State.FAILED,
            ErrorInfo("SubscriptionQuotaExceeded", "too big"),
            "SUBSCRIPTION_QUOTA_EXCEEDED",
            "500 INTERNAL_SERVER_ERROR",
        ),
        (State.CANCELED, None, "TASK_CANCELED", "409 CONFLICT"),
        (State.TIMED_OUT, None, "TASK_TIMED_OUT", "504 GATEWAY_TIMEOUT"),
    ],
)
async def test_a_failure_carries_its_error(
    client: httpx.AsyncClient,
    service: TaskService,
    state: State,
    info: ErrorInfo | None,
    kind: str,
    status: str,
) -> None:
    task_id = (await client.post("/subscriptions", json={"name": "x"})).json()["taskId"]
    await service.finish(await claim(service), state, error=info)
    body = (await client.get(f"/tasks/{task_id}")).json()
    assert body["status"] == "processing-error"
    assert body["response"]["error"]["type"] == kind
    assert body["response"]["error"]["status"] == status
    assert "resource" not in body["_links"]


async def test_the_list_is_the_account_s_newest_updates_first(
    client: httpx.AsyncClient, service: TaskService, keys: KeyService
) -> None:
    first = (await client.post("/subscriptions", json={"name": "a"})).json()["taskId"]
    second = (await client.post("/subscriptions", json={"name": "b"})).json()["taskId"]
    [older, _] = await service.claim("w", 5, 30)
    assert older.id == first
    await service.finish(older, State.SUCCEEDED)  # the first is now the latest update
    listed = (await client.get("/tasks")).json()["tasks"]
    assert [t["taskId"] for t in listed] == [first, second]
    other = (await keys.create(tenant="globex", user="g", role="read")).token
    async with client_for(service, "globex", other) as globex:
        assert (await globex.get("/tasks")).json() == {"tasks": []}
        error(await globex.get(f"/tasks/{first}"), 404)
        error(await globex.post("/subscriptions", json={"name": "c"}), 403)
    error(await client.get("/tasks?limit=1"), 400)


async def test_the_headers_name_the_account_and_the_user(
    service: TaskService, keys: KeyService, secret: str
) -> None:
    async with client_for(service, None, secret) as c:
        assert "x-api-key" in error(await c.get("/tasks"), 401)["description"]
    async with client_for(service, "acme", None) as c:
        error(await c.get("/tasks"), 401)
    async with client_for(service, "initech", secret) as c:  # not the key's account
        assert "account" in error(await c.get("/tasks"), 401)["description"]
    async with client_for(service, "acme", "tgk_bad") as c:
        error(await c.get("/tasks"), 401)
    admin = (await keys.create(tenant="ops", user="root", role="admin")).token
    async with client_for(service, "acme", admin) as ops:  # an admin acts in the account it names
        task_id = (await ops.post("/subscriptions", json={"name": "z"})).json()["taskId"]
    assert (await service.get(task_id)).tenant == "acme"


async def test_bad_input_in_redis_cloud_s_shape(client: httpx.AsyncClient) -> None:
    assert error(await client.get("/tasks/nope"), 400)["type"] == "BAD_REQUEST"
    unknown = "01900000-0000-7000-8000-000000000000"
    assert error(await client.get(f"/tasks/{unknown}"), 404)["type"] == "TASK_NOT_FOUND"
    error(await client.get("/databases"), 404)
    error(await client.get("/tasks/a/b"), 404)
    error(await client.delete(f"/tasks/{unknown}"), 405)
    error(await client.put("/subscriptions"), 405)
    error(await client.post("/subscriptions", json={"databases": []}), 400)  # no name
    error(await client.post("/subscriptions", json={"name": ""}), 400)
    error(
        await client.post(
            "/subscriptions", json={"name": "x", "databases": [{"memoryLimitInGb": "lots"}]}
        ),
        400,
    )
    error(
        await client.post(
            "/subscriptions", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
    )
    error(await client.post("/subscriptions"), 422)
