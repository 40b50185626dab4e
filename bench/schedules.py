"""SCHED: the scheduler's CPU with 10,000 active schedules, at steady state.

10,000 schedules run every 10 minutes, their first runs spread over the first 10
minutes, so about 17 runs fall due each second. This process runs only the scheduler's
duty (`taskgate.runtime.upkeep.schedules`, as the elected worker runs it); another
process claims and ends the runs as a worker would, so that each run's end is counted
before the next falls due. The figure is this process's CPU time over a window after a
warm-up, as a share of one core.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path

from bench.app import app
from bench.common import store_url
from taskgate.model import State
from taskgate.runtime.upkeep import schedules as scheduler_duty
from taskgate.schedules import ScheduleService
from taskgate.service import TaskService
from taskgate.storage import connect

SCHEDULES = 10_000
PERIOD = 600.0
WARMUP = 10.0
WINDOW = 30.0


def _drain(url: str, stop: Event) -> None:
    """Claim the due runs and end them, until ``stop``."""

    async def main() -> None:
        service = TaskService(connect(url), app)
        await service.open()
        try:
            while not stop.is_set():
                claimed = await service.claim("bench-drain", 256, 60.0)
                await asyncio.gather(*(service.finish(t, State.SUCCEEDED) for t in claimed))
                if not claimed:
                    await asyncio.sleep(0.02)
        finally:
            await service.close()

    asyncio.run(main())


async def _measure(url: str) -> dict[str, float]:
    service = TaskService(connect(url), app)
    await service.open()
    schedules = ScheduleService(service)
    start = datetime.now(UTC) + timedelta(seconds=2)
    step = PERIOD / SCHEDULES
    for first in range(0, SCHEDULES, 500):
        await asyncio.gather(
            *(
                schedules.create(
                    f"s{i:05d}",
                    "noop",
                    f"{(start + timedelta(seconds=i * step)).isoformat()}/PT{PERIOD:g}S",
                )
                for i in range(first, min(first + 500, SCHEDULES))
            )
        )
    duty = asyncio.create_task(scheduler_duty(schedules, "bench", 1.0))
    try:
        await asyncio.sleep(WARMUP)
        fired_before = await _fired(schedules)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(WINDOW)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        fired = await _fired(schedules) - fired_before
    finally:
        duty.cancel()
        await asyncio.gather(duty, return_exceptions=True)
        await service.close()
    return {"cpu_percent": 100 * cpu / wall, "runs_per_s": fired / wall}


async def _fired(schedules: ScheduleService) -> int:
    total, after = 0, None
    while page := await schedules.list(after=after, limit=500):
        total += sum(s.total_run_count for s in page)
        after = page[-1]
    return total


def run(workdir: Path) -> dict[str, float]:
    url = store_url(workdir / "schedules.db")
    stop = multiprocessing.get_context("spawn").Event()
    drain = multiprocessing.get_context("spawn").Process(target=_drain, args=(url, stop))
    # the store (and its schema) exists before the drain opens it
    asyncio.run(_open_once(url))
    drain.start()
    try:
        result = asyncio.run(_measure(url))
    finally:
        stop.set()
        drain.join(10)
    print(
        f"  {SCHEDULES:,} schedules, every {PERIOD:g} s: {result['runs_per_s']:.1f} runs/s;"
        f" scheduler CPU {result['cpu_percent']:.2f} % of one core"
    )
    return result


async def _open_once(url: str) -> None:
    service = TaskService(connect(url), app)
    await service.open()
    await service.close()
