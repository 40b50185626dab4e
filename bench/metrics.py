"""Metrics: ``GET /metrics`` of a real ``taskgate serve`` (the API alone, so that no
worker runs the waiting tasks) whose store holds 10,000 active tasks, half queued and
half running, beside 20,000 ended ones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from bench.app import app
from bench.common import pct, serve, store_url, summary_ms
from taskgate.model import State
from taskgate.service import TaskService
from taskgate.storage import connect

ACTIVE = 10_000
ENDED = 20_000
SCRAPES = 200


async def fill(db: Path) -> None:
    """``ENDED`` succeeded tasks, then ``ACTIVE`` ones of two operations, half running
    (claimed by a worker that does not exist, with a lease of a day), half queued."""
    service = TaskService(connect(store_url(db)), app)
    await service.open()
    try:
        for _ in range(0, ENDED, 1000):
            await service.submit_many([("noop", {})] * 1000)
            claimed = await service.claim("bench-gone", 1000, 86400)
            await asyncio.gather(*(service.finish(t, State.SUCCEEDED) for t in claimed))
        for start in range(0, ACTIVE, 1000):
            op = ("noop", "noop_async")[start // 1000 % 2]
            await service.submit_many([(op, {})] * 1000)
            if start < ACTIVE // 2:
                await service.claim("bench-gone", 1000, 86400)
    finally:
        await service.close()


def run(workdir: Path) -> dict[str, float]:
    db = workdir / "metrics.db"
    started = time.perf_counter()
    asyncio.run(fill(db))
    print(
        f"  stored {ACTIVE:,} active and {ENDED:,} ended tasks in"
        f" {time.perf_counter() - started:.1f} s"
    )
    with serve(db, workers=0) as base, httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(10):  # warm up
            response = client.get("/metrics")
            assert response.status_code == 200, response.text
        times = []
        for _ in range(SCRAPES):
            begun = time.perf_counter()
            response = client.get("/metrics")
            times.append(time.perf_counter() - begun)
            assert response.status_code == 200
        text = response.text
    running = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("taskgate_tasks{") and 'state="running"' in line
    )
    assert running == ACTIVE // 2, text
    print(f"  GET /metrics ({len(text):,} bytes): {summary_ms(times)}")
    return {"p50_ms": pct(times, 50) * 1000, "p99_ms": pct(times, 99) * 1000}
