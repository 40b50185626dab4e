"""Suspending and resuming tasks; groups: submitted together, summarized, canceled,
suspended and resumed as one; children spawned by a running task."""

from __future__ import annotations

import asyncio

import pytest

from taskgate import groups as groups_module
from taskgate.errors import Conflict, GroupNotFound, IdempotencyConflict, InvalidRequest
from taskgate.model import State, TaskFilter
from taskgate.service import Submission, TaskService

from .helpers import LEASE, WORKER, Clock, running


async def claimed_ids(service: TaskService) -> set[str]:
    return {t.id for t in await service.claim(WORKER, 1000, LEASE)}


# -- suspend and resume ----------------------------------------------------------------


async def test_a_suspended_task_is_never_claimed_until_resumed(
    service: TaskService, clock: Clock
) -> None:
    held = await service.submit("noop", {})
    other = await service.submit("noop", {})
    suspended = await service.suspend(held.id)
    assert suspended.state is State.SUSPENDED and suspended.version == held.version + 1
    assert await claimed_ids(service) == {other.id}
    clock.advance(3600)
    assert await claimed_ids(service) == set()
    assert await service.next_due_at() is None
    resumed = await service.resume(held.id)
    assert resumed.state is State.QUEUED
    assert await claimed_ids(service) == {held.id}


async def test_a_scheduled_task_resumes_scheduled_until_its_time(
    service: TaskService, clock: Clock
) -> None:
    later = await service.submit("noop", {}, delay=60)
    await service.suspend(later.id)
    clock.advance(30)
    assert (await service.resume(later.id)).state is State.SCHEDULED
    assert await claimed_ids(service) == set()
    clock.advance(31)
    assert await claimed_ids(service) == {later.id}


async def test_only_waiting_tasks_are_suspended_and_suspended_ones_cancel(
    service: TaskService,
) -> None:
    task = await running(service)
    with pytest.raises(Conflict, match="only a waiting task"):
        await service.suspend(task.id)
    queued = await service.submit("noop", {})
    with pytest.raises(Conflict, match="not suspended"):
        await service.resume(queued.id)
    await service.suspend(queued.id)
    with pytest.raises(Conflict):
        await service.suspend(queued.id)
    canceled = await service.cancel(queued.id)
    assert canceled.state is State.CANCELED and canceled.finished_at is not None
    with pytest.raises(Conflict):
        await service.resume(queued.id)


# -- groups -----------------------------------------------------------------------------


async def test_a_group_is_submitted_at_once_and_summarized(service: TaskService) -> None:
    options = Submission(tenant="acme", user="ann")
    group_id, tasks = await service.submit_group(
        [("noop", {"x": 1}, options), ("vzdump", {"vmid": 7}, options), ("noop", {}, options)]
    )
    assert [t.type for t in tasks] == ["noop", "vzdump", "noop"]
    assert {t.group_id for t in tasks} == {group_id}
    summary = await service.group(group_id, tenant="acme")
    assert summary.states["queued"] == 3 and summary.total == 3 and not summary.ended
    assert set(summary.states) == {s.value for s in State}
    with pytest.raises(GroupNotFound):
        await service.group(group_id, tenant="other")
    with pytest.raises(GroupNotFound):
        await service.group("no-such-group")
    with pytest.raises(InvalidRequest, match="group_id"):
        await service.group("bad group id!")
    listed = await service.list(TaskFilter(group_id=group_id))
    assert {t.id for t in listed.items} == {t.id for t in tasks}


async def test_a_group_all_or_nothing(service: TaskService) -> None:
    with pytest.raises(InvalidRequest):
        await service.submit_group([])
    with pytest.raises(Exception, match="vmid"):
        await service.submit_group([("noop", {}, Submission()), ("vzdump", {}, Submission())])
    assert (await service.list(TaskFilter())).items == []
    with pytest.raises(InvalidRequest, match="idempotency"):
        await service.submit_group([("noop", {}, Submission(idempotency_key="k"))])


async def test_a_task_joins_a_group_by_id(service: TaskService) -> None:
    first = await service.submit("noop", {}, group_id="nightly-2026-12-06")
    second = await service.submit("noop", {}, group_id="nightly-2026-12-06")
    assert (await service.group("nightly-2026-12-06")).total == 2
    assert first.group_id == second.group_id == "nightly-2026-12-06"
    with pytest.raises(InvalidRequest, match="group_id"):
        await service.submit("noop", {}, group_id="")


async def test_canceling_a_group(service: TaskService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(groups_module, "BATCH", 2)
    group_id, _ = await service.submit_group([("noop", {}, Submission())] * 5)
    outside = await service.submit("noop", {})
    [first] = await service.claim(WORKER, 1, LEASE)
    done = await service.finish(first, State.SUCCEEDED)
    assert done is not None
    [second] = await service.claim(WORKER, 1, LEASE)
    summary = await service.cancel_group(group_id)
    assert summary.states["succeeded"] == 1
    assert summary.states["canceling"] == 1
    assert summary.states["canceled"] == 3 and summary.total == 5
    assert (await service.get(second.id)).cancel_requested_at is not None
    assert (await service.get(outside.id)).state is State.QUEUED
    await service.finish(second, State.CANCELED)
    assert (await service.group(group_id)).ended


async def test_suspending_and_resuming_a_group(service: TaskService) -> None:
    group_id, tasks = await service.submit_group([("noop", {}, Submission())] * 3)
    [one] = await service.claim(WORKER, 1, LEASE)
    summary = await service.suspend_group(group_id)
    assert (summary.states["suspended"], summary.states["running"]) == (2, 1)
    assert await claimed_ids(service) == set()
    summary = await service.resume_group(group_id)
    assert (summary.states["queued"], summary.states["running"]) == (2, 1)
    assert await claimed_ids(service) == {t.id for t in tasks} - {one.id}


# -- children ---------------------------------------------------------------------------


async def test_a_running_task_spawns_children(service: TaskService) -> None:
    parent = await running(service, group_id="g1", tenant="acme", request_id="req-1")
    child = await service.spawn(parent, "vzdump", {"vmid": 3}, Submission(priority=5))
    assert child.parent_id == parent.id and child.group_id == "g1"
    assert (child.tenant, child.request_id, child.priority) == ("acme", "req-1", 5)
    again = await service.get(parent.id)
    assert again.children == (child.id,) and again.version > parent.version
    second = await service.spawn(parent, "noop", {}, Submission())
    assert (await service.get(parent.id)).children == (child.id, second.id)
    assert [t.id for t in await service.children(parent.id)] == [child.id, second.id]
    listed = await service.list(TaskFilter(parent_id=parent.id))
    assert [t.id for t in listed.items] == [second.id, child.id]


async def test_a_spawn_key_spawns_once(service: TaskService) -> None:
    parent = await running(service)
    child = await service.spawn(parent, "noop", {"x": 1}, Submission(), key="part-1")
    again = await service.spawn(parent, "noop", {"x": 1}, Submission(), key="part-1")
    assert again.id == child.id
    assert (await service.get(parent.id)).children == (child.id,)
    with pytest.raises(IdempotencyConflict):
        await service.spawn(parent, "noop", {"x": 2}, Submission(), key="part-1")


async def test_an_attempt_that_lost_its_task_spawns_nothing(
    service: TaskService, clock: Clock
) -> None:
    parent = await running(service, "flaky")
    clock.advance(LEASE + 1)
    await service.recover_lost()
    with pytest.raises(Conflict, match="no longer holds"):
        await service.spawn(parent, "noop", {}, Submission())
    assert [t.id for t in (await service.list(TaskFilter())).items] == [parent.id]


async def test_canceling_a_parent_cancels_its_children_and_theirs(service: TaskService) -> None:
    parent = await running(service)
    child = await service.spawn(parent, "vzdump", {"vmid": 1}, Submission())
    [child_running] = await service.claim(WORKER, 1, LEASE)
    assert child_running.id == child.id
    grandchild = await service.spawn(child_running, "noop", {}, Submission())
    await service.cancel(parent.id)
    assert (await service.get(child.id)).state is State.CANCELING
    assert (await service.get(grandchild.id)).state is State.CANCELED


async def test_waiting_for_children(service: TaskService, peer: TaskService) -> None:
    parent = await running(service)
    children = [await service.spawn(parent, "noop", {"x": i}, Submission()) for i in range(3)]
    waiting = asyncio.create_task(service.wait_children(parent.id, timeout=10))
    claimed = await peer.claim("worker-2", 10, LEASE)
    assert {t.id for t in claimed} == {c.id for c in children}
    for task in claimed[:2]:
        await peer.finish(task, State.SUCCEEDED)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await peer.finish(claimed[2], State.FAILED)
    ended = await asyncio.wait_for(waiting, 5)
    assert [t.id for t in ended] == [c.id for c in children]
    assert sorted(t.state for t in ended) == [State.FAILED, State.SUCCEEDED, State.SUCCEEDED]
    timed_out = await service.wait_children((await running(service)).id, timeout=0.01)
    assert timed_out == []
