"""W1: no-op tasks end to end, drained by the workers of a real `taskgate serve`, on
SQLite and on PostgreSQL; and how PostgreSQL's rate scales with the worker processes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench import postgres
from bench.app import app
from bench.common import RawClient, serve, store_url
from taskgate.model import State, TaskFilter
from taskgate.service import TaskService
from taskgate.storage import connect

PENDING = TaskFilter(states=(State.QUEUED, State.SCHEDULED, State.RUNNING, State.CANCELING))


async def _drain(service: TaskService, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (await service.list(PENDING, limit=1)).items:
        if time.monotonic() > deadline:
            raise RuntimeError("tasks did not drain")
        await asyncio.sleep(0.005)


async def _count(service: TaskService, state: State) -> int:
    total, cursor = 0, None
    while True:
        page = await service.list(TaskFilter(states=(state,)), cursor=cursor, limit=500)
        total += len(page.items)
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


async def python_api(db: Path | str, tasks: int, op: str) -> float:
    """Submit ``tasks`` concurrently through TaskService.submit; tasks/s end to end."""
    service = TaskService(connect(store_url(db)), app)
    await service.open()
    try:
        started = time.perf_counter()
        for i in range(0, tasks, 1000):  # 1,000 in flight: one group commit each
            await asyncio.gather(*(service.submit(op) for _ in range(min(1000, tasks - i))))
        await _drain(service)
        elapsed = time.perf_counter() - started
        done = await _count(service, State.SUCCEEDED)
        if done < tasks:
            raise RuntimeError(f"only {done} of {tasks} tasks succeeded")
        return tasks / elapsed
    finally:
        await service.close()


async def http_api(db: Path | str, base: str, tasks: int, clients: int) -> float:
    """``clients`` concurrent HTTP clients submit ``tasks``; tasks/s end to end."""
    host, port = base.removeprefix("http://").split(":")
    service = TaskService(connect(store_url(db)), app)
    await service.open()
    remaining = tasks

    async def client() -> None:
        nonlocal remaining
        c = RawClient(host, int(port))
        await c.connect()
        try:
            while remaining > 0:
                remaining -= 1
                status, body = await c.request("POST", "/v1/operations/noop", b"{}")
                if status != 202:
                    raise RuntimeError(f"submit answered {status}: {body[:200]!r}")
        finally:
            await c.close()

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        submitted = time.perf_counter() - started
        await _drain(service)
        elapsed = time.perf_counter() - started
        print(f"    (submits alone: {tasks / submitted:,.0f}/s)")
        return tasks / elapsed
    finally:
        await service.close()


def run(workdir: Path, tasks: int = 10_000, workers: int = 2) -> dict[str, float]:
    results: dict[str, float] = {}
    db = workdir / "w1.db"
    with serve(db, workers=workers):
        for op in ("noop", "noop_async"):
            rate = asyncio.run(python_api(db, tasks, op))
            results[f"python_{op}"] = rate
            print(f"  W1 Python API, {tasks:,} {op}: {rate:,.0f} tasks/s end to end")
    db = workdir / "w1-http.db"
    with serve(db, workers=workers) as base:
        rate = asyncio.run(http_api(db, base, tasks, 16))
        results["http"] = rate
        print(f"  W1 HTTP, 16 clients, {tasks:,} noop: {rate:,.0f} tasks/s end to end")
    return results


def run_postgres(workdir: Path, tasks: int = 10_000, workers: int = 2) -> dict[str, float]:
    """W1 on PostgreSQL: the Python API's no-op tasks, drained by ``workers`` processes."""
    print(f"  PostgreSQL: {postgres.server_settings()}")
    results: dict[str, float] = {}
    for op in ("noop", "noop_async"):
        with postgres.database() as url, serve(url, workers=workers):
            rate = asyncio.run(python_api(url, tasks, op))
        results[f"python_{op}"] = rate
        print(f"  W1 PostgreSQL, {workers} workers, {tasks:,} {op}: {rate:,.0f} tasks/s end to end")
    return results


def scaling(
    workdir: Path, tasks: int = 10_000, counts: tuple[int, ...] = (1, 2, 4)
) -> dict[str, float]:
    """W1's no-op tasks on PostgreSQL with 1, 2 and 4 worker processes, as a table."""
    rates: dict[int, float] = {}
    for workers in counts:
        with postgres.database() as url, serve(url, workers=workers):
            rates[workers] = asyncio.run(python_api(url, tasks, "noop"))
    base = rates[counts[0]] / counts[0]
    print(f"  {'workers':>7}  {'tasks/s':>8}  {'per worker':>10}  {'efficiency':>10}")
    for workers, rate in rates.items():
        per = rate / workers
        print(f"  {workers:>7}  {rate:>8,.0f}  {per:>10,.0f}  {per / base:>10.0%}")
    return {f"workers_{n}": rate for n, rate in rates.items()}
