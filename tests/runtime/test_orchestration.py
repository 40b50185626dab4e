"""Orchestration with a real worker: handlers spawn children and wait for them (in each
isolation); reserved tasks never overlap and start as soon as what they wait for ends;
limits hold; retention archives on the scheduler."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from taskgate.model import State, Task, TaskFilter
from taskgate.service import TaskService
from taskgate.settings import Settings

from . import handlers
from .conftest import make_settings, open_service, running, wait_state


async def test_a_handler_spawns_children_and_waits_for_them(
    service: TaskService, settings: Settings
) -> None:
    tasks = [
        await service.submit("fan_out", {"n": 3}),
        await service.submit("fan_out_async", {"n": 2}),
        await service.submit("fan_out_process", {"n": 2}),
    ]
    async with running(service, settings):
        done = [await wait_state(service, t.id) for t in tasks]
    assert [t.state for t in done] == [State.SUCCEEDED] * 3, [t.error for t in done]
    assert done[0].result == ["part 0", "part 1", "part 2"]
    assert done[1].result == ["part 0", "part 1"]
    assert done[2].result == ["part 0", "part 1"]
    for parent in done:
        children = await service.children(parent.id)
        assert [c.id for c in children] == list(parent.children)
        assert all(c.parent_id == parent.id and c.state is State.SUCCEEDED for c in children)
    assert {c.priority for c in await service.children(done[1].id)} == {1}


async def test_a_retried_parent_finds_the_children_it_spawned(
    service: TaskService, settings: Settings
) -> None:
    parent = await service.submit("fan_out", {"n": 2, "fail_first": True}, max_attempts=2)
    async with running(service, settings):
        done = await wait_state(service, parent.id)
    assert done.state is State.SUCCEEDED and done.attempt == 2
    assert len(done.children) == 2
    listed = await service.list(TaskFilter(parent_id=parent.id))
    assert len(listed.items) == 2  # not four


async def test_a_blocking_spawn_in_an_async_handler_says_what_to_do(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("blocking_spawn", {})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED and done.error is not None
    assert "spawn_async" in done.error.message


def overlaps(spans: list[list[float]]) -> int:
    """The most spans open at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    return max(itertools.accumulate(d for _, d in edges))


async def test_reserved_tasks_never_overlap_and_start_when_told(
    tmp_path: Path, service: TaskService
) -> None:
    # a safety poll of a minute: each waiting task starts because an end notified it
    settings = make_settings(tmp_path, concurrency=8, claim_batch=8, poll_interval=60.0)
    same = [await service.submit("hold", {"repository": 1, "remote": 9}) for _ in range(6)]
    others = [await service.submit("hold", {"repository": r, "remote": 9}) for r in (2, 3)]
    writer = await service.submit("hold", {"repository": 4}, exclusive_resources=["remote:9"])
    async with running(service, settings):
        done = {t.id: await wait_state(service, t.id) for t in [*same, *others, writer]}
    assert all(t.state is State.SUCCEEDED for t in done.values())
    spans = [done[t.id].result for t in same]
    assert overlaps(spans) == 1
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)  # in submit order
    readers = [done[t.id].result for t in [*same, *others]]
    assert overlaps([*readers, done[writer.id].result]) <= 3  # two readers at most, then alone
    write_start, write_end = done[writer.id].result
    assert all(end <= write_start or start >= write_end for start, end in readers)


async def test_a_limit_holds_with_a_real_worker(tmp_path: Path, service: TaskService) -> None:
    settings = make_settings(tmp_path, concurrency=8, claim_batch=8, poll_interval=60.0)
    tasks = [await service.submit("capped", {"seconds": 0.05}) for _ in range(8)]
    async with running(service, settings):
        done = [await wait_state(service, t.id) for t in tasks]
    assert overlaps([t.result for t in done]) == 2


async def test_the_scheduler_archives_ended_tasks(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, archive_after=0.2, retention_interval=0.05)
    service = await open_service(settings.database, handlers.app)
    try:
        task = await service.submit("noop", {})
        async with running(service, settings):
            await wait_state(service, task.id)
            for _ in range(200):
                if (await service.get(task.id)).archived:
                    break
                await asyncio.sleep(0.05)
        current: Task = await service.get(task.id)
        assert current.archived and current.state is State.SUCCEEDED
        assert (await service.list(TaskFilter())).items == []
    finally:
        await service.close()
