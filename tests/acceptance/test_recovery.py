"""Processes dying: a worker killed or frozen mid-task, the whole server killed and
restarted, a graceful stop. No task may stay running; no accepted task may be lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from .server import (
    LEASE,
    TERMINAL,
    Server,
    active_tasks,
    alive,
    log_lines,
    submit,
    wait_ended,
    wait_until,
    worker_pid,
)

pytestmark = pytest.mark.acceptance

MakeServer = Callable[..., Server]


def wait_for_workers(server: Server, count: int, *, without: int, timeout: float = 30) -> None:
    """Until serve runs ``count`` workers again, none of them ``without``."""
    deadline = time.monotonic() + timeout
    while True:
        pids = server.worker_pids()
        if len(pids) == count and without not in pids:
            return
        assert time.monotonic() < deadline, f"workers now: {pids}\n{server.log_text()}"
        time.sleep(0.05)


def test_kill_9_of_a_worker_fails_its_task_and_the_worker_comes_back(
    make_server: MakeServer,
) -> None:
    server = make_server().start()
    with server.client() as client:
        task_id = submit(client, "sleep", {"seconds": 120})
        running = wait_until(client, task_id, {"running"})
        pid = worker_pid(running)
        assert pid in server.worker_pids()
        os.kill(pid, signal.SIGKILL)

        done = wait_ended(client, task_id, timeout=LEASE * 10)
        assert done["state"] == "failed"
        assert done["error"]["type"] == "WorkerLost"
        assert any("worker lost" in line for line in log_lines(client, task_id))
        assert active_tasks(client) == []

        wait_for_workers(server, 2, without=pid)
        # the new worker works
        again = submit(client, "echo", {"steps": 1})
        assert wait_ended(client, again)["state"] == "succeeded"
    assert server.stop() == 0


def test_kill_9_of_a_worker_requeues_a_task_safe_to_retry(make_server: MakeServer) -> None:
    server = make_server().start()
    with server.client() as client:
        task_id = submit(client, "sleep_requeue", {"seconds": 120})
        running = wait_until(client, task_id, {"running"})
        os.kill(worker_pid(running), signal.SIGKILL)
        done = wait_ended(client, task_id, timeout=LEASE * 10)
        assert done["state"] == "succeeded"
        assert done["result"] == {"attempt": 2}
        assert done["attempt"] == 2
        assert active_tasks(client) == []
    assert server.stop() == 0


def freeze_outside_a_write(pid: int, database: Path | str) -> None:
    """SIGSTOP a worker, but not while it holds a write lock.

    A process frozen inside SQLite's write transaction blocks every writer until it
    resumes (SQLite's single-writer design), and one frozen inside a PostgreSQL
    transaction blocks whoever writes the rows it locked (the reaper recovering its
    task): not what this test is about. So: freeze, check that no write is held, else
    thaw and try again.
    """
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        if not _write_held(database):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the worker always held a write lock")


def _write_held(database: Path | str) -> bool:
    """Whether some process is inside a (write) transaction on ``database``."""
    if isinstance(database, str):
        with psycopg.connect(database, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            ).fetchone()
            return row is not None and row[0] > 0
    probe = sqlite3.connect(database, timeout=0.2, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def test_a_frozen_worker_loses_its_task_when_its_lease_runs_out(make_server: MakeServer) -> None:
    # SIGSTOP: the process is alive (serve sees nothing wrong), but it stops renewing
    # its lease; another worker's reaper must recover the task.
    server = make_server().start()
    with server.client() as client:
        task_id = submit(client, "sleep", {"seconds": 120})
        pid = worker_pid(wait_until(client, task_id, {"running"}))
        freeze_outside_a_write(pid, server.database)
        try:
            done = wait_ended(client, task_id, timeout=LEASE * 10)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert done["state"] == "failed"
        assert done["error"]["type"] == "WorkerLost"
        # the thawed worker must not bring the task back to life
        check = submit(client, "echo", {"steps": 1})
        assert wait_ended(client, check)["state"] == "succeeded"
        assert client.get(f"/v1/tasks/{task_id}").json()["state"] == "failed"
    assert server.stop() == 0


async def _submit_concurrently(server: Server, count: int) -> list[str]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=server.url, timeout=30, limits=limits, headers=server.headers
    ) as client:

        async def one(i: int) -> str:
            operation, params = ("sleep", {"seconds": 0.3}) if i % 2 else ("noop", {})
            response = await client.post(f"/v1/operations/{operation}", json=params)
            assert response.status_code == 202, response.text
            task_id: str = response.json()["id"]
            return task_id

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_kill_9_of_the_whole_server_loses_no_accepted_task(make_server: MakeServer) -> None:
    server = make_server().start()
    with server.client() as client:
        long_id = submit(client, "sleep", {"seconds": 120})
        wait_until(client, long_id, {"running"})
    accepted = asyncio.run(_submit_concurrently(server, 200))
    assert len(set(accepted)) == 200
    server.crash()

    restarted = make_server().start()
    with restarted.client() as client:
        for task_id in [long_id, *accepted]:
            response = client.get(f"/v1/tasks/{task_id}")
            assert response.status_code == 200, response.text
        # the long task's worker died with the server: it is recovered after its lease
        done = wait_ended(client, long_id, timeout=LEASE * 15)
        assert done["state"] == "failed"
        assert done["error"]["type"] == "WorkerLost"
        for task_id in accepted:
            assert wait_ended(client, task_id, timeout=LEASE * 15)["state"] in TERMINAL
        assert active_tasks(client) == []
    assert restarted.stop() == 0


def test_sigterm_stops_gracefully_and_leaves_no_task_running(make_server: MakeServer) -> None:
    server = make_server().start()
    with server.client() as client:
        short = submit(client, "sleep", {"seconds": 1})
        long = submit(client, "sleep", {"seconds": 120})
        wait_until(client, short, {"running"})
        wait_until(client, long, {"running"})
    workers = server.worker_pids()
    assert server.stop() == 0
    assert not any(alive(pid) for pid in workers)

    restarted = make_server().start()
    with restarted.client() as client:
        # the short task finished within the shutdown grace period; the long one was
        # ended with a reason instead of being left running
        assert client.get(f"/v1/tasks/{short}").json()["state"] == "succeeded"
        ended = client.get(f"/v1/tasks/{long}").json()
        assert ended["state"] in TERMINAL - {"succeeded"}
        assert ended["error"] is not None or ended["state"] == "canceled"
        assert active_tasks(client) == []
    assert restarted.stop() == 0
