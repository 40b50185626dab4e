"""The operations the SDK tests run, in process and in a real server
(``tests.client.app:app``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

import taskgate
from taskgate import Context

app = taskgate.App("sdk-tests")


@app.operation("add", object_id="a")
async def add(ctx: Context, a: int, b: int = 0) -> int:
    """Adds two integers."""
    ctx.progress(50, "adding")
    return a + b


@app.operation("fail")
def fail(ctx: Context, message: str = "boom") -> None:
    """Raises ValueError(message): the task fails, with a traceback."""
    ctx.log("about to fail")
    raise ValueError(message)


@app.operation("sleep")
def sleep(ctx: Context, seconds: Annotated[float, Field(ge=0, le=600)] = 60.0) -> dict[str, Any]:
    """Sleeps, stopping as soon as it is asked to (cancel, timeout)."""
    ctx.log(f"sleeping {seconds:g} s")
    ctx.progress(1, "sleeping")
    if ctx.wait_canceled(seconds):
        ctx.check_canceled()
    return {"slept": seconds}


@app.operation("talk")
def talk(ctx: Context, lines: Annotated[int, Field(ge=0, le=10_000)] = 3, pause: float = 0) -> int:
    """Writes ``lines`` log lines (``line 1`` ...), ``pause`` seconds apart."""
    for i in range(1, lines + 1):
        ctx.log(f"line {i}", "warning" if i % 2 == 0 else "info")
        if pause and ctx.wait_canceled(pause):
            ctx.check_canceled()
    return lines


@app.operation("noop")
def noop(ctx: Context) -> None:
    """Does nothing."""


@app.operation(
    "fan_out",
    exclusive=["fan:{name}"],
    limits=[taskgate.ConcurrencyLimit(2, per="{tenant}")],
)
async def fan_out(ctx: Context, name: str = "x", parts: int = 2) -> int:
    """Spawns ``parts`` noop children, waits for them; reserves ``fan:{name}``."""
    for i in range(parts):
        await ctx.spawn_async("noop", key=f"part-{i}")
    await ctx.wait_children_async()
    return parts
