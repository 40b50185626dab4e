"""Cancel and timeout: cooperative handlers stop; the rest are stopped by force after the
grace period (a child process killed, an asyncio task cancelled, a thread abandoned)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from unittest.mock import AsyncMock

import pytest

from taskgate.app import App
from taskgate.model import State
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage.connector import CHANNEL_CHANGED

from . import handlers
from .conftest import (
    log_texts,
    make_settings,
    open_service,
    running,
    wait_event,
    wait_for,
    wait_state,
)


async def test_canceling_a_queued_task_never_runs_it(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("cooperative", {"key": "queued"})
    canceled = await service.cancel(task.id)
    assert canceled.state is State.CANCELED
    async with running(service, settings) as worker:
        probe = await service.submit("noop")  # proves the worker has been claiming
        await wait_state(service, probe.id)
        assert worker.claimed == 1
    assert not handlers.gate("queued.started").is_set()
    assert (await service.get(task.id)).attempt == 0


async def test_cancel_a_cooperative_thread_handler(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("cooperative", {"key": "coop"})
    async with running(service, settings):
        await wait_event("coop.started")
        assert (await service.cancel(task.id)).state is State.CANCELING
        done = await wait_state(service, task.id)
    assert done.state is State.CANCELED
    assert done.error is None
    assert await log_texts(service, task.id) == [
        "cancel requested: asking the handler to stop",
        "canceled",
    ]


async def test_cancel_a_cooperative_async_handler(service: TaskService, settings: Settings) -> None:
    task = await service.submit("async_cooperative", {"key": "acoop"})
    async with running(service, settings):
        await wait_event("acoop.started")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
    assert done.state is State.CANCELED


async def test_returning_none_after_cancel_is_canceled(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("returns_when_canceled", {"key": "rn"})
    async with running(service, settings):
        await wait_event("rn.started")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
    assert done.state is State.CANCELED


async def test_returning_a_result_after_cancel_succeeds(
    service: TaskService, settings: Settings
) -> None:
    """First ending wins: the handler finished its work, so the result is kept."""
    task = await service.submit("returns_when_canceled", {"key": "rr", "result": "done anyway"})
    async with running(service, settings):
        await wait_event("rr.started")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result == "done anyway"


async def test_cooperative_process_handler_is_canceled(
    service: TaskService, settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "coop.pid"
    task = await service.submit("proc_cooperative", {"marker": str(marker)})
    async with running(service, settings):
        await wait_for(marker.exists, "the child to start")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
    assert done.state is State.CANCELED
    lines = await log_texts(service, task.id)
    assert not any("killed" in line for line in lines)


async def test_a_process_that_ignores_cancel_is_killed(
    service: TaskService, settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "stubborn.pid"
    task = await service.submit("stubborn_process", {"marker": str(marker)})
    async with running(service, settings):
        await wait_for(marker.exists, "the child to start")
        await wait_for(lambda: bool(marker.read_text()), "the child's pid")
        pid = int(marker.read_text())
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
    assert done.state is State.CANCELED
    assert not _alive(pid)
    lines = await log_texts(service, task.id)
    assert "started" in lines
    assert any("its process was killed" in line for line in lines)


async def test_an_async_handler_that_ignores_cancel_is_cancelled(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("stubborn_async", {"key": "sa"})
    async with running(service, settings) as worker:
        await wait_event("sa.started")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
        assert worker.executing == 0
    assert done.state is State.CANCELED
    lines = await log_texts(service, task.id)
    assert any("asyncio task was cancelled" in line for line in lines)


async def test_a_thread_that_ignores_cancel_is_abandoned(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("stubborn_thread", {"key": "st"})
    async with running(service, settings) as worker:
        await wait_event("st.started")
        await service.cancel(task.id)
        done = await wait_state(service, task.id)
        assert done.state is State.CANCELED
        assert worker.executing == 0  # the slot is free again
        lines = await log_texts(service, task.id)
        assert any("abandoned" in line and "thread" in line for line in lines)
        # the thread wakes up and reports: the ended task ignores it
        handlers.gate("st.release").set()
        probe = await service.submit("noop")
        await wait_state(service, probe.id)
        await asyncio.sleep(0.1)
    after = await service.get(task.id)
    assert after.state is State.CANCELED
    assert after.progress == done.progress
    assert await log_texts(service, task.id) == lines


async def test_timeout_of_an_async_handler(service: TaskService, settings: Settings) -> None:
    task = await service.submit("timeout_async")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert done.error is not None
    assert done.error.type == "TimeoutError"
    assert done.error.message == "task exceeded its timeout of 0.2 s"


async def test_timeout_of_a_cooperative_thread_handler(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("timeout_thread")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert done.error is not None and done.error.type == "TimeoutError"
    lines = await log_texts(service, task.id)
    assert lines[0] == "timeout of 0.2 s reached: asking the handler to stop"
    assert not any("abandoned" in line for line in lines)


async def test_timeout_of_a_stubborn_thread_handler(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("timeout_thread_stubborn", {"key": "tts"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert any("abandoned" in line for line in await log_texts(service, task.id))


async def test_timeout_of_a_process_handler(service: TaskService, settings: Settings) -> None:
    task = await service.submit("timeout_process")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert done.error is not None
    assert done.error.message == "task exceeded its timeout of 0.5 s"


async def test_timeout_given_at_submit(service: TaskService, settings: Settings) -> None:
    task = await service.submit("cooperative", {"key": "ts"}, timeout=0.1)
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert done.error is not None
    assert done.error.message == "task exceeded its timeout of 0.1 s"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers; it is dead for our purposes once reaped or defunct
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_cancel_whose_notification_was_lost_is_found_after_a_resync(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose notifications were interrupted (PostgreSQL's LISTEN connection came
    back) says so with an empty ``changed`` payload: the worker re-reads its tasks then,
    not only at its next heartbeat."""
    # memory: notifications arrive on the next loop turn, so the claim's is in before
    # the handler starts (a bus datagram could come later and do the re-read itself)
    settings = make_settings(tmp_path, database="memory://", lease=120.0, heartbeat_interval=60.0)
    service = await open_service(settings.database, app)
    try:
        task = await service.submit("cooperative", {"key": "lost"})
        async with running(service, settings) as worker:
            await wait_event("lost.started")
            # the worker re-reads a task once after its own claim's notification: let it
            await wait_for(
                lambda: (
                    worker._check_timer is None
                    and not worker._to_check
                    and not any(job.get_coro().__name__ == "_check" for job in worker._jobs)
                ),
                "the check after the claim",
            )
            with monkeypatch.context() as patched:
                silent = AsyncMock()
                patched.setattr(service.connector, "notify", silent)
                assert (await service.cancel(task.id)).state is State.CANCELING
            assert silent.await_count == 1  # the change notification that never went out
            worker._on_notification(CHANNEL_CHANGED, "")
            done = await wait_state(service, task.id)
        assert done.state is State.CANCELED
    finally:
        await service.close()
