"""Many nodes for real: 2 API processes and 3 worker processes on one PostgreSQL
database, 5,000 tasks submitted through both APIs at once; every task runs exactly
once (its handler's rows in ``runs`` say so) and none is lost."""

from __future__ import annotations

import asyncio
import itertools
import time
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
from bench.common import RawClient
from scripts.cluster import Cluster

pytestmark = pytest.mark.postgres

TASKS = 5_000
CLIENTS = 16
"""Concurrent submitters per API."""
ENDED = ("succeeded", "failed", "canceled", "timed_out")


async def submit_all(urls: list[str], key: str) -> list[str]:
    """``TASKS`` submits of ``record``, split evenly between ``urls``; their task ids.

    Through bench's lean HTTP/1.1 client: httpx costs about 2 ms of CPU per request,
    which on two cores would slow the servers under test more than their own work."""
    numbers = itertools.count()
    ids: list[str] = []
    auth = f"Authorization: Bearer {key}\r\n"

    async def submitter(url: str) -> None:
        address = urlsplit(url)
        assert address.hostname is not None and address.port is not None
        client = RawClient(address.hostname, address.port)
        await client.connect()
        try:
            while next(numbers) < TASKS:
                status, body = await client.request("POST", "/v1/operations/record", b"{}", auth)
                assert status == 202, body
                ids.append(orjson.loads(body)["id"])
        finally:
            await client.close()

    await asyncio.gather(*(submitter(urls[i % len(urls)]) for i in range(CLIENTS * len(urls))))
    return ids


def wait_until_ended(database: str, count: int, timeout: float = 90.0) -> dict[str, int]:
    """Tasks by state, once ``count`` of them have ended (or the time is up)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT state, count(*) FROM tasks GROUP BY state").fetchall()
            states: dict[str, int] = dict(rows)
            ended = sum(n for state, n in states.items() if state in ENDED)
            if ended >= count or time.monotonic() > deadline:
                return states
            time.sleep(0.2)


def test_every_task_runs_exactly_once(cluster: Cluster, database: str) -> None:
    assert len(cluster.urls) == 2 and len(cluster.workers) == 3
    ids = asyncio.run(submit_all(cluster.urls, cluster.key))
    assert len(ids) == len(set(ids)) == TASKS

    assert wait_until_ended(database, TASKS) == {"succeeded": TASKS}
    with psycopg.connect(database, autocommit=True) as conn:
        runs = conn.execute("SELECT task_id, pid FROM runs").fetchall()
    assert len(runs) == TASKS  # no task ran twice...
    assert {task_id for task_id, _ in runs} == set(ids)  # ...and none was lost
    assert {pid for _, pid in runs} == {w.pid for w in cluster.workers}  # all 3 worked
