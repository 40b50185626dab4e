"""The API on the SQLite store: the read path (renderings checked against the stored
version) and a long poll woken by another connector on the same file, as a worker
process would wake it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from api_helpers import finish, follow, make_app, problem, submit

from taskgate.model import State
from taskgate.service import TaskService
from taskgate.storage import connect


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


async def test_submit_read_list_on_sqlite(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "echo", {"name": "a"})
    url = f"/v1/tasks/{task['id']}"
    assert (await client.get(url)).json() == task
    assert (await client.get(url)).json() == task  # a reused rendering
    await finish(service, task["id"], result=[1, 2])
    body = (await client.get(url)).json()
    assert (body["state"], body["result"]) == ("succeeded", [1, 2])
    assert [t["id"] for t in (await client.get("/v1/tasks")).json()["items"]] == [task["id"]]
    assert (await client.delete(url)).status_code == 204
    problem(await client.get(url), 404)
    assert (await client.get("/readyz")).status_code == 200


async def test_wait_is_woken_by_another_connector(client: httpx.AsyncClient, url: str) -> None:
    task = await submit(client, "noop")
    worker = TaskService(connect(url), make_app())  # another process, in effect
    await worker.open()
    try:

        async def work() -> None:
            await asyncio.sleep(0.05)
            await finish(worker, task["id"], State.SUCCEEDED, result="done")

        seen, _ = await asyncio.gather(follow(client, task["id"]), work())
    finally:
        await worker.close()
    assert seen[-1] == "succeeded"
    assert set(seen) <= {"queued", "running", "succeeded"}
    body = (await client.get(f"/v1/tasks/{task['id']}")).json()
    assert body["result"] == "done"
