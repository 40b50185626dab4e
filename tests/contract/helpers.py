"""What the contract tests share: the operations they submit, a clock they move."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgate import App, ConcurrencyLimit, Context
from taskgate.model import State, Task
from taskgate.service import TaskService


@dataclass(frozen=True)
class Backend:
    """A store the contract runs on."""

    name: str
    url: Callable[[Path], str]
    """The URL of a fresh, empty store for one test (given the test's tmp_path)."""
    shared: bool
    """Two connectors opened on one URL see one store, as two processes would."""
    marks: tuple[Any, ...] = ()


WORKER = "worker-1"
LEASE = 30.0


class Clock:
    """A clock the test moves by hand; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app() -> App:
    app = App()

    @app.operation("noop")
    def noop(ctx: Context, x: int = 0) -> None:
        """Does nothing."""

    @app.operation("vzdump", object_id="vmid", timeout=3600, priority=2)
    def vzdump(ctx: Context, vmid: int, mode: str = "snapshot") -> None:
        """A backup."""

    @app.operation("flaky", max_attempts=3, retry_on_worker_loss=True)
    def flaky(ctx: Context) -> None:
        """Safe to run again."""

    @app.operation("urgent", priority=9)
    def urgent(ctx: Context) -> None:
        """High priority by default."""

    @app.operation("brief", archive_after=10, purge_after=20)
    def brief(ctx: Context) -> None:
        """Kept for less time than the store's default."""

    @app.operation("sync", exclusive=["repository:{repository}"], shared=["remote:{remote}"])
    def sync(ctx: Context, repository: int, remote: int | None = None) -> None:
        """Holds its repository alone and shares its remote, as pulpcore's sync does."""

    @app.operation(
        "limited", concurrency=3, limits=[ConcurrencyLimit(2, per="{tenant}", name="tenants")]
    )
    def limited(ctx: Context) -> None:
        """At most 3 at once in all, 2 per tenant."""

    return app


async def running(
    service: TaskService, type: str = "noop", worker: str = WORKER, **options: object
) -> Task:
    """A new task, claimed by ``worker``."""
    task = await service.submit(type, {}, **options)
    claimed = await service.claim(worker, 1000, LEASE)
    mine = [t for t in claimed if t.id == task.id]
    assert mine, "the new task was not claimed"
    assert mine[0].state is State.RUNNING
    return mine[0]


async def ended(service: TaskService, state: State) -> Task:
    """A task that ended in ``state``."""
    task = await running(service)
    if state is State.CANCELED:
        task = await service.cancel(task.id)
    done = await service.finish(task, state)
    assert done is not None and done.state is state
    return done


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (notifications may cross a socket)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)
