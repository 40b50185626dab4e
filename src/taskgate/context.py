"""`Context`: what a running handler sees of its task, and how it reports.

Every report goes to a `Sink`. The worker's sink coalesces them in memory and flushes
them to the store in batches, so a handler may call `progress` or `log` in a tight loop.
In a process-isolated task the sink forwards them to the parent worker over a pipe.

Child tasks go through a `Family`: the worker's submits them through its store and
waits on its change feed; in a child process, it asks the worker over the pipe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from taskgate.errors import ConfigurationError, TaskCanceled
from taskgate.model import LOG_LEVELS, Task

SPAWN_OPTIONS = frozenset(
    {
        "object_id",
        "priority",
        "labels",
        "delay",
        "scheduled_at",
        "timeout",
        "max_attempts",
        "exclusive_resources",
        "shared_resources",
    }
)
"""The submission options a child may be spawned with."""


class Sink(Protocol):
    """Where a context's reports go. Must be safe to call from any thread."""

    def progress(
        self, percent: float | None, message: str | None, detail: dict[str, Any] | None
    ) -> None: ...

    def log(self, text: str, level: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def detailed_state(self, value: str) -> None: ...

    def created_resource(self, kind: str, id: str) -> None: ...


class Family(Protocol):
    """Where a context's children are spawned and waited for. The blocking methods are
    called from a handler thread (or a child process), never the worker's loop."""

    def spawn(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task: ...

    async def spawn_async(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task: ...

    def wait(self, timeout: float | None) -> list[Task]: ...

    async def wait_async(self, timeout: float | None) -> list[Task]: ...


class Context:
    """Handed to a handler as its first argument."""

    def __init__(self, task: Task, sink: Sink, family: Family | None = None) -> None:
        self._task = task
        self._sink = sink
        self._family = family
        self._canceled = threading.Event()
        self._detailed_state = task.detailed_state

    @property
    def task(self) -> Task:
        """The task as it was when this attempt started (read-only)."""
        return self._task

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def attempt(self) -> int:
        return self._task.attempt

    def progress(
        self,
        percent: float | None = None,
        message: str | None = None,
        *,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Report progress: a percentage (0-100), a message, structured detail."""
        if percent is not None:
            percent = min(max(float(percent), 0.0), 100.0)
        self._sink.progress(percent, message, detail)

    def log(self, text: str, level: str = "info") -> None:
        """Append lines to the task's log (a text with newlines is several lines)."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        for line in str(text).splitlines() or [""]:
            self._sink.log(line, level)

    def warn(self, text: str) -> None:
        """Log a warning (``WARN: text``) and count it on the task."""
        self._sink.warn(str(text))

    @property
    def detailed_state(self) -> str | None:
        return self._detailed_state

    @detailed_state.setter
    def detailed_state(self, value: str) -> None:
        self._detailed_state = value
        self._sink.detailed_state(value)

    def add_created_resource(self, kind: str, id: str | int) -> None:
        """Record a resource this task created (e.g. ``("volumes", "vol-1")``)."""
        self._sink.created_resource(str(kind), str(id))

    # -- children ----------------------------------------------------------------------

    def spawn(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Task:
        """Submit a child task and return it once stored: ``parent_id`` is this task, it
        joins this task's group, and canceling this task cancels it. ``options`` are a
        submit's (``priority``, ``labels``, ``delay``, ``exclusive_resources``, ...).
        With ``key``, a retried attempt spawning the same key gets the child its first
        attempt spawned instead of a new one. Blocks (thread and process handlers); an
        ``async def`` handler awaits `spawn_async`."""
        return self._need_family().spawn(type, params or {}, _spawn_options(options), key)

    async def spawn_async(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Task:
        """`spawn`, for ``async def`` handlers."""
        family = self._need_family()
        return await family.spawn_async(type, params or {}, _spawn_options(options), key)

    def wait_children(self, timeout: float | None = None) -> list[Task]:
        """Block until every child of this task has ended, or ``timeout`` seconds
        passed; the children as they are then, oldest first. A cancel of this task
        cancels its children, which ends the wait too."""
        return self._need_family().wait(timeout)

    async def wait_children_async(self, timeout: float | None = None) -> list[Task]:
        """`wait_children`, for ``async def`` handlers."""
        return await self._need_family().wait_async(timeout)

    def _need_family(self) -> Family:
        if self._family is None:
            raise ConfigurationError("this context cannot spawn children (no worker behind it)")
        return self._family

    @property
    def cancel_requested(self) -> bool:
        """True once the task has been asked to stop (cancel or timeout)."""
        return self._canceled.is_set()

    def check_canceled(self) -> None:
        """Raise `TaskCanceled` if the task has been asked to stop."""
        if self._canceled.is_set():
            raise TaskCanceled()

    def wait_canceled(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancel; True if canceled."""
        return self._canceled.wait(timeout)

    def _request_cancel(self) -> None:
        """Called by the worker (any thread)."""
        self._canceled.set()


def _spawn_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - SPAWN_OPTIONS)
    if unknown:
        raise TypeError(
            f"spawn() got unexpected options {', '.join(unknown)}"
            f" (it takes: {', '.join(sorted(SPAWN_OPTIONS))})"
        )
    return dict(options)


def on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True when called from ``loop``'s own thread (where blocking would deadlock)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
