"""The app the acceptance tests serve: small operations with predictable behaviour.

Served as ``tests.acceptance.app:app`` by a real ``taskgate serve`` subprocess whose
working directory is the repository root.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import Field

import taskgate
from taskgate import ConcurrencyLimit, Context

app = taskgate.App("acceptance")


@app.operation("echo", object_id="name")
def echo(
    ctx: Context,
    name: str = "hello",
    steps: Annotated[int, Field(ge=1, le=100)] = 3,
) -> dict[str, Any]:
    """Reports ``steps`` steps of progress and log lines, warns once, returns its input."""
    for i in range(1, steps + 1):
        ctx.log(f"step {i} of {steps}")
        ctx.progress(100 * i / steps, f"step {i}", detail={"total": steps, "done": i})
    ctx.warn("this is only a test")
    ctx.add_created_resource("echoes", name)
    return {"echo": name, "steps": steps}


@app.operation("sleep")
def sleep(ctx: Context, seconds: Annotated[float, Field(ge=0, le=600)] = 60.0) -> dict[str, Any]:
    """Sleeps, stopping as soon as it is asked to (cancel, timeout, shutdown)."""
    ctx.log(f"sleeping {seconds:g} s")
    ctx.progress(1, "sleeping")
    if ctx.wait_canceled(seconds):
        ctx.log("asked to stop")
        ctx.check_canceled()
    return {"slept": seconds}


@app.operation("sleep_requeue", retry_on_worker_loss=True, max_attempts=3, retry_backoff=0.05)
def sleep_requeue(ctx: Context, seconds: float = 60.0) -> dict[str, Any]:
    """Safe to run again: if its worker dies it is queued again. Only the first attempt
    sleeps; later ones return at once."""
    if ctx.attempt == 1:
        ctx.progress(1, "first attempt: sleeping")
        if ctx.wait_canceled(seconds):
            ctx.check_canceled()
    return {"attempt": ctx.attempt}


@app.operation("flaky", max_attempts=3, retry_backoff=0.05, retry_backoff_max=0.2)
def flaky(ctx: Context, failures: Annotated[int, Field(ge=0)] = 2) -> dict[str, Any]:
    """Fails its first ``failures`` attempts, then succeeds."""
    if ctx.attempt <= failures:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return {"attempt": ctx.attempt}


@app.operation("spin", isolation="process")
def spin(ctx: Context, seconds: float = 60.0) -> None:
    """Burns CPU in its own process and never looks at cancel: it can only be killed."""
    end = time.monotonic() + seconds
    ctx.progress(1, "spinning")
    while time.monotonic() < end:
        pass


@app.operation("noop")
def noop(ctx: Context) -> None:
    """Does nothing."""


@app.operation("hold", exclusive=["repository:{repository}"], shared=["remote:{remote}"])
def hold(
    ctx: Context, repository: int, remote: int | None = None, seconds: float = 0.02
) -> list[float]:
    """Holds its repository alone and shares its remote, for a moment; when it held them
    (this machine's clock: every worker process reads the same one)."""
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]


@app.operation("capped", concurrency=3, limits=[ConcurrencyLimit(1, per="{bucket}")])
def capped(ctx: Context, bucket: str, seconds: float = 0.02) -> list[float]:
    """At most three at once in all, one per bucket; when it ran."""
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]


@app.operation("brief", archive_after=0.2, purge_after=1.0)
def brief(ctx: Context) -> None:
    """Kept a second after it ends."""
