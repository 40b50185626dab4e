"""The operations the benchmarks run."""

from __future__ import annotations

import time

import taskgate

app = taskgate.App("bench")


@app.operation("noop")
def noop(ctx: taskgate.Context) -> None:
    """Does nothing (thread isolation: the common case for sync handlers)."""


@app.operation("noop_async")
async def noop_async(ctx: taskgate.Context) -> None:
    """Does nothing, on the worker's event loop."""


@app.operation("stamp")
async def stamp(ctx: taskgate.Context) -> float:
    """Returns the moment the handler started (epoch seconds), for latency."""
    return time.time()
