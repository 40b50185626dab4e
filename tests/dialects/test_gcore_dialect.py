"""The Gcore Cloud dialect in-process: translation, filters, paging, errors, tenants.

The ASGI app runs over ``memory://`` with the example app; the test plays the worker
(claim, report, finish) so every state is reached without worker processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import Application, create_app
from taskgate.http.dialects.gcore_tasks import RESOURCE_KINDS
from taskgate.model import ErrorInfo, State, Task
from taskgate.service import Submission, TaskService
from taskgate.settings import Settings
from taskgate.work import Progress

BASE = "http://testserver"
GCORE_FIELDS = {
    "id",
    "state",
    "task_type",
    "user_id",
    "client_id",
    "user_client_id",
    "project_id",
    "region_id",
    "lifecycle_policy_id",
    "created_on",
    "updated_on",
    "finished_on",
    "acknowledged_at",
    "acknowledged_by",
    "created_resources",
    "data",
    "detailed_state",
    "error",
    "job_id",
    "request_id",
    "schedule_id",
}


@pytest.fixture
def api(service: TaskService) -> Application:
    return create_app(service, Settings(dialects=("gcore",)))


@pytest.fixture
async def key(keys: KeyService) -> str:
    return (await keys.create(tenant="3621", user="alice", user_id=4585, role="write")).token


@pytest.fixture
async def client(api: Application, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    headers = {"Authorization": f"APIKey {key}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as c:
        yield c


async def submit(
    service: TaskService,
    *,
    project: int = 1,
    region: int = 2,
    tenant: str = "3621",
    type: str = "create_volume",
) -> Task:
    params: dict[str, Any] = {"name": "v", "size": 1} if type == "create_volume" else {}
    labels = {"gcore.project_id": str(project), "gcore.region_id": str(region)}
    task, _ = await service.submit_one(
        type, params, Submission(tenant=tenant, user="alice", user_id=4585, labels=labels)
    )
    return task


async def run(service: TaskService, task: Task) -> Task:
    """Claim ``task``: it must be the oldest one waiting (a claim takes the oldest)."""
    (claimed,) = await service.claim("w1", 1, 30)
    assert claimed.id == task.id
    return claimed


def check_error(response: httpx.Response, status: int, exception_class: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"exception_class", "message", "request_id"}
    assert body["exception_class"] == exception_class
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["message"]
    return body


async def test_task_fields_and_states(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(service, project=379987, region=76)
    r = await client.get(f"/cloud/v1/tasks/{task.id}")
    assert r.status_code == 200
    shown = r.json()
    assert set(shown) == GCORE_FIELDS
    assert shown["state"] == "NEW"
    assert shown["task_type"] == "create_volume"
    assert (shown["user_id"], shown["client_id"], shown["user_client_id"]) == (4585, 3621, 3621)
    assert (shown["project_id"], shown["region_id"]) == (379987, 76)
    assert shown["data"] == {"name": "v", "size": 1, "type_name": "standard", "count": 1}
    assert shown["created_on"] == task.created_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert shown["finished_on"] is None and shown["error"] is None
    assert set(shown["created_resources"]) == set(RESOURCE_KINDS)
    assert all(v == [] for v in shown["created_resources"].values())

    running = await run(service, task)
    await service.report(
        running,
        Progress(detailed_state="ALLOCATING", created_resources={"volumes": ["v1"]}),
    )
    shown = (await client.get(f"/cloud/v1/tasks/{task.id}")).json()
    assert shown["state"] == "RUNNING"
    assert shown["detailed_state"] is None  # not in Gcore's enum
    await service.report(running, Progress(detailed_state="FINISHED"))
    await service.finish(running, State.SUCCEEDED, result={"ok": True})
    shown = (await client.get(f"/cloud/v1/tasks/{task.id}")).json()
    assert shown["state"] == "FINISHED"
    assert shown["detailed_state"] == "FINISHED"
    assert shown["created_resources"]["volumes"] == ["v1"]
    assert shown["finished_on"] is not None


@pytest.mark.parametrize(
    ("ending", "error", "shown_error"),
    [
        (State.FAILED, ErrorInfo("DiskError", "disk on fire"), "disk on fire"),
        (State.FAILED, ErrorInfo("DiskError", ""), "DiskError"),
        (State.TIMED_OUT, None, "Task timed out"),
        (State.CANCELED, None, "Task canceled"),
    ],
)
async def test_endings_are_error(
    client: httpx.AsyncClient,
    service: TaskService,
    ending: State,
    error: ErrorInfo | None,
    shown_error: str,
) -> None:
    task = await run(service, await submit(service))
    await service.finish(task, ending, error=error)
    shown = (await client.get(f"/cloud/v1/tasks/{task.id}")).json()
    assert (shown["state"], shown["error"]) == ("ERROR", shown_error)


async def test_retry_waiting_is_running(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await run(service, await submit(service))
    await service.retry(task, delay=60, error=ErrorInfo("Flaky", "try again"))
    assert (await service.get(task.id)).state is State.SCHEDULED
    shown = (await client.get(f"/cloud/v1/tasks/{task.id}")).json()
    assert shown["state"] == "RUNNING"
    listed = await client.get("/cloud/v1/tasks", params={"state": "RUNNING"})
    assert [t["id"] for t in listed.json()["results"]] == [task.id]
    assert (await client.get("/cloud/v1/tasks", params={"state": "NEW"})).json()["count"] == 0


async def test_canceled_before_running_is_error(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(service)
    await service.cancel(task.id)
    shown = (await client.get(f"/cloud/v1/tasks/{task.id}")).json()
    assert (shown["state"], shown["error"]) == ("ERROR", "Task canceled")


async def test_list_pages_filters_and_order(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    made = [await submit(service, project=1 + i % 2, region=10 + i % 3) for i in range(12)]
    other = await submit(service, type="aptupdate", project=9, region=9)
    done = await run(service, made[0])
    await service.finish(done, State.SUCCEEDED)

    r = await client.get("/cloud/v1/tasks", params={"limit": 5})
    body = r.json()
    assert body["count"] == 13 and len(body["results"]) == 5
    newest_first = [t.id for t in reversed([*made, other])]
    assert [t["id"] for t in body["results"]] == newest_first[:5]
    r = await client.get("/cloud/v1/tasks", params={"limit": 5, "offset": 10})
    assert [t["id"] for t in r.json()["results"]] == newest_first[10:]
    r = await client.get("/cloud/v1/tasks", params={"limit": 4, "offset": 1, "order_by": "asc"})
    assert [t["id"] for t in r.json()["results"]] == [t.id for t in made[1:5]]
    r = await client.get("/cloud/v1/tasks", params={"limit": 2, "sorting": "asc"})
    assert [t["id"] for t in r.json()["results"]] == [t.id for t in made[:2]]

    async def ids(**params: Any) -> set[str]:
        r = await client.get("/cloud/v1/tasks", params={"limit": 1000, **params})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["results"])
        return {t["id"] for t in body["results"]}

    assert await ids(state="FINISHED") == {made[0].id}
    assert await ids(state=["FINISHED", "NEW"]) == {t.id for t in [*made, other]}
    assert await ids(state="RUNNING") == set()
    assert await ids(task_type="aptupdate") == {other.id}
    assert await ids(project_id=2) == {t.id for t in made[1::2]}
    assert await ids(project_id=[1, 9]) == {t.id for t in [*made[0::2], other]}
    assert await ids(region_id=[10, 11]) == {t.id for i, t in enumerate(made) if i % 3 < 2}
    assert await ids(project_id=1, region_id=10) == {made[0].id, made[6].id}
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await ids(from_timestamp=future.isoformat()) == set()
    assert len(await ids(to_timestamp=future.strftime("%Y-%m-%dT%H:%M:%S"))) == 13
    past = made[0].created_at - timedelta(seconds=1)
    assert await ids(to_timestamp=past.isoformat()) == set()
    assert await ids(is_acknowledged="true") == set()
    assert len(await ids(is_acknowledged="false")) == 13


async def test_active(client: httpx.AsyncClient, service: TaskService) -> None:
    running = await run(service, await submit(service, project=5, region=6))
    ended = await run(service, await submit(service, project=5, region=6))
    await service.finish(ended, State.SUCCEEDED)
    waiting = await submit(service, project=5, region=6)
    await submit(service, project=5, region=7)
    r = await client.get("/cloud/v1/tasks/5/6/active")
    body = r.json()
    assert body["count"] == 2
    assert {t["id"] for t in body["results"]} == {waiting.id, running.id}
    assert (await client.get("/cloud/v1/tasks/5/6/active", params={"task_type": "x"})).json()[
        "count"
    ] == 0


async def test_acknowledge(client: httpx.AsyncClient, service: TaskService) -> None:
    a = await submit(service, project=1, region=1)
    b = await submit(service, project=1, region=2)
    c = await submit(service, project=2, region=2)
    d = await submit(service, project=3, region=3)
    r = await client.post(
        f"/cloud/v1/tasks/{a.id}/acknowledge", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == 4585 and r.json()["acknowledged_at"]
    assert r.json()["state"] == "NEW"

    r = await client.post(
        "/cloud/v1/tasks/acknowledge_all",
        params={"project_id": 1},
        headers={"Content-Type": "application/json", "Accept": "*/*"},
    )
    assert r.status_code == 204 and r.content == b""
    acked = (await client.get("/cloud/v1/tasks", params={"is_acknowledged": "true"})).json()
    assert {t["id"] for t in acked["results"]} == {a.id, b.id}

    r = await client.post(
        "/cloud/v1/tasks/acknowledge", params={"region_id": 2}, json={"task_ids": [c.id, d.id]}
    )
    assert r.status_code == 204
    acked = (await client.get("/cloud/v1/tasks", params={"is_acknowledged": "true"})).json()
    assert {t["id"] for t in acked["results"]} == {a.id, b.id, c.id}

    r = await client.post("/cloud/v1/tasks/acknowledge", json={"task_ids": None})
    assert r.status_code == 204
    assert (await client.get("/cloud/v1/tasks", params={"is_acknowledged": "false"})).json()[
        "count"
    ] == 0


async def test_errors(client: httpx.AsyncClient, service: TaskService, api: Application) -> None:
    task = await submit(service)
    check_error(await client.get("/cloud/v1/tasks/nope"), 404, "NotFoundError")
    missing = task.id[:-4] + ("0000" if not task.id.endswith("0000") else "1111")
    check_error(await client.get(f"/cloud/v1/tasks/{missing}"), 404, "NotFoundError")
    check_error(await client.post(f"/cloud/v1/tasks/{missing}/acknowledge"), 404, "NotFoundError")
    check_error(await client.get("/cloud/v1/nothing/here"), 404, "NotFoundError")
    check_error(await client.delete(f"/cloud/v1/tasks/{task.id}"), 405, "MethodNotAllowedError")
    for params in (
        {"state": "CANCELLED"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"offset": -1},
        {"order_by": "up"},
        {"sorting": "sideways"},
        {"project_id": "x"},
        {"region_id": "1.5"},
        {"is_acknowledged": "maybe"},
        {"from_timestamp": "yesterday"},
        {"to_timestamp": "2026-13-01"},
        {"task_type": ["a", "b"]},
        {"project_id": "99999999999999999999999"},
        {"to_timestamp": "9999-12-31T23:59:59-05:00"},
    ):
        check_error(await client.get("/cloud/v1/tasks", params=params), 400, "BadRequestError")
    r = await client.get("/cloud/v1/tasks", params={"to_timestamp": "9999-12-31T23:59:59"})
    assert r.json()["count"] == 1  # the end of the calendar is no bound, not an error
    check_error(await client.get("/cloud/v1/tasks/1/x/active"), 404, "NotFoundError")
    check_error(
        await client.post("/cloud/v1/tasks/acknowledge_all", params={"project_id": "p"}),
        400,
        "BadRequestError",
    )
    check_error(
        await client.post("/cloud/v1/tasks/acknowledge", json={"task_ids": "all"}),
        400,
        "BadRequestError",
    )
    check_error(
        await client.post("/cloud/v1/tasks/acknowledge", json={"task_ids": ["bad"]}),
        400,
        "BadRequestError",
    )
    r = await client.post(
        "/cloud/v1/tasks/acknowledge", content=b"{", headers={"Content-Type": "application/json"}
    )
    check_error(r, 400, "BadRequestError")
    # kickoff bodies
    check_error(
        await client.post("/cloud/v1/volumes/1/2", json={"size": 1}), 400, "BadRequestError"
    )
    check_error(
        await client.post("/cloud/v1/volumes/1/2", json={"name": "v", "size": 0}),
        422,
        "ValidationError",
    )
    check_error(await client.post("/cloud/v1/volumes/x/2", json={}), 404, "NotFoundError")
    check_error(await client.post("/cloud/v1/routers/1/2", json={}), 404, "NotFoundError")
    check_error(await client.get("/cloud/v1/volumes/1/2/nope"), 404, "NotFoundError")


async def test_auth(api: Application, keys: KeyService, service: TaskService, key: str) -> None:
    task = await submit(service)
    theirs = await submit(service, tenant="other")
    reader = (await keys.create(tenant="3621", user="bob", role="read")).token
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        url = f"/cloud/v1/tasks/{task.id}"
        body = check_error(await c.get(url), 401, "AuthenticationError")
        assert body["message"] == "Authentication credentials were not provided."
        check_error(
            await c.get(url, headers={"Authorization": f"Bearer {key}"}), 401, "AuthenticationError"
        )
        check_error(
            await c.get(url, headers={"Authorization": "APIKey"}), 401, "AuthenticationError"
        )
        check_error(
            await c.get(url, headers={"Authorization": "APIKey My API Key"}),
            401,
            "AuthenticationError",
        )
        for scheme in ("APIKey", "apikey", "APIKEY"):
            r = await c.get(url, headers={"Authorization": f"{scheme} {key}"})
            assert r.status_code == 200
        mine = {"Authorization": f"APIKey {key}"}
        check_error(await c.get(f"/cloud/v1/tasks/{theirs.id}", headers=mine), 404, "NotFoundError")
        check_error(
            await c.post(f"/cloud/v1/tasks/{theirs.id}/acknowledge", headers=mine),
            404,
            "NotFoundError",
        )
        listed = (await c.get("/cloud/v1/tasks", headers=mine)).json()
        assert listed["count"] == 1 and listed["results"][0]["id"] == task.id
        await c.post("/cloud/v1/tasks/acknowledge_all", headers=mine)
        assert (await service.get(theirs.id)).acknowledged_at is None
        ro = {"Authorization": f"APIKey {reader}"}
        assert (await c.get(url, headers=ro)).status_code == 200
        check_error(await c.post(f"{url}/acknowledge", headers=ro), 403, "PermissionDeniedError")
        # the native API is unchanged beside the dialect
        r = await c.get(f"/v1/tasks/{task.id}", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["state"] == "queued"


async def test_kickoff_and_resource(client: httpx.AsyncClient, service: TaskService) -> None:
    r = await client.post(
        "/cloud/v1/volumes/1/2", json={"name": "data", "size": 3, "source": "new-volume"}
    )
    assert r.status_code == 200, r.text
    (task_id,) = r.json()["tasks"]
    task = await service.get(task_id)
    assert task.labels == {"gcore.project_id": "1", "gcore.region_id": "2"}
    assert (task.tenant, task.user, task.user_id) == ("3621", "alice", 4585)
    running = await run(service, task)
    await service.report(running, Progress(created_resources={"volumes": ["vol-1"]}))
    await service.finish(running, State.SUCCEEDED)
    r = await client.get("/cloud/v1/volumes/1/2/vol-1")
    assert r.status_code == 200
    volume = r.json()
    assert (volume["id"], volume["name"], volume["size"]) == ("vol-1", "data", 3)
    assert volume["creator_task_id"] == task_id
    check_error(await client.get("/cloud/v1/volumes/1/3/vol-1"), 404, "NotFoundError")


async def test_prefix(service: TaskService, key: str) -> None:
    api = create_app(service, Settings(dialects=("gcore",), gcore_prefix="/gcore"))
    task = await submit(service)
    transport = httpx.ASGITransport(app=api)
    headers = {"Authorization": f"APIKey {key}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as c:
        assert (await c.get(f"/gcore/cloud/v1/tasks/{task.id}")).status_code == 200
        assert (await c.get(f"/cloud/v1/tasks/{task.id}")).status_code == 404
