"""Operations the worker runtime tests run.

Process-isolated handlers are re-imported in a child process from `app.import_path`,
which is this module's own name (however pytest imported it): the child gets the
parent's ``sys.path``, so it finds the module the same way.

Handlers in threads and on the loop are steered through `GATES` (threading events,
keyed by a test-chosen name); handlers in child processes through files.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from taskgate import App, Context, TaskCanceled

app = App("runtime-tests")
app.import_path = f"{__name__}:app"

GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
"""``GATES[key]``: set by a test to let a handler go on, or by a handler to say it began."""
RUNS: list[tuple[str, int]] = []
"""(task id, attempt) of every run of ``record``."""
RUNS_LOCK = threading.Lock()


def gate(key: str) -> threading.Event:
    return GATES[key]


@app.operation("noop")
def noop(ctx: Context) -> None:
    return None


@app.operation("report")
def report(ctx: Context, lines: int = 3) -> dict[str, Any]:
    ctx.detailed_state = "working"
    for i in range(1, lines + 1):
        ctx.log(f"line {i}")
        ctx.progress(100 * i / lines, f"step {i} of {lines}", detail={"done": i, "total": lines})
    ctx.warn("disk almost full")
    ctx.add_created_resource("volumes", "vol-1")
    ctx.add_created_resource("volumes", "vol-2")
    return {"lines": lines, "task": ctx.task_id}


@app.operation("async_echo")
async def async_echo(ctx: Context, value: str) -> dict[str, str]:
    await asyncio.sleep(0)
    ctx.log(f"echo {value}")
    ctx.progress(50, "half way")
    return {"value": value, "where": "async"}


@app.operation("thread_echo")
def thread_echo(ctx: Context, value: str) -> dict[str, str]:
    ctx.log(f"echo {value}")
    return {"value": value, "where": threading.current_thread().name}


@app.operation("proc_echo", isolation="process")
def proc_echo(ctx: Context, value: str) -> dict[str, Any]:
    ctx.log(f"echo {value}")
    ctx.progress(40, "in a child")
    ctx.warn("from the child")
    ctx.add_created_resource("files", "f-1")
    return {"value": value, "pid": os.getpid()}


@app.operation("proc_async", isolation="process")
async def proc_async(ctx: Context, value: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    ctx.log(f"async echo {value}")
    return {"value": value, "pid": os.getpid()}


@app.operation("proc_boom", isolation="process")
def proc_boom(ctx: Context) -> None:
    ctx.log("about to fail")
    raise RuntimeError("child failed")


@app.operation("proc_exit", isolation="process")
def proc_exit(ctx: Context) -> None:
    os._exit(3)


@app.operation("boom")
def boom(ctx: Context, message: str = "boom") -> None:
    ctx.log("about to fail")
    raise ValueError(message)


@app.operation("flaky", max_attempts=3, retry_backoff=0.01, retry_backoff_max=0.05)
def flaky(ctx: Context, succeed_on: int = 3) -> dict[str, int]:
    if ctx.attempt < succeed_on:
        raise ValueError(f"attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


@app.operation("bad_result")
def bad_result(ctx: Context) -> object:
    return object()


@app.operation("cooperative")
def cooperative(ctx: Context, key: str) -> None:
    gate(key + ".started").set()
    while not ctx.wait_canceled(0.01):
        pass
    ctx.check_canceled()


@app.operation("returns_when_canceled")
def returns_when_canceled(ctx: Context, key: str, result: str | None = None) -> str | None:
    gate(key + ".started").set()
    ctx.wait_canceled(60)
    return result


@app.operation("async_cooperative")
async def async_cooperative(ctx: Context, key: str) -> None:
    gate(key + ".started").set()
    for _ in range(6000):
        if ctx.cancel_requested:
            raise TaskCanceled()
        await asyncio.sleep(0.01)


@app.operation("stubborn_thread")
def stubborn_thread(ctx: Context, key: str) -> str:
    """Ignores cancel: waits for the test to release it."""
    gate(key + ".started").set()
    gate(key + ".release").wait(60)
    ctx.log("late line from an abandoned thread")
    ctx.progress(99, "late progress")
    return "late"


@app.operation("stubborn_async")
async def stubborn_async(ctx: Context, key: str) -> None:
    gate(key + ".started").set()
    await asyncio.sleep(600)


@app.operation("stubborn_process", isolation="process")
def stubborn_process(ctx: Context, marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    ctx.log("started")
    while True:  # ignores ctx.cancel_requested
        time.sleep(0.05)


@app.operation("proc_cooperative", isolation="process")
def proc_cooperative(ctx: Context, marker: str) -> str:
    Path(marker).write_text(str(os.getpid()))
    while not ctx.wait_canceled(0.02):
        pass
    ctx.check_canceled()
    return "unreachable"


@app.operation("tight_progress")
def tight_progress(ctx: Context, n: int = 100_000) -> int:
    for i in range(n):
        ctx.progress(i * 100 / n, detail=None)
    ctx.log("done")
    return n


@app.operation("tight_async")
async def tight_async(ctx: Context, n: int = 100_000) -> int:
    for i in range(n):
        ctx.progress(i * 100 / n)
        ctx.log(f"line {i}") if i % 10_000 == 0 else None
    return n


@app.operation("sleepy")
def sleepy(ctx: Context, seconds: float) -> str:
    ctx.wait_canceled(seconds)
    return "slept" if not ctx.cancel_requested else None  # type: ignore[return-value]


@app.operation("stubborn_sleep")
def stubborn_sleep(ctx: Context, key: str, seconds: float = 60) -> str:
    """Ignores cancel until released or ``seconds`` pass."""
    gate(key + ".started").set()
    gate(key + ".release").wait(seconds)
    return "done"


@app.operation("requeueable", retry_on_worker_loss=True, max_attempts=3)
def requeueable(ctx: Context, key: str) -> None:
    gate(key + ".started").set()
    ctx.wait_canceled(60)


@app.operation("record")
def record(ctx: Context, key: str) -> None:
    """Notes the run, then waits for ``GATES[key]`` (so that one worker cannot take all)."""
    with RUNS_LOCK:
        RUNS.append((ctx.task_id, ctx.attempt))
    gate(key).wait(60)


@app.operation("timeout_async", timeout=0.2)
async def timeout_async(ctx: Context) -> None:
    await asyncio.sleep(600)


@app.operation("timeout_thread", timeout=0.2)
def timeout_thread(ctx: Context) -> None:
    while not ctx.wait_canceled(0.01):
        pass
    ctx.check_canceled()


@app.operation("timeout_thread_stubborn", timeout=0.2)
def timeout_thread_stubborn(ctx: Context, key: str) -> None:
    gate(key + ".release").wait(60)


@app.operation("timeout_process", isolation="process", timeout=0.5)
def timeout_process(ctx: Context) -> None:
    while True:
        time.sleep(0.05)


@app.operation("gives_up")
def gives_up(ctx: Context) -> None:
    from taskgate import TaskTimedOut

    raise TaskTimedOut("the remote side took too long")


# -- children and reservations ---------------------------------------------------------


@app.operation("fan_out")
def fan_out(ctx: Context, n: int = 3, fail_first: bool = False) -> list[Any]:
    """Spawns ``n`` children (by key: a retry finds the first attempt's), waits for them."""
    for i in range(n):
        ctx.spawn("thread_echo", {"value": f"part {i}"}, key=f"part-{i}")
    if fail_first and ctx.attempt == 1:
        raise ValueError("the first attempt fails after spawning")
    return [c.result["value"] for c in ctx.wait_children(timeout=50)]


@app.operation("fan_out_async")
async def fan_out_async(ctx: Context, n: int = 3) -> list[Any]:
    for i in range(n):
        await ctx.spawn_async("async_echo", {"value": f"part {i}"}, priority=1)
    return [c.result["value"] for c in await ctx.wait_children_async(timeout=50)]


@app.operation("fan_out_process", isolation="process")
def fan_out_process(ctx: Context, n: int = 2) -> list[Any]:
    for i in range(n):
        ctx.spawn("thread_echo", {"value": f"part {i}"})
    return [c.result["value"] for c in ctx.wait_children(timeout=50)]


@app.operation("blocking_spawn")
async def blocking_spawn(ctx: Context) -> None:
    ctx.spawn("noop")  # wrong in an async handler: it must await spawn_async


@app.operation("hold", exclusive=["repository:{repository}"], shared=["remote:{remote}"])
def hold(
    ctx: Context, repository: int, remote: int | None = None, seconds: float = 0.05
) -> list[float]:
    """Holds its repository (and shares its remote) for a moment; when it held them."""
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]


@app.operation("capped", concurrency=2)
def capped(ctx: Context, seconds: float = 0.05) -> list[float]:
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]
