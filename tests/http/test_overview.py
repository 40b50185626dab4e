"""The dashboard's routes: whoami, workers, stats, the task search and retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import BASE, bearer, claim, finish, problem, submit

from taskgate.auth import KeyService
from taskgate.http import Application, create_app
from taskgate.model import State
from taskgate.retention import RetentionService
from taskgate.service import TaskService
from taskgate.settings import Settings

UNKNOWN = "01900000-0000-7000-8000-000000000000"


@pytest.fixture
async def admin(api: Application, keys: KeyService) -> AsyncIterator[httpx.AsyncClient]:
    key = (await keys.create(tenant="ops", user="root", role="admin")).token
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=bearer(key)) as c:
        yield c


async def as_key(api: Application, keys: KeyService, **key: Any) -> httpx.AsyncClient:
    token = (await keys.create(**key)).token
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url=BASE, headers=bearer(token)
    )


# -- whoami ---------------------------------------------------------------------------


async def test_whoami_names_the_key(
    api: Application, client: httpx.AsyncClient, keys: KeyService, admin: httpx.AsyncClient
) -> None:
    body = (await client.get("/v1/whoami")).json()
    assert body["key_id"] and len(body["key_id"]) == 12
    assert body == {
        "tenant": "default",
        "user": "tester",
        "role": "write",
        "key_id": body["key_id"],
        "auth": True,
    }
    assert (await admin.get("/v1/whoami")).json()["role"] == "admin"
    async with await as_key(api, keys, tenant="t", user="r", role="read") as reader:
        assert (await reader.get("/v1/whoami")).json()["role"] == "read"
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE)
    async with anonymous:
        problem(await anonymous.get("/v1/whoami"), 401)
        bad = await anonymous.get("/v1/whoami", headers=bearer("tgk_000000000000_nope"))
        problem(bad, 401)
    problem(await client.get("/v1/whoami?x=1"), 400)


async def test_whoami_without_auth(service: TaskService) -> None:
    api = create_app(service, Settings(auth=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        assert (await c.get("/v1/whoami")).json() == {
            "tenant": "default",
            "user": "anonymous",
            "role": "admin",
            "key_id": None,
            "auth": False,
        }


# -- workers --------------------------------------------------------------------------


async def test_workers_for_admins_only(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, service: TaskService
) -> None:
    problem(await client.get("/v1/workers"), 403, "permission-denied")
    assert (await admin.get("/v1/workers")).json() == {"items": []}

    await service.heartbeat("worker-1", lease=15, pid=42, concurrency=4, task_ids=())
    await claim(service, (await submit(client, "noop"))["id"])  # claimed by worker-1
    await submit(client, "noop")  # waiting
    (worker,) = (await admin.get("/v1/workers")).json()["items"]
    assert worker["id"] == "worker-1" and worker["node"] == service.node
    assert (worker["pid"], worker["concurrency"], worker["running"]) == (42, 4, 1)
    assert worker["alive"] is True and 0 <= worker["heartbeat_age"] < 15
    assert worker["started_at"].endswith("Z") and worker["heartbeat_at"].endswith("Z")


async def test_a_worker_past_its_lease_is_not_alive(
    admin: httpx.AsyncClient, service: TaskService, settings: Settings
) -> None:
    now = service.clock()
    service.clock = lambda: now - settings.lease - 1  # its last heartbeat, long ago
    await service.heartbeat("old", lease=settings.lease, pid=1, concurrency=1, task_ids=())
    service.clock = lambda: now
    (worker,) = (await admin.get("/v1/workers")).json()["items"]
    assert worker["alive"] is False and worker["heartbeat_age"] > settings.lease


# -- stats ----------------------------------------------------------------------------


async def test_stats_of_a_tenant(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, service: TaskService
) -> None:
    failed = await submit(client, "noop")
    await finish(service, failed["id"], State.FAILED)
    await finish(service, (await submit(client, "noop"))["id"])
    await submit(client, "noop")
    await submit(client, "noop", delay=60)
    await service.submit("noop", {}, tenant="other")

    body = (await client.get("/v1/stats")).json()
    assert body["states"] == {
        "queued": 1,
        "scheduled": 1,
        "suspended": 0,
        "running": 0,
        "canceling": 0,
        "succeeded": 1,
        "failed": 1,
        "canceled": 0,
        "timed_out": 0,
    }
    assert body["queue_depth"] == 1
    oldest = body["oldest_waiting"]
    assert set(oldest) == {"id", "type", "created_at", "due_at", "wait_seconds"}
    assert oldest["type"] == "noop" and oldest["wait_seconds"] >= 0
    assert body["window"]["bucket_seconds"] == 60
    assert len(body["series"]) == 60
    assert set(body["series"][0]) == {"start", "succeeded", "failed", "canceled", "timed_out"}
    assert sum(b["failed"] for b in body["series"]) == 1
    assert sum(b["succeeded"] for b in body["series"]) == 1
    assert body["series"][-1]["start"] < body["window"]["end"]

    everyone = (await admin.get("/v1/stats")).json()
    assert everyone["queue_depth"] == 2 and everyone["states"]["queued"] == 2
    other = (await admin.get("/v1/stats", params={"tenant": "other"})).json()
    assert other["queue_depth"] == 1 and other["states"]["failed"] == 0
    short = (await client.get("/v1/stats", params={"window": 120, "buckets": 200})).json()
    assert short["window"]["bucket_seconds"] == 1 and len(short["series"]) == 120


async def test_stats_refusals(client: httpx.AsyncClient) -> None:
    for query in (
        {"window": 0},
        {"window": 7 * 86400 + 1},
        {"window": "an hour"},
        {"window": "1.5"},
        {"buckets": 0},
        {"buckets": 201},
        {"bucket": 10},
    ):
        problem(await client.get("/v1/stats", params=query), 400)
    doc = problem(await client.get("/v1/stats", params={"window": -1}), 400)
    assert doc["parameter"] == "window"
    problem(await client.get("/v1/stats", params={"tenant": "other"}), 403, "permission-denied")
    assert (await client.get("/v1/stats", params={"tenant": "default"})).status_code == 200


# -- search ---------------------------------------------------------------------------


async def listed(client: httpx.AsyncClient, **query: Any) -> list[str]:
    response = await client.get("/v1/tasks", params=query)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


async def test_search_the_list(client: httpx.AsyncClient, service: TaskService) -> None:
    vm = await submit(client, "echo", {"name": "vm-100"}, label="ticket=T-9")
    other = await submit(client, "echo", {"name": "vm-200"}, label="ticket=T-9")
    done = await submit(client, "noop", label="host=vm-100")
    await finish(service, done["id"], State.FAILED)

    assert await listed(client, q="vm-100") == [done["id"], vm["id"]]
    assert await listed(client, q=" vm-100 ") == [done["id"], vm["id"]]  # trimmed
    assert await listed(client, q="T-9") == [other["id"], vm["id"]]
    # finish() claimed every waiting task
    assert await listed(client, q="ticket=T-9", state="running") == [other["id"], vm["id"]]
    assert await listed(client, q="vm-100", state="failed") == [done["id"]]
    assert await listed(client, q=vm["id"].replace("-", "").upper()) == [vm["id"]]
    assert await listed(client, q="vm-1") == []
    assert len(await listed(client, q="")) == 3  # an empty search searches nothing
    page = await client.get("/v1/tasks", params={"q": "vm-100", "limit": 1})
    assert "q=vm-100" in page.headers["link"]
    rest = await client.get(
        "/v1/tasks", params={"q": "vm-100", "cursor": page.json()["next_cursor"]}
    )
    assert [t["id"] for t in rest.json()["items"]] == [vm["id"]]

    await RetentionService(service, archive_after=0, purge_after=3600).run()
    assert await listed(client, q="vm-100") == [vm["id"]]
    assert await listed(client, q="vm-100", archived="true") == [done["id"]]
    assert await listed(client, q="vm-100", archived="any") == [done["id"], vm["id"]]

    doc = problem(await client.get("/v1/tasks", params={"q": "x" * 1001}), 400)
    assert doc["parameter"] == "q"


# -- retry ----------------------------------------------------------------------------


async def test_retry_submits_a_new_task(client: httpx.AsyncClient, service: TaskService) -> None:
    first = await submit(client, "echo", {"name": "vm"}, label="a=b", priority=3)
    await finish(service, first["id"], State.FAILED)
    response = await client.post(
        f"/v1/tasks/{first['id']}/retry", headers={"X-Request-ID": "retry-1"}
    )
    assert response.status_code == 201, response.text
    again = response.json()
    assert response.headers["location"] == f"/v1/tasks/{again['id']}"
    assert response.headers["operation-location"] == f"{BASE}/v1/tasks/{again['id']}"
    assert response.headers["etag"] and response.headers["retry-after"]
    assert again["id"] != first["id"] and again["state"] == "queued"
    assert (again["type"], again["params"], again["object_id"], again["priority"]) == (
        "echo",
        first["params"],
        "vm",
        3,
    )
    assert again["labels"] == {"a": "b", "retry_of": first["id"]}
    assert (again["tenant"], again["user"], again["request_id"]) == ("default", "tester", "retry-1")
    assert (await client.get(f"/v1/tasks/{again['id']}")).json() == again
    # an archived task is retried too
    await RetentionService(service, archive_after=0, purge_after=3600).run()
    archived = await client.post(f"/v1/tasks/{first['id']}/retry")
    assert archived.status_code == 201 and archived.json()["labels"]["retry_of"] == first["id"]


async def test_retry_refusals(
    api: Application, client: httpx.AsyncClient, keys: KeyService, service: TaskService
) -> None:
    done = await submit(client, "noop")
    await finish(service, done["id"])
    waiting = await submit(client, "noop")
    problem(await client.post(f"/v1/tasks/{done['id']}/retry"), 409, "conflict")
    problem(await client.post(f"/v1/tasks/{waiting['id']}/retry"), 409, "conflict")
    problem(await client.post(f"/v1/tasks/{UNKNOWN}/retry"), 404, "task-not-found")
    problem(await client.post("/v1/tasks/nope/retry"), 400, "invalid-id")
    problem(await client.get(f"/v1/tasks/{done['id']}/retry"), 405)
    failed = await submit(client, "noop")
    await finish(service, failed["id"], State.CANCELED)
    async with await as_key(api, keys, tenant="default", user="r", role="read") as reader:
        problem(await reader.post(f"/v1/tasks/{failed['id']}/retry"), 403, "permission-denied")
    async with await as_key(api, keys, tenant="other", user="o", role="write") as stranger:
        problem(await stranger.post(f"/v1/tasks/{failed['id']}/retry"), 404, "task-not-found")


async def test_an_admin_retries_another_tenants_task_in_that_tenant(
    api: Application, keys: KeyService, service: TaskService
) -> None:
    async with await as_key(api, keys, tenant="acme", user="ann", role="write") as ann:
        first = await submit(ann, "noop")
    await finish(service, first["id"], State.FAILED)
    async with await as_key(api, keys, tenant="ops", user="root", role="admin") as admin:
        response = await admin.post(f"/v1/tasks/{first['id']}/retry")
    assert response.status_code == 201, response.text
    assert (response.json()["tenant"], response.json()["user"]) == ("acme", "root")
