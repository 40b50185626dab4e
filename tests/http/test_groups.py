"""``/v1/groups``, suspend and resume, reservations on submit, and the list filters for
history, groups, children and resources; bad input of each."""

from __future__ import annotations

import math

import httpx
from api_helpers import claim, fields, finish, problem, submit

from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.model import State
from taskgate.retention import RetentionService
from taskgate.service import Submission, TaskService


def as_key(api: Application, client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_a_group_is_submitted_followed_and_canceled(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    body = {
        "tasks": [
            {"type": "echo", "params": {"name": "a"}},
            {"type": "noop", "priority": 3, "labels": {"k": "v"}},
            {"type": "add", "params": {"a": 1, "b": 2}},
        ]
    }
    response = await client.post("/v1/groups", json=body)
    assert response.status_code == 202, response.text
    submitted = response.json()
    group_id = submitted["id"]
    assert response.headers["location"] == f"/v1/groups/{group_id}" == submitted["group"]
    assert [t["type"] for t in submitted["tasks"]] == ["echo", "noop", "add"]
    assert {t["group_id"] for t in submitted["tasks"]} == {group_id}
    assert submitted["tasks"][1]["priority"] == 3

    summary = (await client.get(f"/v1/groups/{group_id}")).json()
    assert summary["total"] == 3 and summary["states"]["queued"] == 3 and not summary["ended"]
    listed = await client.get(summary["tasks"])
    assert len(listed.json()["items"]) == 3

    await client.post(f"/v1/tasks/{submitted['tasks'][1]['id']}/suspend")
    await finish(service, submitted["tasks"][0]["id"])  # claims the add task too
    canceled = (await client.post(f"/v1/groups/{group_id}/cancel")).json()
    assert canceled["states"]["succeeded"] == 1
    assert canceled["states"]["canceled"] == 1 and canceled["states"]["canceling"] == 1


async def test_bad_groups_are_refused_naming_the_item(client: httpx.AsyncClient) -> None:
    doc = problem(
        await client.post(
            "/v1/groups",
            json={"tasks": [{"type": "noop"}, {"type": "echo", "params": {"nom": "x"}}]},
        ),
        422,
    )
    assert "tasks.1.params.name" in fields(doc) or "tasks.1.params.nom" in fields(doc)
    assert fields(problem(await client.post("/v1/groups", json={"tasks": []}), 422)) == {"tasks"}
    assert "colour" in fields(problem(await client.post("/v1/groups", json={"colour": 1}), 422))
    doc = problem(
        await client.post("/v1/groups", json={"tasks": [{"type": "noop", "group_id": "g"}]}), 422
    )
    assert fields(doc) == {"tasks.0.group_id"}
    assert fields(problem(await client.post("/v1/groups", json={"tasks": [3]}), 422)) == {"tasks.0"}
    assert (await client.get("/v1/tasks")).json()["items"] == []  # nothing stored
    problem(await client.get("/v1/groups/no-such-group"), 404, "group-not-found")
    problem(await client.get("/v1/groups/bad%20id"), 400)


async def test_a_group_is_seen_only_by_its_tenant_and_changed_only_by_writers(
    api: Application, client: httpx.AsyncClient, keys: KeyService
) -> None:
    group_id = (await client.post("/v1/groups", json={"tasks": [{"type": "noop"}]})).json()["id"]
    stranger = (await keys.create(tenant="other", user="x", role="write")).token
    async with as_key(api, client, stranger) as c:
        problem(await c.get(f"/v1/groups/{group_id}"), 404)
        problem(await c.post(f"/v1/groups/{group_id}/cancel"), 404)
    reader = (await keys.create(tenant="default", user="r", role="read")).token
    async with as_key(api, client, reader) as c:
        assert (await c.get(f"/v1/groups/{group_id}")).status_code == 200
        problem(await c.post(f"/v1/groups/{group_id}/suspend"), 403)
        problem(await c.post("/v1/groups", json={"tasks": [{"type": "noop"}]}), 403)


async def test_suspend_and_resume_a_task_and_a_group(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    suspended = await client.post(f"/v1/tasks/{task['id']}/suspend")
    assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
    assert await service.claim("w", 10, 30) == []
    problem(await client.post(f"/v1/tasks/{task['id']}/suspend"), 409)
    resumed = await client.post(f"/v1/tasks/{task['id']}/resume")
    assert resumed.json()["state"] == "queued"
    problem(await client.post(f"/v1/tasks/{task['id']}/resume"), 409)
    problem(await client.post("/v1/tasks/nope/suspend"), 400)
    listed = await client.get("/v1/tasks", params={"state": "suspended"})
    assert listed.json()["items"] == []

    group_id, _ = await service.submit_group([("noop", {}, Submission())] * 2)
    summary = (await client.post(f"/v1/groups/{group_id}/suspend")).json()
    assert summary["states"]["suspended"] == 2
    summary = (await client.post(f"/v1/groups/{group_id}/resume")).json()
    assert summary["states"]["queued"] == 2


async def test_reservations_are_submitted_and_shown(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/tasks",
        json={
            "type": "noop",
            "exclusive_resources": ["repository:1"],
            "shared_resources": ["remote:9"],
            "group_id": "nightly",
        },
    )
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["reserved_resources"] == {
        "exclusive": ["repository:1"],
        "shared": ["remote:9"],
        "limits": [],
    }
    assert task["group_id"] == "nightly"
    by_query = await submit(client, "noop", exclusive_resource=["a", "b"], group_id="nightly")
    assert by_query["reserved_resources"]["exclusive"] == ["a", "b"]
    plain = await submit(client, "noop")
    assert plain["reserved_resources"] is None and plain["children"] == []
    listed = (await client.get("/v1/tasks", params={"resource": "remote:9"})).json()["items"]
    assert [t["id"] for t in listed] == [task["id"]]
    in_group = (await client.get("/v1/tasks", params={"group_id": "nightly"})).json()["items"]
    assert {t["id"] for t in in_group} == {task["id"], by_query["id"]}

    bad = problem(
        await client.post(
            "/v1/tasks", json={"type": "noop", "exclusive_resources": "repository:1"}
        ),
        422,
    )
    assert fields(bad) == {"exclusive_resources"}
    bad = problem(await client.post("/v1/tasks", json={"type": "noop", "group_id": "a b"}), 422)
    assert fields(bad) == {"group_id"}
    bad = problem(await client.post("/v1/operations/noop?shared_resource="), 422)
    assert fields(bad) == {"shared_resource"}


async def test_history_and_children_are_listed(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    old = await submit(client, "noop")
    await finish(service, old["id"])
    await RetentionService(service, archive_after=0, purge_after=math.inf).run()
    live = await submit(client, "noop")
    hot = (await client.get("/v1/tasks")).json()["items"]
    assert [t["id"] for t in hot] == [live["id"]]
    archived = (await client.get("/v1/tasks?archived=true")).json()["items"]
    assert [t["id"] for t in archived] == [old["id"]] and archived[0]["archived"] is True
    both = (await client.get("/v1/tasks?archived=any")).json()["items"]
    assert [t["id"] for t in both] == [live["id"], old["id"]]
    got = await client.get(f"/v1/tasks/{old['id']}")
    assert got.status_code == 200 and got.json()["archived"] is True
    problem(await client.get("/v1/tasks?archived=maybe"), 400)

    parent = await claim(service, live["id"])
    child = await service.spawn(parent, "echo", {"name": "c"}, Submission())
    kids = (await client.get("/v1/tasks", params={"parent_id": parent.id})).json()["items"]
    assert [t["id"] for t in kids] == [child.id]
    assert (await client.get(f"/v1/tasks/{parent.id}")).json()["children"] == [child.id]
    problem(await client.get("/v1/tasks?parent_id=nope"), 400)
    assert State.RUNNING.value == (await client.get(f"/v1/tasks/{parent.id}")).json()["state"]
