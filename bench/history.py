"""W5: reads with 1,000,000 finished tasks stored.

The history is written straight into the SQLite file (generating a million tasks through
workers would take the benchmark's whole budget); the rows are shaped exactly as taskgate
writes them, three log lines each. Reads then go through the real service and HTTP API.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.app import app
from bench.common import pct, serve, summary_ms
from taskgate.model import State, TaskFilter
from taskgate.service import TaskService
from taskgate.storage import connect

TYPES = ("vzdump", "aptupdate", "create_volume", "migrate", "snapshot")
COLUMNS = (
    "id, upid, type, object_id, tenant, user_name, node, worker, state, progress, message,"
    " params, result, error, attempt, max_attempts, created_at, started_at, updated_at,"
    " finished_at, log_count, version"
)


def _uuid7(ms: int, rng: random.Random) -> str:
    value = ms << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


async def _create_schema(db: Path) -> None:
    service = TaskService(connect(f"sqlite:///{db}"), app)
    await service.open()
    await service.close()


def generate(db: Path, count: int, seed: int = 7) -> list[str]:
    asyncio.run(_create_schema(db))
    rng = random.Random(seed)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    start_ms = int((time.time() - 30 * 86400) * 1000)
    step_ms = 30 * 86400 * 1000 // count
    ids: list[str] = []
    placeholders = ", ".join("?" * len(COLUMNS.split(",")))
    batch: list[tuple[object, ...]] = []
    logs: list[tuple[object, ...]] = []
    for i in range(count):
        ms = start_ms + i * step_ms
        task_id = _uuid7(ms, rng)
        ids.append(task_id)
        roll = rng.random()
        state = "succeeded" if roll < 0.9 else "failed" if roll < 0.98 else "canceled"
        type_ = TYPES[i % len(TYPES)]
        vmid = 100 + rng.randrange(900)
        t = ms / 1000
        error = (
            orjson.dumps(
                {
                    "type": "RuntimeError",
                    "message": "backup failed",
                    "traceback": "Traceback (most recent call last): ...",
                }
            ).decode()
            if state == "failed"
            else None
        )
        batch.append(
            (
                task_id,
                f"UPID:pve1:{i & 0xFFFFFFFF:08X}:{rng.getrandbits(32):08X}:{int(t):08X}:"
                f"{type_}:{vmid}:root@pam:",
                type_,
                str(vmid),
                "default",
                "root@pam",
                "pve1",
                "pve1-123-ab",
                state,
                100.0 if state == "succeeded" else 40.0,
                "done",
                orjson.dumps({"vmid": vmid, "mode": "snapshot"}).decode(),
                orjson.dumps({"archive": f"vzdump-qemu-{vmid}.vma.zst"}).decode()
                if state == "succeeded"
                else None,
                error,
                1,
                1,
                t,
                t + 0.01,
                t + 2,
                t + 2,
                3,
                6,
            )
        )
        for n, text in enumerate(("starting", "working", "finished"), start=1):
            logs.append((task_id, n, t + n / 10, "info", f"INFO: {text} {type_} {vmid}"))
        if len(batch) >= 20_000:
            _flush(conn, placeholders, batch, logs)
    _flush(conn, placeholders, batch, logs)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return ids


def _flush(conn: sqlite3.Connection, placeholders: str, batch: list, logs: list) -> None:  # type: ignore[type-arg]
    with conn:
        conn.executemany(f"INSERT INTO tasks ({COLUMNS}) VALUES ({placeholders})", batch)
        conn.executemany("INSERT INTO task_logs VALUES (?, ?, ?, ?, ?)", logs)
    batch.clear()
    logs.clear()


async def _store_reads(db: Path, ids: list[str], samples: int) -> dict[str, list[float]]:
    rng = random.Random(1)
    service = TaskService(connect(f"sqlite:///{db}"), app)
    await service.open()
    out: dict[str, list[float]] = {"get": [], "list": [], "list_deep": [], "list_object": []}
    try:
        for _ in range(samples):
            task_id = rng.choice(ids)
            t0 = time.perf_counter()
            await service.get(task_id)
            out["get"].append(time.perf_counter() - t0)
        flt = TaskFilter(states=(State.FAILED,), types=("vzdump",))
        for _ in range(samples // 10):
            t0 = time.perf_counter()
            page = await service.list(flt, limit=50)
            out["list"].append(time.perf_counter() - t0)
            assert len(page.items) == 50
        cursors = []
        page = await service.list(flt, limit=50)
        for _ in range(40):
            if page.next_cursor is None:
                break
            cursors.append(page.next_cursor)
            page = await service.list(flt, cursor=page.next_cursor, limit=50)
        for _ in range(samples // 10):
            t0 = time.perf_counter()
            await service.list(flt, cursor=rng.choice(cursors), limit=50)
            out["list_deep"].append(time.perf_counter() - t0)
        for _ in range(samples // 10):
            t0 = time.perf_counter()
            await service.list(TaskFilter(object_id=str(100 + rng.randrange(900))), limit=50)
            out["list_object"].append(time.perf_counter() - t0)
    finally:
        await service.close()
    return out


def _http_reads(base: str, ids: list[str], samples: int) -> dict[str, list[float]]:
    rng = random.Random(2)
    out: dict[str, list[float]] = {"get": [], "list": []}
    with httpx.Client(base_url=base) as client:
        for _ in range(samples):
            t0 = time.perf_counter()
            r = client.get(f"/v1/tasks/{rng.choice(ids)}")
            out["get"].append(time.perf_counter() - t0)
            assert r.status_code == 200
        for _ in range(samples // 10):
            t0 = time.perf_counter()
            # one tenant's list, as a tenant's key asks for it (auth is off: see common.py)
            params: dict[str, str | int] = {
                "state": "failed",
                "type": "vzdump",
                "limit": 50,
                "tenant": "default",
            }
            r = client.get("/v1/tasks", params=params)
            out["list"].append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()["items"]) == 50
    return out


def run(workdir: Path, count: int = 1_000_000, samples: int = 5000) -> dict[str, float]:
    db = workdir / "w5.db"
    t0 = time.perf_counter()
    ids = generate(db, count)
    size = sum(p.stat().st_size for p in workdir.glob("w5.db*"))
    print(
        f"  W5 history of {count:,} tasks written in {time.perf_counter() - t0:.0f} s; "
        f"{size / count:,.0f} bytes on disk per task (with 3 log lines each)"
    )
    store = asyncio.run(_store_reads(db, ids, samples))
    print(f"  W5 store get-by-id: {summary_ms(store['get'])}")
    print(f"  W5 store list state=failed&type=vzdump, first page: {summary_ms(store['list'])}")
    print(f"  W5 store list, same filter, pages 2-41 by cursor: {summary_ms(store['list_deep'])}")
    print(f"  W5 store list object_id=N: {summary_ms(store['list_object'])}")
    with serve(db, workers=0) as base:
        http = _http_reads(base, ids, samples)
    print(f"  W5 HTTP GET /v1/tasks/{{id}}: {summary_ms(http['get'])}")
    print(f"  W5 HTTP GET /v1/tasks?state=failed&type=vzdump: {summary_ms(http['list'])}")
    return {
        "bytes_per_task": size / count,
        "get_p99_ms": pct(store["get"], 99) * 1000,
        "http_get_p99_ms": pct(http["get"], 99) * 1000,
        "list_p99_ms": max(pct(store[k], 99) for k in ("list", "list_deep", "list_object")) * 1000,
        "http_list_p99_ms": pct(http["list"], 99) * 1000,
    }
