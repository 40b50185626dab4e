"""``kill -9`` of the scheduler's holder, in a cluster of 2 API and 3 worker processes:
another worker takes the role over within seconds, and the task the killed worker was
running is recovered (ended "worker lost") by the new scheduler's reaper, soon after its
lease runs out, while the other workers' tasks keep running."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from scripts.cluster import Cluster

from taskgate.model import WORKER_LOST
from taskgate.runtime.elector import SCHEDULER
from taskgate.service import TaskService
from taskgate.storage import connect

from .app import app
from .conftest import cluster_of

pytestmark = pytest.mark.postgres

LEASE = 2.0
QUICK = {
    "TASKGATE_LEASE": str(LEASE),
    "TASKGATE_HEARTBEAT_INTERVAL": "0.5",
    "TASKGATE_REAPER_INTERVAL": "0.5",
    "TASKGATE_LEADER_INTERVAL": "0.5",
    "TASKGATE_POLL_INTERVAL": "0.5",
    # one task per worker, claimed one at a time: three holds busy all three workers
    "TASKGATE_CONCURRENCY": "1",
    "TASKGATE_CLAIM_BATCH": "1",
    "TASKGATE_SHUTDOWN_GRACE": "1",
    "TASKGATE_CANCEL_GRACE": "1",
}
T = TypeVar("T")
DEADLINE = 30.0
"""Seconds after which a wait gives up (the test then fails saying what it waited for)."""


@pytest.fixture
def cluster(database: str) -> Iterator[Cluster]:
    with cluster_of(database, **QUICK) as running:
        yield running


async def scheduler(service: TaskService) -> tuple[str, int] | None:
    """The scheduler's holder (worker id, pid), if one is recorded."""
    for leader in await service.leaders():
        if leader.name == SCHEDULER:
            return leader.holder, leader.pid
    return None


async def until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """What ``check`` returns once it is not None; fails after `DEADLINE` s."""
    deadline = time.monotonic() + DEADLINE
    while (value := await check()) is None:
        assert time.monotonic() < deadline, f"waited {DEADLINE:g} s for {what}"
        await asyncio.sleep(0.1)
    return value


async def test_the_scheduler_holder_killed(cluster: Cluster, database: str) -> None:
    service = TaskService(connect(database, pool_size=2), app)
    await service.open()
    headers = {"Authorization": f"Bearer {cluster.key}"}
    pids = {w.pid for w in cluster.workers}
    try:
        async with httpx.AsyncClient(base_url=cluster.urls[1], headers=headers) as api:
            ids = []
            for _ in cluster.workers:
                r = await api.post("/v1/operations/hold", json={})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])

            async def tasks() -> dict[str, Any]:
                return {i: (await api.get(f"/v1/tasks/{i}")).json() for i in ids}

            async def all_running() -> dict[str, Any] | None:
                now = await tasks()
                return now if all(t["state"] == "running" for t in now.values()) else None

            running = await until(all_running, "a hold task running on each worker")
            holder, pid = await until(lambda: scheduler(service), "a scheduler")
            assert pid in pids
            (doomed,) = [i for i, t in running.items() if t["worker"] == holder]

            os.kill(pid, signal.SIGKILL)

            async def successor() -> tuple[str, int] | None:
                now = await scheduler(service)
                return now if now is not None and now[1] != pid else None

            _, new_pid = await until(successor, "another worker to take the scheduler over")
            assert new_pid in pids - {pid}

            async def recovered() -> dict[str, Any] | None:
                task: dict[str, Any] = (await api.get(f"/v1/tasks/{doomed}")).json()
                return task if task["state"] != "running" else None

            task = await until(recovered, "the killed worker's task to be recovered")
            assert task["state"] == "failed" and task["error"]["type"] == WORKER_LOST, task
            others = await tasks()
            assert all(others[i]["state"] == "running" for i in ids if i != doomed), others
    finally:
        await service.close()
