"""Acknowledgment: one task, many by ids or filters, the list filter, who may do it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import claim, fields, finish, problem, submit

from taskgate import service as service_module
from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.model import State
from taskgate.service import TaskService

UNKNOWN = "01900000-0000-7000-8000-000000000000"


def other(api: Application, client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    """A client of the same app with another key."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {key}"},
    )


async def listed(client: httpx.AsyncClient, **query: Any) -> set[str]:
    response = await client.get("/v1/tasks", params={"limit": 500, **query})
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["items"]}


async def test_acknowledge_one_task(client: httpx.AsyncClient, service: TaskService) -> None:
    done = await finish(service, (await submit(client, "noop"))["id"], State.FAILED)
    response = await client.post(f"/v1/tasks/{done.id}/acknowledge")
    assert response.status_code == 200
    body = response.json()
    assert body["acknowledged_by"] == "tester"  # the key's user
    assert body["acknowledged_at"].endswith("Z")
    assert body["state"] == "failed"  # unchanged
    assert response.headers["etag"] == f'"{done.id[-12:]}.{done.version + 1}"'
    assert "retry-after" not in response.headers
    read = await client.get(f"/v1/tasks/{done.id}")
    assert read.json() == body and read.headers["etag"] == response.headers["etag"]
    # again: nothing changes, the first acknowledgment stands
    again = await client.post(f"/v1/tasks/{done.id}/acknowledge")
    assert again.json() == body and again.headers["etag"] == response.headers["etag"]


async def test_a_running_task_can_be_acknowledged_and_keeps_running(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    running = await claim(service, (await submit(client, "noop"))["id"])
    response = await client.post(f"/v1/tasks/{running.id}/acknowledge")
    assert response.json()["state"] == "running"
    assert response.headers["retry-after"]
    # the worker's attempt still holds it
    assert await service.finish(running, State.SUCCEEDED) is not None


async def test_acknowledge_refusals(
    api: Application, client: httpx.AsyncClient, keys: KeyService
) -> None:
    task = await submit(client, "noop")
    problem(await client.post(f"/v1/tasks/{UNKNOWN}/acknowledge"), 404, "task-not-found")
    problem(await client.post("/v1/tasks/nope/acknowledge"), 400, "invalid-id")
    reader = (await keys.create(tenant="default", user="r", role="read")).token
    stranger = (await keys.create(tenant="other", user="s", role="write")).token
    async with other(api, client, reader) as as_reader, other(api, client, stranger) as as_other:
        problem(await as_reader.post(f"/v1/tasks/{task['id']}/acknowledge"), 403)
        problem(await as_reader.post("/v1/tasks/acknowledge", json={}), 403)
        problem(await as_other.post(f"/v1/tasks/{task['id']}/acknowledge"), 404)
        # bulk by id skips what another tenant cannot see
        response = await as_other.post("/v1/tasks/acknowledge", json={"ids": [task["id"]]})
        assert response.json() == {"acknowledged": 0}
        assert (await as_other.post("/v1/tasks/acknowledge", json={})).json() == {"acknowledged": 0}
    assert (await client.get(f"/v1/tasks/{task['id']}")).json()["acknowledged_at"] is None


async def test_acknowledge_many_by_ids(client: httpx.AsyncClient, service: TaskService) -> None:
    a, b, c = [await submit(client, "noop") for _ in range(3)]
    response = await client.post(
        "/v1/tasks/acknowledge", json={"ids": [a["id"], b["id"], UNKNOWN, a["id"]]}
    )
    assert response.status_code == 200
    assert response.json() == {"acknowledged": 2}
    assert await listed(client, acknowledged="true") == {a["id"], b["id"]}
    assert await listed(client, acknowledged="false") == {c["id"]}
    for task in (a, b):
        got = await client.get(f"/v1/tasks/{task['id']}")
        assert got.json()["acknowledged_by"] == "tester"
        assert got.headers["etag"] == f'"{task["id"][-12:]}.2"'  # the version rose
    again = await client.post("/v1/tasks/acknowledge", json={"ids": [a["id"], c["id"]]})
    assert again.json() == {"acknowledged": 1}
    assert (await client.post("/v1/tasks/acknowledge", json={"ids": []})).json() == {
        "acknowledged": 0
    }


async def test_acknowledge_many_by_filter(
    api: Application, client: httpx.AsyncClient, service: TaskService, keys: KeyService
) -> None:
    failed = await finish(service, (await submit(client, "noop"))["id"], State.FAILED)
    echo_failed = await finish(
        service, (await submit(client, "echo", {"name": "e"}))["id"], State.FAILED
    )
    ok = await finish(service, (await submit(client, "noop"))["id"], State.SUCCEEDED)
    queued = await submit(client, "noop")
    stranger = (await keys.create(tenant="other", user="s", role="write")).token
    async with other(api, client, stranger) as as_other:
        foreign = await submit(as_other, "noop")
    response = await client.post(
        "/v1/tasks/acknowledge", json={"state": ["failed"], "type": ["noop"]}
    )
    assert response.json() == {"acknowledged": 1}
    assert await listed(client, acknowledged="true") == {failed.id}
    response = await client.post("/v1/tasks/acknowledge", json={"state": ["failed", "succeeded"]})
    assert response.json() == {"acknowledged": 2}
    assert await listed(client, acknowledged="true") == {failed.id, echo_failed.id, ok.id}
    # {} and no body at all: every task of the tenant not acknowledged yet
    assert (await client.post("/v1/tasks/acknowledge", json={})).json() == {"acknowledged": 1}
    assert await listed(client, acknowledged="false") == set()
    assert (await client.post("/v1/tasks/acknowledge")).json() == {"acknowledged": 0}
    stored = await service.get(queued["id"])
    assert stored.state is State.QUEUED and stored.acknowledged_by == "tester"
    assert (await service.get(foreign["id"])).acknowledged_at is None  # another tenant's


async def test_acknowledge_all_goes_in_batches(
    client: httpx.AsyncClient, service: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "ACK_BATCH", 3)
    tasks = await service.submit_many([("noop", {}) for _ in range(10)])
    response = await client.post("/v1/tasks/acknowledge", json={"type": ["noop"]})
    assert response.json() == {"acknowledged": 10}
    assert await listed(client, acknowledged="true") == {t.id for t in tasks}


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"idz": []}, {"idz"}),
        ({"ids": "x"}, {"ids"}),
        ({"ids": [1]}, {"ids"}),
        ({"ids": ["nope", UNKNOWN]}, {"ids[0]"}),
        ({"state": ["done"], "type": "noop"}, {"state[0]", "type"}),
        ({"state": [None]}, {"state"}),
    ],
)
async def test_acknowledge_many_refuses_a_bad_body(
    client: httpx.AsyncClient, body: dict[str, Any], bad: set[str]
) -> None:
    response = await client.post("/v1/tasks/acknowledge", json=body)
    assert fields(problem(response, 422)) == bad


async def test_acknowledge_many_takes_a_bounded_list_of_ids(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgate.http import acknowledge

    monkeypatch.setattr(acknowledge, "MAX_ACK_IDS", 2)
    response = await client.post("/v1/tasks/acknowledge", json={"ids": [UNKNOWN] * 3})
    assert fields(problem(response, 422)) == {"ids"}


async def test_acknowledge_many_refuses_what_is_not_a_json_object(
    client: httpx.AsyncClient,
) -> None:
    problem(await client.post("/v1/tasks/acknowledge", json=[]), 422)
    problem(
        await client.post(
            "/v1/tasks/acknowledge", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
    )
    problem(
        await client.post(
            "/v1/tasks/acknowledge", content=b"{}", headers={"content-type": "text/plain"}
        ),
        415,
    )


async def test_the_acknowledged_filter(client: httpx.AsyncClient) -> None:
    a, b = [await submit(client, "noop") for _ in range(2)]
    await client.post(f"/v1/tasks/{a['id']}/acknowledge")
    assert await listed(client, acknowledged="1") == {a["id"]}
    assert await listed(client, acknowledged="FALSE") == {b["id"]}
    assert await listed(client) == {a["id"], b["id"]}
    doc = problem(await client.get("/v1/tasks", params={"acknowledged": "maybe"}), 400)
    assert doc["parameter"] == "acknowledged"
