"""Submit → a worker runs the handler → the task ends with its reports, in each isolation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskgate.model import State
from taskgate.service import TaskService
from taskgate.settings import Settings

from . import handlers
from .conftest import log_texts, make_settings, open_service, running, wait_state


async def test_succeeds_with_progress_log_and_result(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("report", {"lines": 3})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result == {"lines": 3, "task": task.id}
    assert done.progress == 100.0
    assert done.message == "step 3 of 3"
    assert done.progress_detail == {"done": 3, "total": 3}
    assert done.detailed_state == "working"
    assert done.warnings == 1
    assert done.created_resources == {"volumes": ["vol-1", "vol-2"]}
    assert done.attempt == 1
    assert done.finished_at is not None
    page = await service.log(task.id)
    assert [(line.n, line.t, line.level) for line in page.lines] == [
        (1, "line 1", "info"),
        (2, "line 2", "info"),
        (3, "line 3", "info"),
        (4, "WARN: disk almost full", "warning"),
    ]


async def test_async_handler_runs_on_the_loop(service: TaskService, settings: Settings) -> None:
    task = await service.submit("async_echo", {"value": "hi"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result == {"value": "hi", "where": "async"}
    assert done.progress == 100.0
    assert await log_texts(service, task.id) == ["echo hi"]


async def test_sync_handler_runs_in_a_thread(service: TaskService, settings: Settings) -> None:
    task = await service.submit("thread_echo", {"value": "hi"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result["value"] == "hi"
    assert done.result["where"].startswith("taskgate-handler")


async def test_process_handler_runs_in_a_child(service: TaskService, settings: Settings) -> None:
    import os

    task = await service.submit("proc_echo", {"value": "hi"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED, done.error
    assert done.result["value"] == "hi"
    assert done.result["pid"] != os.getpid()
    assert done.warnings == 1
    assert done.created_resources == {"files": ["f-1"]}
    assert await log_texts(service, task.id) == ["echo hi", "WARN: from the child"]


async def test_runs_on_the_memory_backend(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database="memory://")
    service = await open_service("memory://", handlers.app)
    try:
        tasks = [
            await service.submit("report", {"lines": 2}),
            await service.submit("async_echo", {"value": "m"}),
            await service.submit("flaky", {"succeed_on": 2}),
            await service.submit("boom"),
        ]
        async with running(service, settings):
            done = [await wait_state(service, t.id) for t in tasks]
    finally:
        await service.close()
    assert [t.state for t in done] == [
        State.SUCCEEDED,
        State.SUCCEEDED,
        State.SUCCEEDED,
        State.FAILED,
    ]
    assert done[0].warnings == 1
    assert done[2].attempt == 2


async def test_a_scheduled_task_runs_when_due(service: TaskService, settings: Settings) -> None:
    """No due notification comes when a delay runs out: the worker's timer claims it."""
    async with running(service, make_settings_like(settings, poll_interval=3600)):
        await asyncio.sleep(0.05)  # the worker is idle, waiting
        task = await service.submit("noop", delay=0.2)
        assert task.state is State.SCHEDULED
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED


def make_settings_like(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)
