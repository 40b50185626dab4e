"""`Context`: what a running handler sees of its task, and how it reports.

Every report goes to a `Sink`. The worker's sink coalesces them in memory and flushes
them to the store in batches, so a handler may call `progress` or `log` in a tight loop.
In a process-isolated task the sink forwards them to the parent worker over a pipe.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from taskgate.errors import TaskCanceled
from taskgate.model import LOG_LEVELS, Task


class Sink(Protocol):
    """Where a context's reports go. Must be safe to call from any thread."""

    def progress(
        self, percent: float | None, message: str | None, detail: dict[str, Any] | None
    ) -> None: ...

    def log(self, text: str, level: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def detailed_state(self, value: str) -> None: ...

    def created_resource(self, kind: str, id: str) -> None: ...


class Context:
    """Handed to a handler as its first argument."""

    def __init__(self, task: Task, sink: Sink) -> None:
        self._task = task
        self._sink = sink
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
