"""The Pulp dialect in-process: Pulp 1's Task and TaskSnapshot objects, its filters,
cancel, delete and snapshots; Pulp 2's task reports, cancel, tags, purge, search, groups
and kickoffs; each version's errors (never a 500); Basic and Bearer auth; tenants.

The ASGI app runs over ``memory://`` with the example app; the test plays the worker.
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from taskgate.auth import KeyService
from taskgate.http import create_app
from taskgate.model import ErrorInfo, State, Task
from taskgate.retention import RetentionService
from taskgate.schedules import ScheduleService
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.work import Progress

BASE = "http://testserver"
V1_FIELDS = {
    "id", "job_id", "class_name", "method_name", "args", "state", "start_time",
    "finish_time", "result", "exception", "traceback", "progress", "scheduled_time",
    "scheduler", "snapshot_id",
}  # fmt: skip
SNAPSHOT_FIELDS = {
    "id", "class_name", "method_name", "state", "failure_threshold", "cancel_attempts",
    "callable", "args", "kwargs", "progress", "timeout", "schedule_threshold",
    "_progress_callback", "start_time", "finish_time", "result", "exception", "traceback",
}  # fmt: skip
UNKNOWN = "01900000-0000-7000-8000-000000000000"


def client_for(service: TaskService, headers: dict[str, str]) -> httpx.AsyncClient:
    api = create_app(service, Settings(dialects=("pulp",)))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url=BASE + "/pulp/api", headers=headers
    )


def basic(user: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


@pytest.fixture
async def key(keys: KeyService) -> str:
    return (await keys.create(tenant="acme", user="ann", role="write")).token


@pytest.fixture
async def admin(keys: KeyService) -> str:
    return (await keys.create(tenant="acme", user="root", role="admin")).token


@pytest.fixture
async def client(service: TaskService, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(service, basic("ann", key)) as c:
        yield c


async def sync(service: TaskService, repo: str = "zoo", **options: Any) -> Task:
    return await service.submit("sync_repository", {"repo_id": repo}, tenant="acme", **options)


async def run(service: TaskService, state: State = State.SUCCEEDED, **outcome: Any) -> Task:
    [task] = (await service.claim_reserved("w", 1, 30)) or await service.claim("w", 1, 30)
    done = await service.finish(task, state, **outcome)
    assert done is not None
    return done


def v2_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["http_status"] == status and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "description", "data", "sub_errors"}
    message: str = body["error_message"]
    return message


# -- Pulp 1 -----------------------------------------------------------------------------


async def test_a_v1_task_has_every_field_of_the_seed(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await sync(service, group_id="job-1")
    for base in ("/tasks", "/v1/tasks"):
        body = (await client.get(f"{base}/{task.id}/")).json()
        assert set(body) == V1_FIELDS
        assert body["state"] == "waiting" and body["method_name"] == "sync_repository"
        assert body["job_id"] == "job-1" and body["scheduler"] == "immediate"
        assert body["start_time"] is None and body["snapshot_id"] == task.id
    [running] = await service.claim_reserved("w", 1, 30)
    await service.report(running, Progress(progress=50, message="downloading"))
    body = (await client.get(f"/tasks/{task.id}/")).json()
    assert body["state"] == "running" and body["progress"] == {
        "percent": 50.0,
        "message": "downloading",
    }
    assert body["start_time"].endswith("Z")
    await service.finish(running, State.FAILED, error=ErrorInfo("ValueError", "bad feed", "tb"))
    body = (await client.get(f"/tasks/{task.id}/")).json()
    assert (body["state"], body["exception"], body["traceback"]) == (
        "error",
        "ValueError: bad feed",
        "tb",
    )
    scheduled = await service.submit("long_running", {}, tenant="acme", delay=3600)
    body = (await client.get(f"/tasks/{scheduled.id}/")).json()
    assert body["scheduler"] == "at" and body["scheduled_time"].endswith("Z")


async def test_v1_lists_by_id_and_state_and_history_only_when_asked(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    old = await sync(service, "a")
    await run(service)
    await RetentionService(service, archive_after=0, purge_after=math.inf).run()
    done = await sync(service, "b")
    await run(service)
    waiting = await sync(service, "c")
    held = await sync(service, "d")
    await service.suspend(held.id)

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/tasks/{query}")
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    assert await ids("") == [done.id, waiting.id, held.id]
    assert await ids("?state=current") == [done.id, waiting.id, held.id]
    assert await ids("?state=waiting") == [waiting.id]
    assert await ids("?state=INCOMPLETE") == [waiting.id, held.id]
    assert await ids("?state=complete") == [done.id]
    assert await ids("?state=archived") == [old.id]
    assert await ids("?state=complete&state=archived") == [done.id, old.id]
    assert await ids(f"?id={waiting.id}&id={old.id}") == [waiting.id]
    assert (await client.get(f"/tasks/{old.id}/")).json()["state"] == "finished"
    response = await client.get("/tasks/?state=sleeping")
    assert response.status_code == 400 and response.json() == "Unknown state: sleeping"


async def test_v1_cancel_delete_and_not_found(
    client: httpx.AsyncClient, service: TaskService, admin: str
) -> None:
    waiting = await sync(service)
    canceled = await client.post(f"/tasks/{waiting.id}/cancel/")
    assert canceled.status_code == 202 and canceled.json()["state"] == "canceled"
    again = await client.post(f"/tasks/{waiting.id}/cancel/")
    assert again.status_code == 202 and again.json()["state"] == "canceled"
    missing = await client.get(f"/tasks/{UNKNOWN}/")
    assert missing.status_code == 404 and missing.json() == f"Task not found: {UNKNOWN}"
    assert (await client.get("/tasks/not-a-uuid/")).status_code == 404
    assert (await client.delete(f"/tasks/{waiting.id}/")).status_code == 403  # a super user's
    async with client_for(service, {"Authorization": f"Bearer {admin}"}) as root:
        deleted = await root.delete(f"/tasks/{waiting.id}/")
        assert deleted.status_code == 202
        assert (await root.get(f"/tasks/{waiting.id}/")).status_code == 404
        queued = await sync(service, "q")
        assert (await root.delete(f"/tasks/{queued.id}/")).json()["state"] == "canceled"


async def test_v1_snapshots_are_json_text_for_super_users(
    client: httpx.AsyncClient, service: TaskService, admin: str
) -> None:
    task = await sync(service, timeout=60)
    assert (await client.get("/tasks/snapshots/")).status_code == 403
    async with client_for(service, basic("root", admin)) as root:
        listed = (await root.get("/tasks/snapshots/")).json()
        assert [s["id"] for s in listed] == [task.id]
        snapshot = (await root.get(f"/tasks/{task.id}/snapshot/")).json()
        assert set(snapshot) == SNAPSHOT_FIELDS
        assert orjson.loads(snapshot["kwargs"]) == {"repo_id": "zoo", "feed": None}
        assert orjson.loads(snapshot["callable"]) == "taskgate.example.sync_repository"
        assert orjson.loads(snapshot["timeout"]) == 60 and orjson.loads(snapshot["args"]) == []
        refused = await root.delete(f"/tasks/{task.id}/snapshot/")
        assert refused.status_code == 409 and "stays until it has ended" in refused.json()
        await run(service, result={"repo_id": "zoo"})
        gone = await root.delete(f"/tasks/{task.id}/snapshot/")
        assert gone.status_code == 200 and orjson.loads(gone.json()["result"])["repo_id"] == "zoo"
        assert (await root.get(f"/tasks/{task.id}/snapshot/")).status_code == 404


async def test_snapshots_carry_the_schedule_s_thresholds_and_cancel_attempts(
    service: TaskService, admin: str
) -> None:
    schedule = await ScheduleService(service).create(
        "nightly",
        "sync_repository",
        "R/2099-01-01T00:00:00Z/P1D",
        {"repo_id": "s"},
        tenant="acme",
        user="ann",
        failure_threshold=3,
        schedule_threshold=30,
    )
    run_task = await service.submit(
        "sync_repository", {"repo_id": "s"}, tenant="acme", schedule_id=schedule.id
    )
    await service.claim_reserved("w", 1, 30)
    await service.cancel(run_task.id)
    await service.cancel(run_task.id)
    async with client_for(service, basic("root", admin)) as root:
        snapshot = (await root.get(f"/v1/tasks/{run_task.id}/snapshot/")).json()
    assert snapshot["failure_threshold"] == 3 and orjson.loads(snapshot["schedule_threshold"]) == 30
    assert snapshot["cancel_attempts"] == 2


# -- Pulp 2 -----------------------------------------------------------------------------


async def test_a_v2_kickoff_report_cancel_and_tags(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    kicked = await client.post("/v2/repositories/zoo/actions/sync/", json={})
    assert kicked.status_code == 202, kicked.text
    report = kicked.json()
    [spawned] = report["spawned_tasks"]
    assert report["result"] is None and report["error"] is None
    assert spawned["_href"] == f"/pulp/api/v2/tasks/{spawned['task_id']}/"
    body = (await client.get(spawned["_href"].removeprefix("/pulp/api"))).json()
    assert body["state"] == "waiting" and body["task_type"] == "sync_repository"
    assert body["tags"] == ["pulp:repository:zoo", "pulp:action:sync_repository"]
    assert "queue" not in body and body["spawned_tasks"] == []
    tagged = (await client.get("/v2/tasks/?tag=pulp:repository:zoo")).json()
    assert [t["task_id"] for t in tagged] == [spawned["task_id"]]
    assert (await client.get("/v2/tasks/?tag=pulp:repository:elsewhere")).json() == []
    canceled = await client.delete(f"/v2/tasks/{spawned['task_id']}/")
    assert canceled.status_code == 200 and canceled.json() is None
    again = await client.delete(f"/v2/tasks/{spawned['task_id']}/")
    assert again.status_code == 200 and again.json() is None  # ended: a no-op, no 409
    assert (await client.get(f"/v2/tasks/{spawned['task_id']}/")).json()["state"] == "canceled"
    v2_error(await client.get(f"/v2/tasks/{UNKNOWN}/"), 404, "PLP0009")
    v2_error(await client.delete(f"/v2/tasks/{UNKNOWN}/"), 404, "PLP0009")


async def test_a_v2_group_kickoff_summary_and_cancel(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    kicked = await client.post("/v2/repositories/actions/sync/", json={"repo_ids": ["a", "b", "c"]})
    assert kicked.status_code == 202, kicked.text
    group = kicked.json()
    assert group["_href"] == f"/pulp/api/v2/task_groups/{group['group_id']}/"
    await run(service)
    summary = (await client.get(f"/v2/task_groups/{group['group_id']}/state_summary/")).json()
    assert summary == {
        "accepted": 0, "finished": 1, "running": 0, "canceled": 0, "waiting": 2,
        "skipped": 0, "suspended": 0, "error": 0, "total": 3,
    }  # fmt: skip
    assert (await client.delete(f"/v2/task_groups/{group['group_id']}/")).json() is None
    summary = (await client.get(f"/v2/task_groups/{group['group_id']}/state_summary/")).json()
    assert (summary["canceled"], summary["finished"]) == (2, 1)
    v2_error(await client.get("/v2/task_groups/nope/state_summary/"), 404, "PLP0009")
    v2_error(await client.post("/v2/repositories/actions/sync/", json={}), 400, "PLP0015")
    v2_error(await client.post("/v2/repositories/bad%20id/actions/sync/", json={}), 400, "PLP0015")


async def test_v2_search_and_purge(
    client: httpx.AsyncClient, service: TaskService, admin: str
) -> None:
    first = await sync(service, "a")
    await run(service)
    second = await sync(service, "b")
    await run(service, State.FAILED, error=ErrorInfo("ValueError", "bad"))
    waiting = await sync(service, "c")

    async def search(criteria: dict[str, Any]) -> Any:
        response = await client.post("/v2/tasks/search/", json={"criteria": criteria})
        assert response.status_code == 200, response.text
        return response.json()

    found = await search(
        {
            "filters": {"state": {"$in": ["finished", "error"]}},
            "fields": ["task_id", "state"],
            "sort": [["task_id", "ascending"]],
        }
    )
    assert found == [
        {"task_id": first.id, "state": "finished"},
        {"task_id": second.id, "state": "error"},
    ]
    assert [r["task_id"] for r in await search({"filters": {"state": "waiting"}})] == [waiting.id]
    assert await search({"filters": {"task_id": second.id}, "fields": ["error"]}) == [
        {
            "error": {
                "code": "PLP0000",
                "description": "bad",
                "data": {"type": "ValueError"},
                "sub_errors": [],
            }
        }
    ]
    limited = await search({"sort": [["task_id", "descending"]], "limit": 1, "skip": 1})
    assert [r["task_id"] for r in limited] == [second.id]
    for bad in (
        {"filters": {"colour": "red"}},
        {"filters": {"state": {"$gt": 1}}},
        {"sort": [["task_id", "sideways"]]},
        {"limit": -1},
        {"fields": "task_id"},
        {"everything": True},
    ):
        response = await client.post("/v2/tasks/search/", json={"criteria": bad})
        v2_error(response, 400, "PLP0015")
    v2_error(
        await client.post(
            "/v2/tasks/search/", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
        "PLP0015",
    )

    v2_error(await client.delete("/v2/tasks/?state=finished"), 403, "PLP0026")  # super user
    async with client_for(service, basic("root", admin)) as root:
        v2_error(await root.delete("/v2/tasks/"), 403, "PLP1012")
        v2_error(await root.delete("/v2/tasks/?state=waiting"), 400, "PLP1011")
        purged = await root.delete("/v2/tasks/?state=finished&state=skipped")
        assert purged.status_code == 204
    assert (await client.get(f"/v2/tasks/{first.id}/")).status_code == 404
    assert (await client.get(f"/v2/tasks/{second.id}/")).json()["state"] == "error"


# -- auth, tenants, bad input -------------------------------------------------------


async def test_auth_and_tenants(service: TaskService, keys: KeyService, key: str) -> None:
    task = await sync(service)
    async with client_for(service, {}) as nobody:
        assert (await nobody.get(f"/tasks/{task.id}/")).status_code == 401
        v2_error(await nobody.get(f"/v2/tasks/{task.id}/"), 401, "PLP0025")
    async with client_for(service, basic("bob", key)) as wrong_user:
        assert (await wrong_user.get(f"/tasks/{task.id}/")).status_code == 401
    async with client_for(service, {"Authorization": "Basic !!!"}) as garbled:
        assert (await garbled.get(f"/tasks/{task.id}/")).status_code == 401
    async with client_for(service, {"Authorization": f"Bearer {key}"}) as bearer:
        assert (await bearer.get(f"/tasks/{task.id}/")).status_code == 200
    other = (await keys.create(tenant="globex", user="g", role="write")).token
    async with client_for(service, basic("g", other)) as globex:
        assert (await globex.get(f"/tasks/{task.id}/")).status_code == 404
        v2_error(await globex.get(f"/v2/tasks/{task.id}/"), 404, "PLP0009")
        assert (await globex.get("/tasks/")).json() == []
        assert (await globex.post("/v2/tasks/search/", json={"criteria": {}})).json() == []
    reader = (await keys.create(tenant="acme", user="r", role="read")).token
    async with client_for(service, basic("r", reader)) as r:
        v2_error(await r.post("/v2/repositories/zoo/actions/sync/", json={}), 403, "PLP0026")
        assert (await r.post(f"/tasks/{task.id}/cancel/")).status_code == 403


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tasks/x/y/")).status_code == 404
    v2_error(await client.get("/v2/repositories/"), 404, "PLP0009")
    v2_error(await client.put(f"/v2/tasks/{UNKNOWN}/"), 405, "PLP0017")
    assert (await client.put(f"/tasks/{UNKNOWN}/")).status_code == 405
    assert (await client.get("/tasks")).status_code == 200  # the trailing slash is optional
