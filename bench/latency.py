"""W2: one task at a time on idle workers (Python API, raw HTTP, and the SDK)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from bench import postgres
from bench.app import app
from bench.common import RawClient, pct, serve, store_url, summary_ms
from taskgate.client import Client
from taskgate.service import TaskService
from taskgate.storage import connect


async def submit_to_start(db: Path | str, samples: int) -> list[float]:
    """Submit through the Python API; the handler returns when it started."""
    service = TaskService(connect(store_url(db)), app)
    await service.open()
    latencies = []
    try:
        for _ in range(samples):
            t0 = time.time()
            task = await service.submit("stamp")
            while not task.terminal:
                task = await service.wait(task.id, 10, seen_version=task.version)
            latencies.append(float(task.result) - t0)
            await asyncio.sleep(0.01)  # idle workers again
    finally:
        await service.close()
    return latencies


async def submit_to_result(base: str, samples: int) -> list[float]:
    """POST the task, then long-poll it with ?wait until it has ended."""
    host, port = base.removeprefix("http://").split(":")
    client = RawClient(host, int(port))
    await client.connect()
    latencies = []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            status, body = await client.request("POST", "/v1/operations/stamp", b"{}")
            assert status == 202, body
            task = orjson.loads(body)
            while task["state"] not in ("succeeded", "failed", "canceled", "timed_out"):
                status, body = await client.request("GET", f"/v1/tasks/{task['id']}?wait=10")
                task = orjson.loads(body)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)
    finally:
        await client.close()
    return latencies


def sdk_round_trip(base: str, samples: int) -> list[float]:
    """Through the SDK, as a user would: ``client.submit`` then ``client.wait`` (its
    ``?wait`` long poll), on one keep-alive connection."""
    latencies = []
    with Client(base) as client:
        client.wait(client.submit("stamp"))  # open the connection first
        for _ in range(samples):
            t0 = time.perf_counter()
            client.wait(client.submit("stamp"))
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.01)  # idle workers again
    return latencies


def run(workdir: Path, samples: int = 300) -> dict[str, float]:
    db = workdir / "w2.db"
    with serve(db, workers=2) as base:
        start = asyncio.run(submit_to_start(db, samples))
        print(f"  W2 submit -> handler start: {summary_ms(start)}")
        result = asyncio.run(submit_to_result(base, samples))
        print(f"  W2 submit -> result seen with ?wait: {summary_ms(result)}")
        sdk = sdk_round_trip(base, samples)
        print(f"  W2 SDK client.submit + client.wait: {summary_ms(sdk)}")
    return {
        "start_p50_ms": pct(start, 50) * 1000,
        "start_p99_ms": pct(start, 99) * 1000,
        "result_p50_ms": pct(result, 50) * 1000,
        "sdk_p50_ms": pct(sdk, 50) * 1000,
    }


def run_postgres(workdir: Path, samples: int = 300) -> dict[str, float]:
    """W2 on PostgreSQL: submit -> handler start, and the result through ``?wait``."""
    with postgres.database() as url, serve(url, workers=2) as base:
        start = asyncio.run(submit_to_start(url, samples))
        print(f"  W2 PostgreSQL submit -> handler start: {summary_ms(start)}")
        result = asyncio.run(submit_to_result(base, samples))
        print(f"  W2 PostgreSQL submit -> result seen with ?wait: {summary_ms(result)}")
    return {
        "start_p50_ms": pct(start, 50) * 1000,
        "start_p99_ms": pct(start, 99) * 1000,
        "result_p50_ms": pct(result, 50) * 1000,
    }
