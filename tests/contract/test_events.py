"""What event streams and acknowledgment ask of a store: tasks by ids, tasks in change
order, acknowledging one or many, the acknowledged list filter; and the change feed,
which reads a changed task once for all its watchers."""

from __future__ import annotations

import asyncio

import pytest

from taskgate import service as service_module
from taskgate.errors import InvalidId, InvalidRequest, TaskNotFound
from taskgate.feed import Interest
from taskgate.model import State, Task, TaskFilter
from taskgate.service import NewLogLine, Progress, TaskService

from .helpers import LEASE, WORKER, Clock, running

UNKNOWN = "01900000-0000-7000-8000-000000000000"


async def test_get_many(service: TaskService) -> None:
    a = await service.submit("noop", {})
    b = await service.submit("noop", {"x": 1})
    found = await service.get_many([b.id, UNKNOWN, a.id, a.id])
    assert sorted(found, key=lambda t: t.id) == [a, b]
    assert await service.get_many([]) == []


async def changed(service: TaskService, interest: Interest, since: float = 0.0) -> list[Task]:
    """Every task ``changes`` gives from ``since``, following positions two at a time."""
    found: list[Task] = []
    position: tuple[float, str] | None = (since, "")
    while position is not None:
        page, position = await service.changes(position, interest, limit=2)
        found += page
        assert len(page) == 2 or position is None
    return found


async def test_changes_come_in_the_order_tasks_last_changed(
    service: TaskService, clock: Clock
) -> None:
    a = await service.submit("noop", {})
    clock.advance(1)
    b = await service.submit("vzdump", {"vmid": 100}, tenant="acme")
    clock.advance(1)
    c = await service.submit("noop", {})
    clock.advance(1)
    await service.cancel(a.id)  # a changed last
    assert [t.id for t in await changed(service, Interest())] == [b.id, c.id, a.id]
    assert [t.state for t in await changed(service, Interest())] == [
        State.QUEUED,
        State.QUEUED,
        State.CANCELED,
    ]
    # since a moment: only what changed from then on
    since_b = b.updated_at.timestamp() - 0.001  # (a datetime holds microseconds only)
    assert [t.id for t in await changed(service, Interest(), since=since_b)] == [b.id, c.id, a.id]
    since_c = c.updated_at.timestamp() + 0.5
    assert [t.id for t in await changed(service, Interest(), since=since_c)] == [a.id]
    # filters
    assert [t.id for t in await changed(service, Interest(tenant="acme"))] == [b.id]
    assert [t.id for t in await changed(service, Interest(tenant="default"))] == [c.id, a.id]
    assert [t.id for t in await changed(service, Interest(types=frozenset({"noop"})))] == [
        c.id,
        a.id,
    ]
    canceled = Interest(states=frozenset({State.CANCELED, State.FAILED}))
    assert [t.id for t in await changed(service, canceled)] == [a.id]
    assert [t.id for t in await changed(service, Interest(ids=frozenset({a.id, b.id})))] == [
        b.id,
        a.id,
    ]
    both = Interest(ids=frozenset({a.id, b.id}), tenant="default")
    assert [t.id for t in await changed(service, both)] == [a.id]


async def test_changes_page_through_equal_times(service: TaskService) -> None:
    """Tasks changed at the same instant: the id breaks the tie, pages lose none."""
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(7)])
    assert len({t.updated_at for t in tasks}) == 1  # one clock reading for all
    assert [t.id for t in await changed(service, Interest())] == sorted(t.id for t in tasks)
    first, position = await service.changes((0.0, ""), Interest(), limit=4)
    assert position is not None and position[1] == first[-1].id
    rest, end = await service.changes(position, Interest(), limit=10)
    assert end is None
    assert [t.id for t in first + rest] == sorted(t.id for t in tasks)


async def test_every_change_moves_a_task_to_the_end(service: TaskService, clock: Clock) -> None:
    first = await running(service)
    clock.advance(1)
    second = await running(service)
    order = [first.id, second.id]
    for change in ("progress", "log", "acknowledge", "finish"):
        clock.advance(1)
        if change == "progress":
            await service.report(first, Progress(progress=5))
        elif change == "log":
            await service.append_log(first.id, [NewLogLine("x")])
        elif change == "acknowledge":
            await service.acknowledge(first.id, user="u")
        else:
            await service.finish(first, State.SUCCEEDED)
        assert [t.id for t in await changed(service, Interest())] == order[::-1], change
        clock.advance(1)
        await service.report(second, Progress(progress=5))  # back to the first order
        assert [t.id for t in await changed(service, Interest())] == order


async def test_acknowledge_one(service: TaskService, clock: Clock) -> None:
    task = await running(service)
    clock.advance(1)
    done = await service.acknowledge(task.id, user="ann")
    assert done.acknowledged_by == "ann" and done.acknowledged_at == done.updated_at
    assert done.state is State.RUNNING and done.version == task.version + 1
    assert done.updated_at > task.updated_at
    clock.advance(1)
    assert await service.acknowledge(task.id, user="bob") == done  # the first one stands
    with pytest.raises(TaskNotFound):
        await service.acknowledge(task.id, user="eve", tenant="other")
    with pytest.raises(TaskNotFound):
        await service.acknowledge(UNKNOWN, user="ann")


async def test_acknowledge_many(service: TaskService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "ACK_BATCH", 2)
    assert await service.finish(await running(service, "flaky"), State.FAILED) is not None
    queued = await service.submit_many([("noop", {}) for _ in range(3)])
    foreign = await service.submit("noop", {}, tenant="acme")
    by_ids = await service.acknowledge_many(
        user="ann", tenant="default", ids=[queued[0].id, foreign.id, UNKNOWN]
    )
    assert by_ids == 1  # the other tenant's and the unknown are skipped
    assert await service.acknowledge_many(user="ann", ids=[]) == 0
    assert await service.acknowledge_many(user="ann", states=[State.FAILED], types=["noop"]) == 0
    assert await service.acknowledge_many(user="ann", states=[State.FAILED]) == 1
    assert await service.acknowledge_many(user="bob", tenant="default") == 2  # two batches
    assert await service.acknowledge_many(user="bob", tenant="default") == 0
    assert (await service.get(foreign.id)).acknowledged_at is None
    assert await service.acknowledge_many(user="root") == 1  # every tenant
    stored = {t.id: t for t in await service.get_many([t.id for t in queued])}
    assert [stored[t.id].acknowledged_by for t in queued] == ["ann", "bob", "bob"]
    assert all(stored[t.id].version == t.version + 1 for t in queued)
    with pytest.raises(InvalidId):
        await service.acknowledge_many(user="ann", ids=["nope"])
    monkeypatch.setattr(service_module, "MAX_ACK_IDS", 2)
    with pytest.raises(InvalidRequest):
        await service.acknowledge_many(user="ann", ids=[UNKNOWN, queued[0].id, foreign.id])


async def test_the_acknowledged_filter(service: TaskService) -> None:
    a, b, c = await service.submit_many([("noop", {}) for _ in range(3)])
    await service.acknowledge(b.id, user="u")

    async def listed(acknowledged: bool | None) -> list[str]:
        page = await service.list(TaskFilter(acknowledged=acknowledged))
        return [t.id for t in page.items]

    assert await listed(True) == [b.id]
    assert await listed(False) == [c.id, a.id]
    assert await listed(None) == [c.id, b.id, a.id]


async def test_the_feed_reads_a_change_once_for_all_its_watchers(
    service: TaskService, peer: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = await service.submit("noop", {})
    other = await service.submit("noop", {}, tenant="acme")
    reads: list[list[str]] = []
    original = service.get_many

    async def counting(ids: list[str]) -> list[Task]:
        reads.append(sorted(ids))
        return await original(ids)

    monkeypatch.setattr(service.feed, "_read", counting)
    by_id = [service.feed.watch(Interest(ids=frozenset({task.id}))) for _ in range(50)]
    tenant_wide = [service.feed.watch(Interest(tenant="default")) for _ in range(10)]
    admins = [service.feed.watch(Interest()) for _ in range(3)]
    unrelated = service.feed.watch(Interest(ids=frozenset({UNKNOWN})))
    await peer.claim(WORKER, 10, LEASE)  # one notification, both tasks
    for watch in [*by_id, *tenant_wide, *admins]:
        assert await asyncio.wait_for(watch.wait(), 10)
    assert reads == [sorted([task.id, other.id])]
    assert all([c.task.state for c in w.take()] == [State.RUNNING] for w in by_id)
    assert all([c.task.id for c in w.take()] == [task.id] for w in tenant_wide)
    assert all(sorted(c.task.id for c in w.take()) == sorted([task.id, other.id]) for w in admins)
    assert unrelated.pending == {}
    for watch in [*by_id, *tenant_wide, *admins, unrelated]:
        watch.close()
    assert len(service.feed) == 0
    # with nobody watching, a notification reads nothing
    await peer.cancel(task.id)
    await asyncio.sleep(0.05)
    assert len(reads) == 1


async def test_the_feed_keeps_the_latest_change_of_each_task(service: TaskService) -> None:
    task = await running(service)
    with service.feed.watch(Interest(ids=frozenset({task.id}))) as watch:
        await service.report(task, Progress(progress=1))
        await service.report(task, Progress(progress=2))
        await service.report(task, Progress(progress=3))
        while True:  # wait until the last report is in
            await asyncio.wait_for(watch.wait(), 10)
            if watch.pending[task.id].task.progress == 3:
                break
        changes = watch.take()
        assert [c.task.progress for c in changes] == [3]  # one per task: the latest
        assert watch.take() == []


async def test_an_empty_change_notification_makes_every_watch_catch_up(
    service: TaskService,
) -> None:
    """What a store sends when its notifications were interrupted (a reconnect): the
    waiters cannot know what they missed, so each one re-reads the store."""
    task = await running(service)
    by_id = service.feed.watch(Interest(ids=frozenset({task.id})))
    tenant_wide = service.feed.watch(Interest(tenant="default"))
    with by_id, tenant_wide:
        assert not by_id.ready and not tenant_wide.ready
        waiting = asyncio.ensure_future(by_id.wait(30))
        service.feed.notify("")
        assert await asyncio.wait_for(waiting, 10)
        assert by_id.overflowed and tenant_wide.overflowed
