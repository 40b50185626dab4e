"""The scheduler: one worker of the store reaps; another takes over when it stops or
loses the role; a duty that crashes is started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import timedelta
from pathlib import Path

import pytest

from taskgate.model import State, TaskFilter
from taskgate.runtime.elector import Elector
from taskgate.schedules import ScheduleService
from taskgate.service import TaskService

from . import handlers
from .conftest import WAIT, CountingConnector, make_settings, open_service, running, wait_for

REAP = "recover_lost_tasks"


def reaps(service: TaskService) -> int:
    """How many times the worker on ``service`` looked for lost tasks."""
    connector = service.connector
    assert isinstance(connector, CountingConnector)
    return connector.count(REAP)


async def test_only_the_scheduler_reaps_and_another_takes_over_when_it_stops(
    service: TaskService, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, reaper_interval=0.05)
    other = await open_service(settings.database, handlers.app, counting=True)
    try:
        async with running(service, settings, worker_id="first") as first:
            await wait_for(lambda: first.leading, "the first worker to lead")
            async with running(other, settings, worker_id="second") as second:
                await wait_for(lambda: reaps(service) >= 5, "the scheduler to reap")
                assert not second.leading
                assert reaps(other) == 0
                (leader,) = await other.leaders()
                assert (leader.name, leader.holder, leader.pid) == (
                    "scheduler",
                    "first",
                    os.getpid(),
                )
                first.request_stop()  # it lets the role go as it stops
                await wait_for(lambda: second.leading, "the second worker to take over")
                await wait_for(lambda: reaps(other) >= 1, "the new scheduler to reap")
                assert not first.leading
                assert [leader.holder for leader in await other.leaders()] == ["second"]
            assert await service.leaders() == []  # the last one let go too
    finally:
        await other.close()


async def test_a_scheduler_that_loses_its_role_stops_its_duties_at_once(
    service: TaskService,
) -> None:
    """Its lease was taken over (it stalled, say): the duties stop, it stands again."""
    runs: list[str] = []

    async def duty() -> None:
        runs.append("start")
        try:
            await asyncio.Event().wait()
        finally:
            runs.append("stop")

    elector = Elector(service, "w1", [duty], interval=0.02)
    job = asyncio.create_task(elector.run())
    try:
        await wait_for(lambda: runs == ["start"], "the duty to start")
        (leader,) = await service.leaders()
        # another holder takes the row over, as after the lease ran out
        taken = {"name": "scheduler", "holder": "w2", "node": "n", "pid": 1}
        await service.connector.execute(
            "take_leader", {**taken, "now": leader.renewed_at + 100, "stale_before": 1e18}
        )
        await wait_for(lambda: runs == ["start", "stop"], "the duty to stop")
        assert not elector.leading
        await service.connector.execute("drop_leader", {"name": "scheduler", "holder": "w2"})
        await wait_for(lambda: elector.leading, "the worker to lead again")
        await wait_for(lambda: len(runs) == 3, "the duty to start again")
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    assert runs == ["start", "stop", "start", "stop"]
    assert await service.leaders() == []


async def test_a_duty_that_crashes_is_started_again(
    service: TaskService, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def duty() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("a bug in a duty")
        await asyncio.Event().wait()

    elector = Elector(service, "w1", [duty], interval=0.02)
    job = asyncio.create_task(elector.run())
    try:
        await wait_for(lambda: len(calls) == 2, "the duty to start again")
        assert elector.leading
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    assert "a scheduler duty failed; starting it again" in caplog.text
    assert "a bug in a duty" in caplog.text


async def test_the_scheduler_runs_schedules_on_time(service: TaskService, tmp_path: Path) -> None:
    """A real worker: each run submitted when due and run; a failing schedule stops at
    its failure threshold."""
    settings = make_settings(tmp_path, schedule_interval=0.05)
    schedules = ScheduleService(service)
    every = await schedules.create("every", "noop", "R3/PT0.2S")
    failing = await schedules.create("failing", "boom", "PT0.2S", failure_threshold=2)
    async with running(service, settings) as worker:
        await wait_for(lambda: worker.leading, "the worker to lead")
        for _ in range(int(WAIT / 0.05)):
            done = await schedules.get(every.id)
            stopped = await schedules.get(failing.id)
            if done.remaining_runs == 0 and not stopped.enabled:
                break
            await asyncio.sleep(0.05)
    tasks = (await service.list(TaskFilter(schedule_id=every.id))).items
    start = every.first_run
    assert start is not None
    assert sorted(t.scheduled_at for t in tasks) == [
        start + timedelta(seconds=0.2 * k) for k in range(3)
    ]
    assert all(t.state is State.SUCCEEDED for t in tasks)
    for task in tasks:  # started when due, not a poll interval later
        assert task.started_at is not None and task.scheduled_at is not None
        assert task.started_at >= task.scheduled_at
    stopped = await schedules.get(failing.id)
    assert not stopped.enabled and stopped.consecutive_failures == 2
    failed = (await service.list(TaskFilter(schedule_id=failing.id))).items
    assert [t.state for t in failed] == [State.FAILED, State.FAILED]
