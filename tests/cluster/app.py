"""The app the cluster tests run: its operation records each run in a side table.

``record`` inserts (task id, worker pid, time) into ``runs``, a table of the test's own
in the same PostgreSQL database (``TASKGATE_TEST_RUNS_URL``), with no unique constraint:
a task that ran twice shows as two rows. It runs on the worker's event loop, over one
connection per worker process, opened on first use. ``hold`` records its run too, then
runs until it is canceled or its worker stops.
"""

from __future__ import annotations

import asyncio
import os

import psycopg

import taskgate

RUNS_URL = "TASKGATE_TEST_RUNS_URL"
RUNS_TABLE = (
    "CREATE TABLE runs (task_id TEXT NOT NULL, pid INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL)"
)

INSERT = "INSERT INTO runs (task_id, pid, at) VALUES (%s, %s, now())"

app = taskgate.App("cluster")

_connection: psycopg.AsyncConnection[object] | None = None
_opening = asyncio.Lock()


async def _record(task_id: str) -> None:
    global _connection
    async with _opening:
        if _connection is None:
            _connection = await psycopg.AsyncConnection.connect(
                os.environ[RUNS_URL], autocommit=True
            )
            # the runs must be seen, not survive a crash of the server: no fsync wait
            await _connection.execute("SET synchronous_commit = off")
    await _connection.execute(INSERT, (task_id, os.getpid()))


@app.operation("record")
async def record(ctx: taskgate.Context) -> int:
    """Records this run; returns the worker's pid."""
    await _record(ctx.task_id)
    return os.getpid()


@app.operation("hold")
def hold(ctx: taskgate.Context, seconds: float = 600.0) -> None:
    """Records this run (on a connection of its own: it runs on a thread), then waits
    ``seconds`` or until it is canceled or its worker stops."""
    with psycopg.connect(os.environ[RUNS_URL], autocommit=True) as conn:
        conn.execute(INSERT, (ctx.task_id, os.getpid()))
    ctx.wait_canceled(seconds)
    ctx.check_canceled()
