"""UI: the dashboard's first requests with 1,000,000 tasks in history.

The history is `bench.history.generate`'s million ended tasks (30 days of them), moved
into ``task_history`` as retention would (archived, version raised; one in a hundred
carries a label ``ticket``, which the ``task_history`` trigger indexes); then a few
thousand tasks go into the hot table through the service (waiting, running and ended).

Timed server-side, in-process: each request goes through the real ASGI application
(`taskgate.http.create_app`, routing, auth off, the store's reads, JSON encoding) with
`httpx.ASGITransport`, so no socket or client process is in the figure. The list is
the one the dashboard's task page asks for first (``archived=any&limit=50``), then with
a state filter, a search by object id and by label value; the overview is
``GET /v1/stats`` with its default hour, and with the longest window (7 days).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx

from bench.app import app
from bench.common import pct, summary_ms
from bench.history import generate
from taskgate.http import create_app
from taskgate.model import State
from taskgate.service import Submission, TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

HOT = 3000
RUNS = 20
REQUESTS: dict[str, str] = {
    "list": "/v1/tasks?archived=any&limit=50",
    "list_state": "/v1/tasks?archived=any&limit=50&state=failed",
    "list_q_object": "/v1/tasks?archived=any&limit=50&q=555",
    "list_q_label": "/v1/tasks?archived=any&limit=50&q=T-4242",
    "list_tenant": "/v1/tasks?archived=any&limit=50&tenant=default",
    "stats": "/v1/stats",
    "stats_7d": "/v1/stats?window=604800&buckets=200",
}


def archive(db: Path) -> None:
    """Move every ended task of the hot table into history, as retention does."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(task_history)")]
    chosen = {
        "archived": "1",
        "version": "version + 1",
        "labels": "CASE WHEN rowid % 100 = 0 THEN json_object('ticket', 'T-' || (rowid / 100)) END",
    }
    select = ", ".join(chosen.get(c, c) for c in columns)
    with conn:
        conn.execute(f"INSERT INTO task_history ({', '.join(columns)}) SELECT {select} FROM tasks")
        conn.execute("DELETE FROM tasks")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _hot(service: TaskService) -> None:
    """A few thousand tasks in the hot table: waiting, running, ended."""
    tasks = await service.submit_many([("noop", {}) for _ in range(HOT)])
    claimed = await service.claim("ui-bench-w1", HOT // 2, 60.0)
    states = (State.SUCCEEDED, State.FAILED, State.CANCELED, State.TIMED_OUT)
    for i, task in enumerate(claimed[: HOT // 3]):
        await service.finish(task, states[i % len(states)])
    await service.submit_many([("noop", {}) for _ in range(100)], Submission(delay=3600))
    assert len(tasks) == HOT


async def _measure(db: Path) -> dict[str, list[float]]:
    service = TaskService(connect(f"sqlite:///{db}"), app)
    await service.open()
    out: dict[str, list[float]] = {name: [] for name in REQUESTS}
    try:
        await _hot(service)
        api = create_app(service, Settings(auth=False))
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, url in REQUESTS.items():
                for _ in range(RUNS):
                    t0 = time.perf_counter()
                    response = await client.get(url)
                    out[name].append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
                body = response.json()
                if name.startswith("list"):
                    assert body["items"], name
    finally:
        await service.close()
    return out


def run(workdir: Path, count: int = 1_000_000) -> dict[str, float]:
    db = workdir / "ui.db"
    t0 = time.perf_counter()
    generate(db, count)
    archive(db)
    print(f"  UI history of {count:,} tasks written in {time.perf_counter() - t0:.0f} s")
    timings = asyncio.run(_measure(db))
    figures: dict[str, float] = {}
    for name, url in REQUESTS.items():
        runs = timings[name]
        print(f"  UI GET {url}: {summary_ms(runs)}, max {max(runs) * 1000:.2f} ms")
        figures[f"{name}_p50_ms"] = pct(runs, 50) * 1000
        figures[f"{name}_max_ms"] = max(runs) * 1000
    return figures
