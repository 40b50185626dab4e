"""Graceful shutdown, several workers on one store, and recovery of a lost worker's tasks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from taskgate.errors import StorageUnavailable
from taskgate.model import ACTIVE, WORKER_LOST, State, TaskFilter
from taskgate.runtime import Worker
from taskgate.runtime.ending import WORKER_SHUTDOWN
from taskgate.service import TaskService

from . import handlers
from .conftest import (
    WAIT,
    CountingConnector,
    log_texts,
    make_settings,
    open_service,
    running,
    wait_event,
    wait_for,
    wait_state,
)


async def _none_active(service: TaskService) -> None:
    page = await service.list(TaskFilter(states=tuple(ACTIVE)), limit=500)
    assert page.items == [], [(t.id, t.type, t.state) for t in page.items]


async def test_graceful_shutdown_ends_every_task_with_a_reason(
    service: TaskService, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, concurrency=8, claim_batch=8, shutdown_grace=1.0, cancel_grace=0.3
    )
    quick = [await service.submit("stubborn_sleep", {"key": f"q{i}"}) for i in range(2)]
    stubborn = await service.submit("stubborn_sleep", {"key": "long"})
    cooperative = await service.submit("cooperative", {"key": "coop"})
    requeued = await service.submit("requeueable", {"key": "req"})
    worker = Worker(service, settings)
    job = asyncio.create_task(worker.run())
    for key in ("q0", "q1", "long", "coop", "req"):
        await wait_event(f"{key}.started")
    worker.request_stop()
    assert worker.stopping
    for key in ("q0", "q1"):  # these finish within the grace period
        handlers.gate(f"{key}.release").set()
    await asyncio.wait_for(job, WAIT)

    for task in quick:
        assert (await service.get(task.id)).state is State.SUCCEEDED
    for task in (stubborn, cooperative):
        done = await service.get(task.id)
        assert done.state is State.FAILED
        assert done.error is not None
        assert done.error.type == WORKER_SHUTDOWN
        assert done.error.message == "worker stopped before the task finished"
        assert "worker stopped before the task finished" in await log_texts(service, task.id)
    again = await service.get(requeued.id)
    assert again.state is State.QUEUED
    assert again.attempt == 1
    assert "worker stopped during attempt 1; queued again" in await log_texts(service, requeued.id)
    await _none_active(service)
    assert await service.list_workers() == []


async def test_a_stop_before_any_task_returns_at_once(service: TaskService, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    worker = Worker(service, settings)
    worker.request_stop()
    await asyncio.wait_for(worker.run(), WAIT)
    assert await service.list_workers() == []
    with pytest.raises(RuntimeError):
        await worker.run()


async def test_immediate_stop_skips_the_grace_periods(service: TaskService, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, shutdown_grace=3600, cancel_grace=3600)
    task = await service.submit("stubborn_sleep", {"key": "imm"})
    worker = Worker(service, settings)
    job = asyncio.create_task(worker.run())
    await wait_event("imm.started")
    worker.request_stop()
    await asyncio.sleep(0.05)
    worker.request_stop(immediate=True)
    await asyncio.wait_for(job, WAIT)
    done = await service.get(task.id)
    assert done.state is State.FAILED
    assert done.error is not None and done.error.type == WORKER_SHUTDOWN


async def test_two_workers_never_run_one_task_twice(service: TaskService, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, concurrency=8, claim_batch=3)
    other = await open_service(settings.database, handlers.app)
    handlers.RUNS.clear()
    try:
        tasks = await service.submit_many([("record", {"key": "two"})] * 200)
        async with running(service, settings) as one, running(other, settings) as two:
            # each holds at most 8 blocked tasks, so both must take some
            await wait_for(lambda: one.executing == 8 and two.executing == 8, "both to be busy")
            handlers.gate("two").set()
            for task in tasks:
                await wait_state(service, task.id)
        assert one.claimed + two.claimed == 200
    finally:
        await other.close()
    ids = [task_id for task_id, _ in handlers.RUNS]
    assert sorted(ids) == sorted(t.id for t in tasks)
    for task in tasks:
        assert (await service.get(task.id)).state is State.SUCCEEDED


def _never_lead(monkeypatch: pytest.MonkeyPatch, service: TaskService) -> None:
    """The worker on ``service`` can neither take nor keep the scheduler role (so it
    does not reap: another worker must)."""
    counting = service.connector
    assert isinstance(counting, CountingConnector)
    store = counting.inner  # where the worker's leadership writes its lease
    execute = store.execute

    async def execute_unless_leading(query: str, params: Any, **options: Any) -> Any:
        if query in ("take_leader", "renew_leader"):
            raise StorageUnavailable("the store went away (test)")
        return await execute(query, params, **options)

    monkeypatch.setattr(store, "execute", execute_unless_leading)


async def _break_heartbeats(monkeypatch: pytest.MonkeyPatch, service: TaskService) -> None:
    """The worker on ``service`` can no longer renew its leases (nor claim, nor lead)."""

    async def fail(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("the store went away (test)")

    monkeypatch.setattr(service, "heartbeat", fail)
    monkeypatch.setattr(service, "claim", fail)
    _never_lead(monkeypatch, service)


async def test_a_lost_workers_task_is_queued_again_by_the_scheduler(
    service: TaskService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = make_settings(tmp_path, lease=0.5, heartbeat_interval=0.1, reaper_interval=3600)
    healthy = make_settings(tmp_path, reaper_interval=0.1)
    other = await open_service(healthy.database, handlers.app)
    try:
        task = await service.submit("requeueable", {"key": "rq"})
        async with running(service, lost, worker_id="lost") as first:
            await wait_event("rq.started")
            assert first.running_task_ids == {task.id}
            await _break_heartbeats(monkeypatch, service)
            async with running(other, healthy, worker_id="healthy"):
                again = await wait_state(service, task.id, State.RUNNING, State.CANCELING)
                while again.attempt < 2:
                    again = await service.wait(task.id, 1.0, seen_version=again.version)
                assert again.worker == "healthy"
                # the first worker learns its attempt lost the task, and lets go of it
                await wait_for(lambda: not first.running_task_ids, "the lost attempt to end")
                await service.cancel(task.id)
                done = await wait_state(service, task.id)
    finally:
        await other.close()
    assert done.state is State.CANCELED
    assert done.attempt == 2
    assert "worker lost during attempt 1; queued again" in await log_texts(service, task.id)


async def test_a_lost_workers_task_fails_with_worker_lost(
    service: TaskService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = make_settings(tmp_path, lease=0.5, heartbeat_interval=0.1, reaper_interval=3600)
    healthy = make_settings(tmp_path, reaper_interval=0.1)
    other = await open_service(healthy.database, handlers.app)
    try:
        task = await service.submit("stubborn_sleep", {"key": "wl"})
        async with running(service, lost, worker_id="lost") as first:
            await wait_event("wl.started")
            await _break_heartbeats(monkeypatch, service)
            async with running(other, healthy, worker_id="healthy"):
                done = await wait_state(service, task.id)
            # its thread is abandoned; nothing is stored
            await wait_for(lambda: not first.running_task_ids, "the lost attempt to end")
    finally:
        await other.close()
    assert done.state is State.FAILED
    assert done.error is not None and done.error.type == WORKER_LOST
    final = await service.get(task.id)
    assert final.state is State.FAILED and final.version == done.version


async def test_a_reaper_with_a_later_clock_recovers_the_tasks(
    service: TaskService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    settings = make_settings(tmp_path, reaper_interval=3600)
    later = await open_service(settings.database, handlers.app, clock=lambda: time.time() + 60)
    _never_lead(monkeypatch, service)  # the scheduler is the worker whose clock is later
    try:
        task = await service.submit("stubborn_sleep", {"key": "clk"})
        async with running(service, settings):
            await wait_event("clk.started")
            async with running(later, make_settings(tmp_path, reaper_interval=0.05)):
                done = await wait_state(service, task.id)
    finally:
        await later.close()
    assert done.state is State.FAILED
    assert done.error is not None and done.error.type == WORKER_LOST


def _worker_script(database: str) -> str:
    """A worker process running `run_worker` on the test handlers."""
    tests_dir = Path(handlers.__file__).resolve().parent.parent
    return textwrap.dedent(
        f"""
        import logging, sys
        sys.path.insert(0, {str(tests_dir)!r})
        logging.basicConfig(level=logging.INFO)
        from {handlers.__name__} import app
        from taskgate.runtime import run_worker
        from taskgate.settings import Settings
        settings = Settings(database={database!r}, shutdown_grace=0.2, cancel_grace=0.2,
                            poll_interval=0.2, lease=1.0)
        run_worker(settings, app, worker_id="sub")
        """
    )


def test_run_worker_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """The entry point, in its own process: SIGTERM stops it and ends its task."""
    database = f"sqlite:///{tmp_path / 'tasks.db'}"
    marker = tmp_path / "child.pid"
    script = _worker_script(database)

    async def scenario() -> tuple[State, str | None, list[Any]]:
        service = await open_service(database, handlers.app)
        try:
            task = await service.submit("stubborn_process", {"marker": str(marker)})
            proc = await asyncio.to_thread(
                subprocess.Popen, [sys.executable, "-c", script], stderr=subprocess.PIPE
            )
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + WAIT
                while not (marker.exists() and marker.read_text()):
                    assert loop.time() < deadline and proc.poll() is None
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, WAIT)
                stderr = proc.stderr.read().decode() if proc.stderr else ""
                assert code == 0, stderr
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stderr:
                    proc.stderr.close()
            done = await service.get(task.id)
            return done.state, done.error.type if done.error else None, await service.list_workers()
        finally:
            await service.close()

    state, error, workers = asyncio.run(scenario())
    assert state is State.FAILED
    assert error == WORKER_SHUTDOWN
    assert workers == []
    child = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_a_killed_workers_child_exits_and_its_task_is_recovered(tmp_path: Path) -> None:
    """kill -9 of a worker: its task's child process exits on its own, and a reaper ends
    the task once the lease runs out."""
    database = f"sqlite:///{tmp_path / 'tasks.db'}"
    marker = tmp_path / "child.pid"

    async def scenario() -> tuple[State, str | None]:
        service = await open_service(database, handlers.app)
        try:
            task = await service.submit("stubborn_process", {"marker": str(marker)})
            proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-c", _worker_script(database)],
                stderr=subprocess.DEVNULL,
            )
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + WAIT
                while not (marker.exists() and marker.read_text()):
                    assert loop.time() < deadline and proc.poll() is None
                    await asyncio.sleep(0.02)
            finally:
                proc.kill()
                proc.wait()
            child = int(marker.read_text())
            while _running(child):  # it sees its pipe close, and exits
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
            done = await service.get(task.id)
            while not done.terminal:
                assert loop.time() < deadline
                await service.recover_lost()
                await asyncio.sleep(0.05)
                done = await service.get(task.id)
            return done.state, done.error.type if done.error else None
        finally:
            await service.close()

    state, error = asyncio.run(scenario())
    assert state is State.FAILED
    assert error == WORKER_LOST


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
