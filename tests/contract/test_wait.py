"""wait(): answers when the task changes or ends, or at the timeout; and the
notifications it relies on."""

from __future__ import annotations

import asyncio

import pytest

from taskgate.model import State
from taskgate.service import NewLogLine, Progress, TaskService
from taskgate.storage.connector import CHANNEL_CHANGED, CHANNEL_DUE

from .helpers import LEASE, WORKER, ended, eventually, running

LONG = 60.0
"""A wait that must end long before this; `GUARD` fails the test instead of hanging."""
GUARD = 10.0


async def test_wait_on_an_ended_task_returns_at_once(service: TaskService) -> None:
    task = await ended(service, State.FAILED)
    assert await asyncio.wait_for(service.wait(task.id, LONG), GUARD) == task


async def test_wait_returns_at_once_when_already_changed(service: TaskService) -> None:
    task = await service.submit("noop", {})
    (claimed,) = await service.claim(WORKER, 1, LEASE)
    seen = await asyncio.wait_for(service.wait(task.id, LONG, seen_version=task.version), GUARD)
    assert seen == claimed
    assert await service.wait(task.id, 0) == claimed


async def test_wait_times_out_with_the_task_unchanged(service: TaskService) -> None:
    task = await service.submit("noop", {})
    assert await service.wait(task.id, 0.05) == task


async def test_wait_wakes_on_a_change(service: TaskService, peer: TaskService) -> None:
    task = await service.submit("noop", {})
    waiter = asyncio.ensure_future(service.wait(task.id, LONG))
    await eventually(lambda: service.feed.watching(task.id) > 0)  # it is waiting
    (claimed,) = await peer.claim(WORKER, 1, LEASE)
    woke = await asyncio.wait_for(waiter, GUARD)
    assert woke.state is State.RUNNING and woke.version == claimed.version


@pytest.mark.parametrize("change", ["progress", "log", "cancel", "finish"])
async def test_wait_wakes_on_every_kind_of_change(
    service: TaskService, peer: TaskService, change: str
) -> None:
    task = await running(service)
    waiter = asyncio.ensure_future(service.wait(task.id, LONG, seen_version=task.version))
    await asyncio.sleep(0)
    if change == "progress":
        await peer.report(task, Progress(progress=10))
    elif change == "log":
        await peer.append_log(task.id, [NewLogLine("hello")])
    elif change == "cancel":
        await peer.cancel(task.id)
    else:
        await peer.finish(task, State.SUCCEEDED)
    woke = await asyncio.wait_for(waiter, GUARD)
    assert woke.version > task.version
    assert woke == await service.get(task.id)


async def test_wait_returns_on_the_end(service: TaskService, peer: TaskService) -> None:
    task = await running(service)
    waiter = asyncio.ensure_future(service.wait(task.id, LONG, seen_version=task.version))
    await asyncio.sleep(0)
    await peer.finish(task, State.SUCCEEDED, result="ok")
    woke = await asyncio.wait_for(waiter, GUARD)
    assert woke.state is State.SUCCEEDED and woke.result == "ok"


async def test_closing_the_service_releases_waiters(url: str) -> None:
    from taskgate.storage import connect

    from .helpers import make_app

    service = TaskService(connect(url), make_app())
    await service.open()
    task = await service.submit("noop", {})
    waiter = asyncio.ensure_future(service.wait(task.id, LONG))
    await eventually(lambda: service.feed.watching(task.id) > 0)
    await service.close()
    assert (await asyncio.wait_for(waiter, GUARD)).id == task.id


async def test_notifications(service: TaskService, peer: TaskService) -> None:
    heard: list[tuple[str, str]] = []
    peer.connector.add_listener(lambda channel, payload: heard.append((channel, payload)))
    task = await service.submit("noop", {})
    await eventually(lambda: (CHANNEL_DUE, "") in heard)
    await service.claim(WORKER, 1, LEASE)

    def told_changed() -> bool:
        return any(c == CHANNEL_CHANGED and task.id in p.split(",") for c, p in heard)

    await eventually(told_changed)


async def test_notifications_come_after_the_call(service: TaskService) -> None:
    heard: list[str] = []
    service.connector.add_listener(lambda channel, payload: heard.append(channel))
    await service.connector.notify(CHANNEL_DUE)
    assert heard == []  # delivered on a later turn of the loop, as a bus delivers
    await eventually(lambda: heard == [CHANNEL_DUE])
