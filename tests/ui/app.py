"""The app the dashboard tests serve: tasks that move slowly enough to be watched.

Served as ``tests.ui.app:app`` by a real ``taskgate serve`` (working directory: the
repository root).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

import taskgate
from taskgate import Context

app = taskgate.App("dashboard-tests")

HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
"""HTML a task may carry in its message, log, labels, result or error: shown as text."""


@app.operation("steps", object_id="name")
def steps(
    ctx: Context,
    name: str = "demo",
    count: Annotated[int, Field(ge=1, le=1000)] = 5,
    pause: Annotated[float, Field(ge=0, le=10)] = 0.5,
    fail: bool = False,
) -> dict[str, Any]:
    """``count`` steps ``pause`` seconds apart, each a log line (every third a warning)
    and a progress report; fails at the end when ``fail``."""
    for i in range(1, count + 1):
        if ctx.wait_canceled(pause):
            ctx.log("asked to stop", "warning")
            ctx.check_canceled()
        ctx.log(f"step {i} of {count}", "warning" if i % 3 == 0 else "info")
        ctx.progress(100 * i / count, f"step {i} of {count}")
    if fail:
        ctx.log("giving up", "error")
        raise RuntimeError(f"step {count} of {name} broke")
    ctx.add_created_resource("demos", name)
    return {"name": name, "steps": count}


@app.operation("hostile")
def hostile(ctx: Context, fail: bool = False) -> dict[str, Any]:
    """Writes HTML everywhere a task can: message, log, result, error."""
    ctx.log(HOSTILE, "error")
    ctx.progress(50, HOSTILE)
    if fail:
        raise ValueError(HOSTILE)
    return {"html": HOSTILE}
