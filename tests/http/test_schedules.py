"""``/v1/schedules``: create, list, read, change, pause, resume, run now, delete; bad
input as problem documents; tenants and roles."""

from __future__ import annotations

from typing import Any

import httpx
from api_helpers import fields, finish, problem

from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.model import State
from taskgate.service import TaskService

NIGHTLY = {
    "name": "nightly",
    "type": "echo",
    "params": {"name": "db1"},
    "recurrence": "0 3 * * *",
    "timezone": "Europe/Paris",
    "failure_threshold": 3,
    "options": {"priority": 7, "labels": {"team": "ops"}, "timeout": 600},
}


def other(api: Application, client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {key}"},
    )


async def create(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/schedules", json={**NIGHTLY, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/schedules/{body['id']}"
    return body


async def test_create_then_read_by_id_and_by_name(client: httpx.AsyncClient) -> None:
    made = await create(client)
    assert made["name"] == "nightly" and made["tenant"] == "default"
    assert made["user"] == "tester" and made["enabled"] is True
    assert made["params"] == {"name": "db1", "count": 1}  # validated, with defaults
    assert made["options"] == NIGHTLY["options"]
    assert made["overlap"] == "skip" and made["failure_threshold"] == 3
    assert made["next_run"].endswith(("T02:00:00Z", "T01:00:00Z"))  # 03:00 in Paris
    assert made["remaining_runs"] is None and made["total_run_count"] == 0
    for key in (made["id"], "nightly"):
        response = await client.get(f"/v1/schedules/{key}")
        assert response.status_code == 200 and response.json() == made


async def test_run_now_submits_a_task_of_the_schedule(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    made = await create(client)
    response = await client.post("/v1/schedules/nightly/run")
    assert response.status_code == 202, response.text
    task = response.json()
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert task["schedule_id"] == made["id"] and task["type"] == "echo"
    assert (task["priority"], task["labels"], task["timeout"]) == (7, {"team": "ops"}, 600)
    assert (task["user"], task["user_id"]) == ("tester", 7)
    doc = problem(await client.post("/v1/schedules/nightly/run"), 409, "conflict")
    assert task["id"] in doc["detail"]
    await finish(service, task["id"], State.SUCCEEDED)
    assert (await client.post(f"/v1/schedules/{made['id']}/run")).status_code == 202
    listed = await client.get("/v1/tasks", params={"schedule_id": made["id"]})
    assert len(listed.json()["items"]) == 2
    after = (await client.get("/v1/schedules/nightly")).json()
    assert after["total_run_count"] == 2 and after["last_run_at"] is not None


async def test_patch_pause_resume_delete(client: httpx.AsyncClient) -> None:
    made = await create(client)
    response = await client.patch(
        "/v1/schedules/nightly",
        json={"recurrence": "R2/PT1H", "timezone": "UTC", "overlap": "queue"},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["recurrence"] == "R2/PT1H" and changed["remaining_runs"] == 2
    assert changed["overlap"] == "queue" and changed["version"] > made["version"]
    paused = (await client.post("/v1/schedules/nightly/pause")).json()
    assert paused["enabled"] is False and paused["next_run"] is None
    assert paused["disabled_reason"] == "paused"
    resumed = (await client.post("/v1/schedules/nightly/resume")).json()
    assert resumed["enabled"] is True and resumed["next_run"] is not None
    assert (await client.delete("/v1/schedules/nightly")).status_code == 204
    problem(await client.get(f"/v1/schedules/{made['id']}"), 404, "schedule-not-found")


async def test_list_pages_by_name(client: httpx.AsyncClient) -> None:
    for name in ("c", "a", "b"):
        await create(client, name=name)
    await create(client, name="d", type="noop", params={}, enabled=False)
    first = await client.get("/v1/schedules", params={"limit": 2})
    body = first.json()
    assert [s["name"] for s in body["items"]] == ["a", "b"]
    assert 'rel="next"' in first.headers["link"]
    rest = await client.get("/v1/schedules", params={"limit": 2, "after": body["next_after"]})
    assert [s["name"] for s in rest.json()["items"]] == ["c", "d"]
    disabled = await client.get("/v1/schedules", params={"enabled": "false"})
    assert [s["name"] for s in disabled.json()["items"]] == ["d"]
    echo = await client.get("/v1/schedules", params={"type": "echo"})
    assert [s["name"] for s in echo.json()["items"]] == ["a", "b", "c"]


async def test_bad_input_is_a_problem_naming_the_fields(client: httpx.AsyncClient) -> None:
    bad = {
        "name": "no spaces please",
        "recurrence": 5,
        "enabled": "yes",
        "failure_threshold": True,
        "options": {"delay": 3, "priority": "high"},
        "colour": "blue",
    }
    doc = problem(await client.post("/v1/schedules", json={**NIGHTLY, **bad}), 422)
    assert {
        "recurrence",
        "enabled",
        "failure_threshold",
        "options.delay",
        "options.priority",
        "colour",
    } <= fields(doc)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "no spaces please"}, "name"),
        ({"recurrence": "every tuesday"}, "recurrence"),
        ({"recurrence": "@daily", "timezone": "Atlantis/Capital"}, "recurrence"),
        ({"params": {"name": 5}}, "name"),
        ({"overlap": "maybe"}, "overlap"),
        ({"schedule_threshold": -5}, "schedule_threshold"),
    ]
    for change, field in cases:
        doc = problem(await client.post("/v1/schedules", json={**NIGHTLY, **change}), 422)
        assert field in str(doc["errors"]), (change, doc)
    missing = problem(await client.post("/v1/schedules", json={"name": "x"}), 422)
    assert fields(missing) == {"type", "recurrence"}
    problem(
        await client.post("/v1/schedules", json={**NIGHTLY, "type": "nope"}),
        404,
        "operation-not-found",
    )
    await create(client)
    problem(await client.post("/v1/schedules", json=NIGHTLY), 409, "conflict")
    problem(await client.patch("/v1/schedules/nightly", json={"name": "x"}), 422)
    problem(await client.patch("/v1/schedules/nightly", json=[1]), 422)
    problem(await client.post("/v1/schedules", content=b"{", headers=JSON), 400)
    problem(await client.get("/v1/schedules", params={"limit": 0}), 400)
    problem(await client.get("/v1/schedules/nope"), 404, "schedule-not-found")
    problem(await client.post("/v1/schedules/nope/run"), 404, "schedule-not-found")
    assert (await client.get("/v1/schedules")).json()["items"][0]["name"] == "nightly"


JSON = {"content-type": "application/json"}


async def test_tenants_and_roles(
    api: Application, client: httpx.AsyncClient, keys: KeyService
) -> None:
    made = await create(client)
    stranger = (await keys.create(tenant="other", user="x", role="write")).token
    reader = (await keys.create(tenant="default", user="r", role="read")).token
    admin = (await keys.create(tenant="ops", user="root", role="admin")).token
    async with other(api, client, stranger) as c:
        problem(await c.get(f"/v1/schedules/{made['id']}"), 404)
        problem(await c.get("/v1/schedules/nightly"), 404)
        problem(await c.post(f"/v1/schedules/{made['id']}/run"), 404)
        assert (await c.get("/v1/schedules")).json()["items"] == []
        mine = await c.post("/v1/schedules", json=NIGHTLY)  # the name is free in its tenant
        assert mine.status_code == 201 and mine.json()["tenant"] == "other"
    async with other(api, client, reader) as c:
        assert (await c.get("/v1/schedules/nightly")).status_code == 200
        problem(await c.post("/v1/schedules/nightly/pause"), 403)
        problem(await c.post("/v1/schedules", json={**NIGHTLY, "name": "n2"}), 403)
    async with other(api, client, admin) as c:
        listed = (await c.get("/v1/schedules")).json()["items"]
        assert sorted(s["tenant"] for s in listed) == ["default", "other"]
        assert (await c.post(f"/v1/schedules/{made['id']}/pause")).status_code == 200
