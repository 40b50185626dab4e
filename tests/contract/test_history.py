"""History and retention: ended tasks move to history after their period, stay readable
there, and are deleted after the second period; nothing that still goes is touched."""

from __future__ import annotations

import asyncio
import math

import pytest

from taskgate import retention as retention_module
from taskgate.errors import Conflict, TaskNotFound
from taskgate.model import State, TaskFilter
from taskgate.retention import RetentionService
from taskgate.service import NewLogLine, Submission, TaskService

from .helpers import LEASE, WORKER, Clock

DAY = 86400.0


def keeper(service: TaskService, archive: float = DAY, purge: float = 30 * DAY) -> RetentionService:
    return RetentionService(service, archive_after=archive, purge_after=purge)


async def end(service: TaskService, type: str = "noop", state: State = State.SUCCEEDED) -> str:
    task = await service.submit(type, {}, tenant="acme")
    [claimed] = [t for t in await service.claim(WORKER, 1000, LEASE) if t.id == task.id]
    await service.append_log(claimed.id, [NewLogLine("working"), NewLogLine("done")])
    done = await service.finish(claimed, state, result={"n": 1})
    assert done is not None
    return task.id


async def test_ended_tasks_move_to_history_and_stay_readable(
    service: TaskService, clock: Clock
) -> None:
    old = await end(service)
    failed = await end(service, state=State.FAILED)
    clock.advance(DAY / 2)
    recent = await end(service)
    waiting = await service.submit("noop", {}, tenant="acme")
    clock.advance(DAY / 2 + 1)

    done = await keeper(service).run()
    assert (done.archived, done.purged) == (2, 0)

    task = await service.get(old, tenant="acme")
    assert task.archived and task.state is State.SUCCEEDED and task.result == {"n": 1}
    assert (await service.get_by_upid(task.upid)).id == old
    assert await service.version(old) == task.version
    with pytest.raises(TaskNotFound):
        await service.get(old, tenant="other")
    assert [line.t for line in (await service.log(old)).lines] == ["working", "done"]

    hot = (await service.list(TaskFilter())).items
    assert [t.id for t in hot] == [waiting.id, recent]
    history = (await service.list(TaskFilter(archived=True))).items
    assert [t.id for t in history] == [failed, old]
    both = (await service.list(TaskFilter(archived=None), limit=3)).items
    assert [t.id for t in both] == [waiting.id, recent, failed]
    failures = await service.list(TaskFilter(archived=None, states=(State.FAILED,)))
    assert [t.id for t in failures.items] == [failed]

    # a page boundary that falls between the tables
    first = await service.list(TaskFilter(archived=None), limit=2)
    second = await service.list(TaskFilter(archived=None), cursor=first.next_cursor, limit=2)
    assert [t.id for t in second.items] == [failed, old] and second.next_cursor is None


async def test_archived_tasks_are_acknowledged_deleted_and_purged(
    service: TaskService, clock: Clock
) -> None:
    first, second = await end(service), await end(service)
    clock.advance(DAY + 1)
    await keeper(service).run()
    acked = await service.acknowledge(first, user="ops")
    assert acked.archived and acked.acknowledged_by == "ops"
    with pytest.raises(Conflict):
        await service.cancel(first)
    await service.delete(first)
    with pytest.raises(TaskNotFound):
        await service.get(first)
    with pytest.raises(TaskNotFound):
        await service.log(first)
    assert await service.purge(states=[State.SUCCEEDED]) == 1  # the other archived one
    with pytest.raises(TaskNotFound):
        await service.get(second)


async def test_history_is_purged_after_the_second_period(
    service: TaskService, clock: Clock
) -> None:
    task_id = await end(service)
    clock.advance(DAY + 1)
    assert (await keeper(service).run()).archived == 1
    clock.advance(28 * DAY)
    assert (await keeper(service).run()).purged == 0
    clock.advance(DAY)
    assert (await keeper(service).run()).purged == 1
    with pytest.raises(TaskNotFound):
        await service.get(task_id)
    with pytest.raises(TaskNotFound):
        await service.log(task_id)
    assert (await service.list(TaskFilter(archived=None))).items == []


async def test_an_operation_keeps_its_tasks_for_its_own_periods(
    service: TaskService, clock: Clock
) -> None:
    brief = await end(service, "brief")  # archive_after=10, purge_after=20
    normal = await end(service)
    clock.advance(11)
    assert (await keeper(service).run()).archived == 1
    assert (await service.get(brief)).archived and not (await service.get(normal)).archived
    clock.advance(10)
    assert (await keeper(service).run()).purged == 1
    with pytest.raises(TaskNotFound):
        await service.get(brief)
    assert (await service.get(normal)).state is State.SUCCEEDED


async def test_a_purge_before_the_archive_deletes_from_the_hot_table(
    service: TaskService, clock: Clock
) -> None:
    task_id = await end(service)
    clock.advance(3601)
    done = await keeper(service, archive=DAY, purge=3600).run()
    assert (done.archived, done.purged) == (0, 1)
    with pytest.raises(TaskNotFound):
        await service.get(task_id)


async def test_never_keeps_for_ever_and_tasks_still_going_are_never_touched(
    service: TaskService, clock: Clock
) -> None:
    ended = await end(service)
    waiting = await service.submit("noop", {})
    running = await service.submit("vzdump", {"vmid": 1})
    await service.claim(WORKER, 1, LEASE)
    clock.advance(400 * DAY)
    assert (await keeper(service, archive=math.inf, purge=math.inf).run()).batches == 0
    assert not (await service.get(ended)).archived
    done = await keeper(service, archive=0, purge=math.inf).run()
    assert done.archived == 1 and (await service.get(ended)).archived
    assert (await service.get(waiting.id)).state is State.QUEUED
    assert (await service.get(running.id)).state is State.RUNNING


async def test_a_pass_goes_in_batches_and_stops_at_its_budget(
    service: TaskService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_module, "BATCH", 3)
    monkeypatch.setattr(retention_module, "BATCHES", 2)
    ids = [await end(service) for _ in range(8)]
    clock.advance(DAY + 1)
    first = await keeper(service).run()
    assert (first.archived, first.more) == (6, True)
    second = await keeper(service).run()
    assert (second.archived, second.more) == (2, False)
    assert all(t.archived for t in await asyncio.gather(*(service.get(i) for i in ids)))


async def test_the_group_summary_counts_history(service: TaskService, clock: Clock) -> None:
    group_id, tasks = await service.submit_group(
        [("noop", {}, _options()), ("noop", {}, _options())]
    )
    [claimed, *_] = await service.claim(WORKER, 1, LEASE)
    await service.finish(claimed, State.SUCCEEDED)
    clock.advance(DAY + 1)
    await keeper(service).run()
    summary = await service.group(group_id)
    assert summary.states["succeeded"] == 1 and summary.states["queued"] == 1
    assert summary.total == 2 and not summary.ended
    listed = await service.list(TaskFilter(group_id=group_id, archived=None))
    assert {t.id for t in tasks} == {t.id for t in listed.items}


async def test_archiving_while_tasks_come_and_go_loses_no_task(
    service: TaskService, peer: TaskService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention passes interleave with submits, claims and endings from another
    process: no error, and every task is in exactly one place."""
    monkeypatch.setattr(retention_module, "BATCH", 7)
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
    keep = keeper(service, archive=0, purge=math.inf)
    archived = 0
    while not done.is_set():
        clock.advance(1)
        archived += (await keep.run()).archived
        await asyncio.sleep(0)
    await job
    clock.advance(1)
    archived += (await keep.run()).archived
    hot = (await service.list(TaskFilter(), limit=500)).items
    history = (await service.list(TaskFilter(archived=True), limit=500)).items
    assert len(submitted) == 300 and archived == len(history) == 30 * 6
    assert {t.id for t in hot} | {t.id for t in history} == set(submitted)
    assert not {t.id for t in hot} & {t.id for t in history}
    assert all(t.state in (State.QUEUED, State.RUNNING) for t in hot)
    assert sum(t.state is State.RUNNING for t in hot) == 30 * 2


def _options() -> Submission:
    return Submission(tenant="acme")
