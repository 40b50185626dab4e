"""PURGE: deleting 1,000,000 finished tasks while W1 runs.

A SQLite store holds a million tasks that ended over the last 30 days (written straight
into the file, as W5 does; three log lines each). A real ``taskgate serve`` with two
worker processes runs on it, with retention off, and W1 runs on it again and again
(10,000 no-op tasks through the Python API, end to end): first alone, the baseline,
then while another process purges the million with `RetentionService` (what the
scheduler runs when ``purge_after`` has passed: the same batches of 500, each its own
transaction, paced twice as long as it took).

Figures: W1's rate while the first half of the purge goes on, against the baseline; the
slowest API call while only the purge writes (a status read and a submit over HTTP,
again and again, for the second half): what an API call waits on the purge, SQLite
having one writer at a time. The same probe beside W1, in both phases, is shown for
information: there W1's own writes are what API calls wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from bench import history
from bench.app import app
from bench.common import RawClient, pct, serve
from bench.throughput import python_api
from taskgate.retention import RetentionService
from taskgate.service import TaskService
from taskgate.storage import connect

W1_TASKS = 10_000
WORKERS = 2
AGE = 3600.0
"""The generated tasks ended at least this long ago; W1's tasks are younger."""


class TimedRetention(RetentionService):
    """`RetentionService`, timing each batch's transaction and counting what went."""

    def __init__(self, tasks: TaskService, purged: Any) -> None:
        super().__init__(tasks, archive_after=math.inf, purge_after=AGE)
        self.batches: list[float] = []
        self.purged = purged

    async def _purge_hot(self, ids: Sequence[str]) -> int:
        started = time.perf_counter()
        gone = await super()._purge_hot(ids)
        self.batches.append(time.perf_counter() - started)
        self.purged.value += gone
        return gone


def _purge(url: str, begin: Event, purged: Any, out: Any) -> None:
    async def main() -> None:
        await asyncio.to_thread(begin.wait)
        service = TaskService(connect(url), app)
        await service.open()
        keeper = TimedRetention(service, purged)
        started = time.perf_counter()
        try:
            while (await keeper.run()).more:
                pass
        finally:
            await service.close()
        out.put((time.perf_counter() - started, keeper.batches))

    asyncio.run(main())


def _probe(base: str, task_id: str, stop: Event, out: Any) -> None:
    """A client beside the load: GET a task, submit one, again, until ``stop``."""

    async def main() -> None:
        host, port = base.removeprefix("http://").split(":")
        client = RawClient(host, int(port))
        await client.connect()
        reads: list[float] = []
        submits: list[float] = []
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                status, _ = await client.request("GET", f"/v1/tasks/{task_id}")
                t1 = time.perf_counter()
                assert status == 200, status
                status, _ = await client.request("POST", "/v1/operations/noop", b"{}")
                t2 = time.perf_counter()
                assert status == 202, status
                reads.append(t1 - t0)
                submits.append(t2 - t1)
                await asyncio.sleep(0.01)
        finally:
            await client.close()
        out.put((reads, submits))

    asyncio.run(main())


@contextlib.contextmanager
def probing(base: str, task_id: str) -> Iterator[dict[str, list[float]]]:
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_probe, args=(base, task_id, stop, out))
    proc.start()
    found: dict[str, list[float]] = {}
    try:
        yield found
    finally:
        stop.set()
        found["reads"], found["submits"] = out.get(timeout=60)
        proc.join()


def describe(probe: dict[str, list[float]]) -> str:
    if not probe["reads"]:
        return "no call (the purge had ended)"
    parts = []
    for name in ("reads", "submits"):
        ms = [v * 1000 for v in probe[name]]
        parts.append(f"{name} p50 {pct(ms, 50):.1f} / p99 {pct(ms, 99):.1f} / max {max(ms):.0f} ms")
    return f"{', '.join(parts)} (n={len(probe['reads'])})"


def run(workdir: Path, count: int = 1_000_000) -> dict[str, float]:
    db = workdir / "purge.db"
    url = f"sqlite:///{db}"
    t0 = time.perf_counter()
    ids = history.generate(db, count)
    print(f"  {count:,} ended tasks (3 log lines each) written in {time.perf_counter() - t0:.0f} s")
    ctx = multiprocessing.get_context("spawn")
    begin, purged, out = ctx.Event(), ctx.Value("q", 0), ctx.Queue()
    purger = ctx.Process(target=_purge, args=(url, begin, purged, out))
    purger.start()
    with _retention_off(), serve(db, workers=WORKERS) as base:
        asyncio.run(python_api(db, 2000, "noop"))  # warm up
        with probing(base, ids[-1]) as quiet:
            baseline = [asyncio.run(python_api(db, W1_TASKS, "noop")) for _ in range(3)]
        print(f"  W1 alone: {', '.join(f'{r:,.0f}' for r in baseline)} tasks/s")
        print(f"    the API beside it: {describe(quiet)}")
        begin.set()
        rates: list[float] = []
        with probing(base, ids[-1]) as busy:
            while purged.value < count / 2 and purger.is_alive():
                rates.append(asyncio.run(python_api(db, W1_TASKS, "noop")))
        print(f"  W1 while the purge runs: {', '.join(f'{r:,.0f}' for r in rates)} tasks/s")
        print(f"    the API beside it: {describe(busy)}")
        with probing(base, ids[-1]) as alone:  # the API while only the purge writes
            while purger.is_alive() and purged.value < count * 0.95:
                time.sleep(0.2)
        print(f"  the API while the purge runs alone: {describe(alone)}")
        took, batches = out.get(timeout=3600)
        purger.join()
    print(
        f"  the purge: {purged.value:,} tasks in {took:.0f} s ({purged.value / took:,.0f}/s),"
        f" {len(batches):,} batches, each (from its submit to its commit) p50"
        f" {pct(batches, 50) * 1000:.1f} ms, p99 {pct(batches, 99) * 1000:.1f} ms,"
        f" max {max(batches) * 1000:.0f} ms"
    )
    base_rate, during = statistics.median(baseline), statistics.median(rates)
    slowest = max([*alone["reads"], *alone["submits"], 0.0]) * 1000
    return {
        "w1_baseline": base_rate,
        "w1_during": during,
        "w1_drop": 1 - during / base_rate,
        "slowest_api_ms": slowest,
        "batch_p50_ms": pct(batches, 50) * 1000,
        "purge_s": took,
    }


@contextlib.contextmanager
def _retention_off() -> Iterator[None]:
    """The server keeps every task: only the benchmark's purge deletes."""
    old = {k: os.environ.get(k) for k in ("TASKGATE_ARCHIVE_AFTER", "TASKGATE_PURGE_AFTER")}
    os.environ.update(TASKGATE_ARCHIVE_AFTER="never", TASKGATE_PURGE_AFTER="never")
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
