"""The slow loops beside a worker's claim loop: heartbeats, the reaper, the schedules.

- `heartbeats` renews the lease of every task the worker holds, every
  ``heartbeat_every`` seconds: the tasks it knows of, by id, not every task under its
  name, so that a task whose claim committed but never reached the worker (the
  connection died on the way back) runs out of lease and is recovered rather than kept
  ``running`` for ever. A failed heartbeat (the store unavailable) is logged and tried
  again sooner; the leases run out only if none gets through for ``lease`` seconds.
- `reaper` ends or re-queues the tasks of workers whose leases ran out, every
  ``reaper_interval`` seconds. Only the scheduler runs it, one worker per store
  (`taskgate.runtime.elector`); each change it makes is conditional all the same, so a
  second reaper for a moment (a stalled scheduler replaced) is harmless.
- `schedules` submits the runs of named schedules as they fall due
  (`taskgate.schedules`), also only on the scheduler. It sleeps until the next run is
  due, at most ``schedule_interval`` seconds (so it sees ended runs within that), and
  wakes as soon as a ``schedules`` notification says a schedule was created or changed.
- `retention` moves ended tasks to history and deletes them when their time has come
  (`taskgate.retention`), every ``retention_interval`` seconds, and at once again while
  a pass leaves work behind.
- `aging` raises tasks that waited ``priority_aging`` seconds behind higher priorities
  (`taskgate.work.WorkerSide.promote_starved`), every tenth of that (at most 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Callable, Collection

from taskgate.errors import StorageError
from taskgate.retention import RetentionService
from taskgate.schedules import ScheduleService
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage.connector import CHANNEL_SCHEDULES

log = logging.getLogger("taskgate.worker")


async def heartbeats(
    service: TaskService,
    worker_id: str,
    settings: Settings,
    held: Callable[[], Collection[str]],
    after: Callable[[], None],
) -> None:
    """Renew the leases of the tasks ``held()`` names until cancelled; call ``after``
    when a heartbeat got through."""
    failing = False
    while True:
        await asyncio.sleep(
            min(settings.heartbeat_every, 1.0) if failing else settings.heartbeat_every
        )
        try:
            await service.heartbeat(
                worker_id,
                lease=settings.lease,
                pid=os.getpid(),
                concurrency=settings.concurrency,
                task_ids=held(),
            )
        except StorageError as exc:
            failing = True
            log.warning(
                "worker %s: heartbeat failed (%s); retrying. Leases run out %g s after"
                " the last one that got through",
                worker_id,
                exc,
                settings.lease,
            )
            continue
        if failing:
            log.info("worker %s: heartbeats get through again", worker_id)
            failing = False
        after()


async def reaper(service: TaskService, worker_id: str, interval: float) -> None:
    """Recover the tasks of lost workers until cancelled; the first look is at once."""
    while True:
        try:
            recovered = await service.recover_lost()
        except StorageError as exc:
            log.warning("worker %s: looking for lost tasks failed: %s", worker_id, exc)
        else:
            for task in recovered:
                log.warning(
                    "task %s (%s): its worker %s was lost; the task is now %s",
                    task.id,
                    task.type,
                    task.worker,
                    task.state,
                )
        await asyncio.sleep(interval)


async def schedules(service: ScheduleService, worker_id: str, interval: float) -> None:
    """Submit the runs of due schedules until cancelled; the first look is at once, and
    another as soon as a schedule is created or changed anywhere."""
    clock = service.tasks.clock
    connector = service.connector
    changed = asyncio.Event()

    def on_notification(channel: str, payload: str) -> None:
        if channel == CHANNEL_SCHEDULES:
            changed.set()

    connector.add_listener(on_notification)
    try:
        while True:
            changed.clear()
            try:
                await service.run_due()
                next_run = await service.next_run()
            except StorageError as exc:
                log.warning("worker %s: running the schedules failed: %s", worker_id, exc)
                next_run = None
            delay = interval if next_run is None else min(interval, max(0.0, next_run - clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)
    finally:
        connector.remove_listener(on_notification)


async def retention(service: RetentionService, worker_id: str, interval: float) -> None:
    """Archive and purge expired tasks until cancelled; the first pass is at once."""
    while True:
        more = False
        try:
            more = (await service.run()).more
        except StorageError as exc:
            log.warning("worker %s: the retention pass failed: %s", worker_id, exc)
        await asyncio.sleep(0.0 if more else interval)


async def aging(service: TaskService, worker_id: str, after: float) -> None:
    """Raise starved tasks until cancelled (``after`` infinite: never)."""
    if math.isinf(after):
        return
    while True:
        await asyncio.sleep(min(after / 10, 10.0))
        try:
            raised = await service.promote_starved(after)
        except StorageError as exc:
            log.warning("worker %s: raising starved tasks failed: %s", worker_id, exc)
            continue
        if raised:
            log.info("%d tasks waited over %g s: raised to the top priority", len(raised), after)
