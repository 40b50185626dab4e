"""``DELETE /v1/tasks``: purge ended tasks by filter; admin only; bad input."""

from __future__ import annotations

import httpx
from api_helpers import finish, problem, submit

from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.model import State
from taskgate.service import TaskService


def other(api: Application, client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_an_admin_purges_ended_tasks_by_filter(
    api: Application, client: httpx.AsyncClient, service: TaskService, keys: KeyService
) -> None:
    failed = await finish(service, (await submit(client, "noop"))["id"], State.FAILED)
    ok = await finish(service, (await submit(client, "noop"))["id"], State.SUCCEEDED)
    waiting = await submit(client, "noop")
    problem(await client.delete("/v1/tasks", params={"state": "failed"}), 403)  # write key
    admin = (await keys.create(tenant="ops", user="root", role="admin")).token
    async with other(api, client, admin) as c:
        response = await c.delete("/v1/tasks", params={"state": "failed", "tenant": "default"})
        assert response.status_code == 200, response.text
        assert response.json() == {"purged": 1}
        problem(await c.get(f"/v1/tasks/{failed.id}"), 404)
        assert (await c.get(f"/v1/tasks/{ok.id}")).status_code == 200
        everything = await c.delete("/v1/tasks", params={"finished_before": "2999-01-01T00:00:00Z"})
        assert everything.json() == {"purged": 1}
        assert (await c.get(f"/v1/tasks/{waiting['id']}")).status_code == 200  # still waiting
        doc = problem(await c.delete("/v1/tasks"), 400)
        assert "state= or finished_before=" in doc["detail"]
        problem(await c.delete("/v1/tasks", params={"state": "running"}), 400)
        problem(await c.delete("/v1/tasks", params={"state": "nope"}), 400)
        problem(await c.delete("/v1/tasks", params={"finished_before": "yesterday"}), 400)
        problem(await c.delete("/v1/tasks", params={"color": "red", "state": "failed"}), 400)
