"""The operations the CLI tests submit: small, predictable, quick."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

import taskgate
from taskgate import Context

app = taskgate.App("cli-tests")


class DiskImageError(RuntimeError):
    """Raised by ``fail``, so its type shows in the task's error."""


@app.operation("echo", object_id="name")
def echo(
    ctx: Context,
    name: str = "hello",
    steps: Annotated[int, Field(ge=1, le=100)] = 3,
    extra: Any = None,
) -> dict[str, Any]:
    """Reports ``steps`` steps of progress and log lines, returns its input."""
    for i in range(1, steps + 1):
        ctx.log(f"step {i} of {steps}")
        ctx.progress(100 * i / steps, f"step {i} of {steps}")
    ctx.warn("this is only a test")
    return {"echo": name, "steps": steps, "extra": extra}


def _read_header(path: str) -> None:
    raise DiskImageError(f"{path}: bad magic number")


@app.operation("fail")
def fail(ctx: Context, path: str = "/images/vm-100.qcow2") -> None:
    """Fails from a nested call, so the error has a traceback."""
    ctx.log(f"opening {path}")
    ctx.progress(10, "reading the header")
    _read_header(path)


@app.operation("sleep")
def sleep(ctx: Context, seconds: Annotated[float, Field(ge=0, le=600)] = 60.0) -> dict[str, Any]:
    """Sleeps, stopping as soon as it is asked to (cancel, timeout, shutdown)."""
    ctx.log(f"sleeping {seconds:g} s")
    ctx.progress(5, "sleeping")
    if ctx.wait_canceled(seconds):
        ctx.log("asked to stop")
        ctx.check_canceled()
    return {"slept": seconds}


@app.operation("fan_out")
def fan_out(ctx: Context, parts: Annotated[int, Field(ge=0, le=10)] = 2) -> int:
    """Spawns ``parts`` quick ``echo`` children and waits for them."""
    for i in range(parts):
        ctx.spawn("echo", {"name": f"part-{i}", "steps": 1}, key=f"part-{i}")
    ctx.wait_children()
    return parts
