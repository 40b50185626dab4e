"""`Reporter`: writes the coalesced reports of running tasks to the store.

A `ReportBuffer` that gets something to write after being empty tells the reporter
(from any thread); the reporter writes every such buffer ``flush_interval`` later, in
one ``report`` and one ``append_log`` per task, all issued concurrently so that the
store's group commit can put them in one transaction. A write that fails because the
store is unavailable is put back and tried at the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from taskgate.errors import StorageUnavailable
from taskgate.model import Task
from taskgate.runtime.buffer import Report, ReportBuffer
from taskgate.runtime.execution import Execution
from taskgate.runtime.isolation import Spawn
from taskgate.service import NewLogLine, TaskService

log = logging.getLogger("taskgate.worker")

LOG_CHUNK = 5000
"""Most log lines written in one transaction."""
FINAL_TRIES = 5
"""Tries for the last reports of an ending task while the store is unavailable."""


class Reporter:
    """Flushes the report buffers of one worker's executions."""

    def __init__(
        self,
        service: TaskService,
        *,
        flush_interval: float,
        loop: asyncio.AbstractEventLoop,
        spawn: Spawn,
        give_up: Callable[[], bool],
    ) -> None:
        self.service = service
        self.flush_interval = flush_interval
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._spawn = spawn
        self._give_up = give_up
        self._dirty: set[Execution] = set()
        self._timer: asyncio.TimerHandle | None = None

    def attach(self, execution: Execution) -> None:
        """Have ``execution``'s buffer flushed when it has something to write."""

        def on_dirty(_buffer: ReportBuffer) -> None:  # any thread
            if threading.get_ident() == self._loop_thread:
                self._mark(execution)
            else:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    self._loop.call_soon_threadsafe(self._mark, execution)

        execution.buffer.on_dirty = on_dirty

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _mark(self, execution: Execution) -> None:
        self._dirty.add(execution)
        if self._timer is None:
            self._timer = self._loop.call_later(self.flush_interval, self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._timer = None
        dirty, self._dirty = self._dirty, set()
        for execution in dirty:
            if not execution.buffer.closed:  # a closed buffer is flushed by its ending
                self._spawn(self.flush(execution))

    async def flush(self, execution: Execution, *, final: bool = False) -> None:
        """Write what the handler reported since the last flush. ``final``: the task is
        ending, so keep trying a little while the store is unavailable."""
        async with execution.flush_lock:
            report = execution.buffer.take()
            tries = 0
            while report is not None:
                failed = await self._write(execution.task, report)
                if failed is None:
                    return
                if not final:
                    execution.buffer.restore(failed)
                    return
                tries += 1
                if tries >= FINAL_TRIES or self._give_up():
                    log.error(
                        "task %s (%s): its last reports could not be stored",
                        execution.task.id,
                        execution.task.type,
                    )
                    return
                await asyncio.sleep(0.05 * 2**tries)
                report = failed

    async def _write(self, task: Task, report: Report) -> Report | None:
        """Store a report; return the part that failed and may be retried (None: done)."""
        progress = report.progress_part()
        lines = report.lines
        failed_progress = failed_lines = False
        if progress is not None and lines:
            results = await asyncio.gather(
                self.service.report(task, progress),
                self._append_log(task, lines),
                return_exceptions=True,
            )
            failed_progress = self._failed(task, results[0])
            failed_lines = self._failed(task, results[1])
        elif progress is not None:
            try:
                await self.service.report(task, progress)
            except Exception as exc:
                failed_progress = self._failed(task, exc)
        elif lines:
            try:
                await self._append_log(task, lines)
            except Exception as exc:
                failed_lines = self._failed(task, exc)
        if failed_progress:
            if not failed_lines:
                report.lines = []
            return report
        if failed_lines:
            return Report(lines=lines)
        return None

    async def _append_log(self, task: Task, lines: list[NewLogLine]) -> None:
        for start in range(0, len(lines), LOG_CHUNK):
            await self.service.append_log(task.id, lines[start : start + LOG_CHUNK])

    def _failed(self, task: Task, result: object) -> bool:
        """Whether ``result`` is an error worth retrying the write for."""
        if not isinstance(result, BaseException):
            return False
        if isinstance(result, StorageUnavailable):
            log.warning("task %s (%s): reports not stored yet: %s", task.id, task.type, result)
            return True
        # not something a retry fixes: drop it rather than retry forever
        log.error(
            "task %s (%s): reports could not be stored and are dropped: %s: %s",
            task.id,
            task.type,
            type(result).__name__,
            result,
        )
        return False
