"""Purging ended tasks by filter: what goes, what stays, in batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from taskgate import service as service_module
from taskgate.errors import InvalidRequest, TaskNotFound
from taskgate.model import State, TaskFilter
from taskgate.service import NewLogLine, TaskService

from .helpers import LEASE, WORKER, Clock


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def end(service: TaskService, state: State, type: str = "noop", **options: object) -> str:
    task = await service.submit(type, {"vmid": 1} if type == "vzdump" else {}, **options)
    [claimed] = [t for t in await service.claim(WORKER, 1000, LEASE) if t.id == task.id]
    await service.append_log(claimed.id, [NewLogLine("a line"), NewLogLine("another")])
    done = await service.finish(claimed, state)
    assert done is not None
    return task.id


async def test_purge_deletes_only_what_the_filters_select(
    service: TaskService, clock: Clock
) -> None:
    old_failed = await end(service, State.FAILED)
    old_ok = await end(service, State.SUCCEEDED)
    other_tenant = await end(service, State.FAILED, tenant="other")
    clock.advance(3600)
    new_failed = await end(service, State.FAILED)
    waiting = await service.submit("noop", {})
    running = await service.submit("vzdump", {"vmid": 2})
    await service.claim(WORKER, 1000, LEASE)

    assert (await service.log(old_failed)).total == 2
    purged = await service.purge(
        states=[State.FAILED], finished_before=at(clock.now - 60), tenant="default"
    )
    assert purged == 1
    with pytest.raises(TaskNotFound):
        await service.get(old_failed)
    with pytest.raises(TaskNotFound):
        await service.log(old_failed)  # its log went with it
    for kept in (old_ok, other_tenant, new_failed, waiting.id, running.id):
        await service.get(kept)
    assert (await service.log(old_ok)).total == 2

    assert await service.purge(types=["vzdump"]) == 0  # the vzdump task still runs
    assert await service.purge() == 3  # every ended task: old_ok, other_tenant, new_failed
    left = (await service.list(TaskFilter(), limit=50)).items
    assert {t.id for t in left} == {waiting.id, running.id}


async def test_purge_refuses_states_that_have_not_ended(service: TaskService) -> None:
    with pytest.raises(InvalidRequest, match="only ended tasks can be purged, not running"):
        await service.purge(states=[State.RUNNING, State.FAILED])
    with pytest.raises(InvalidRequest, match="time zone"):
        await service.purge(finished_before=datetime(2026, 1, 1))


async def test_purge_goes_in_batches(service: TaskService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "PURGE_BATCH", 4)
    ids = [await end(service, State.SUCCEEDED) for _ in range(10)]
    keep = await service.submit("noop", {})
    assert await service.purge(states=[State.SUCCEEDED]) == 10
    for task_id in ids:
        with pytest.raises(TaskNotFound):
            await service.get(task_id)
    assert (await service.get(keep.id)).state is State.QUEUED


async def test_purging_while_tasks_come_and_go_loses_no_active_task(
    service: TaskService, peer: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Purges interleave with submits, claims and endings from another process."""
    monkeypatch.setattr(service_module, "PURGE_BATCH", 7)
    submitted: list[str] = []
    done = asyncio.Event()

    async def load() -> None:
        for _ in range(30):
            tasks = await peer.submit_many([("noop", {})] * 10)
            submitted.extend(t.id for t in tasks)
            for task in (await peer.claim(WORKER, 8, LEASE))[:6]:
                await peer.finish(task, State.SUCCEEDED)
        done.set()

    job = asyncio.create_task(load())
    purged = 0
    while not done.is_set():
        purged += await service.purge(states=[State.SUCCEEDED])
        await asyncio.sleep(0)
    await job
    purged += await service.purge(states=[State.SUCCEEDED])
    left = (await service.list(TaskFilter(), limit=500)).items
    assert len(submitted) == 300
    assert purged + len(left) == 300
    assert {t.id for t in left} <= set(submitted)
    assert all(t.state in (State.QUEUED, State.RUNNING) for t in left)
    assert sum(t.state is State.RUNNING for t in left) == 30 * 2  # claimed, not ended
