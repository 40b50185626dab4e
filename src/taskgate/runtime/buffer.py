"""`ReportBuffer`: the sink of a running task, which coalesces what its handler reports.

A handler may call ``ctx.progress`` or ``ctx.log`` in a tight loop. Each call only
updates this buffer under a lock: progress, message, detail, detailed state and created
resources keep their latest value, warnings are counted and log lines queued. The worker
takes a `Report` (everything since the last take) every ``flush_interval`` and writes it
with one ``report`` and one ``append_log``, and takes the last one right before the task
ends, so its final state is written after its last log lines.

The buffer is safe to call from any thread (sync handlers run in threads). In a
process-isolated task the child process has its own buffer and sends its reports to the
parent, which `merge`\\ s them into the task's buffer here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from taskgate.model import Task
from taskgate.service import NewLogLine, Progress

OnDirty = Callable[["ReportBuffer"], None]
"""Called (from any thread) when a buffer gets something to write after being empty."""


@dataclass(slots=True)
class Report:
    """What a handler reported since the last take. None: unchanged."""

    progress: float | None = None
    progress_detail: dict[str, Any] | None = None
    message: str | None = None
    detailed_state: str | None = None
    created_resources: dict[str, list[str]] | None = None
    """All the task's created resources (not only new ones): the store replaces them."""
    warnings: int = 0
    """Warnings added since the last take."""
    lines: list[NewLogLine] = field(default_factory=list)

    def progress_part(self) -> Progress | None:
        """The task-row update, or None when only log lines changed."""
        if (
            self.progress is None
            and self.progress_detail is None
            and self.message is None
            and self.detailed_state is None
            and self.created_resources is None
            and not self.warnings
        ):
            return None
        return Progress(
            progress=self.progress,
            progress_detail=self.progress_detail,
            message=self.message,
            detailed_state=self.detailed_state,
            created_resources=self.created_resources,
            warnings=self.warnings,
        )


class ReportBuffer:
    """Coalesces one task attempt's reports in memory; implements `taskgate.context.Sink`."""

    def __init__(
        self,
        task: Task,
        *,
        clock: Callable[[], float] = time.time,
        on_dirty: OnDirty | None = None,
    ) -> None:
        self.task = task
        self._clock = clock
        self.on_dirty = on_dirty
        self._lock = threading.Lock()
        self._report = Report()
        self._pending = False
        self._resources = {kind: list(ids) for kind, ids in task.created_resources.items()}
        self._resources_changed = False
        self._closed = False

    # -- the Sink protocol (any thread) ---------------------------------------------

    def progress(
        self, percent: float | None, message: str | None, detail: dict[str, Any] | None
    ) -> None:
        if detail is not None:
            _check_json(detail)
        with self._lock:
            if self._closed:
                return
            report = self._report
            if percent is not None:
                report.progress = percent
            if message is not None:
                report.message = message
            if detail is not None:
                # a copy: the handler may keep mutating its dict until the next flush
                report.progress_detail = dict(detail)
            first = self._mark()
        if first:
            self._dirty()

    def log(self, text: str, level: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._report.lines.append(NewLogLine(text, level, self._clock()))
            first = self._mark()
        if first:
            self._dirty()

    def warn(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._report.lines.append(NewLogLine(f"WARN: {text}", "warning", self._clock()))
            self._report.warnings += 1
            first = self._mark()
        if first:
            self._dirty()

    def note(self, text: str, level: str = "info") -> None:
        """A log line from the worker itself: taken even after `close`."""
        with self._lock:
            self._report.lines.append(NewLogLine(text, level, self._clock()))
            first = self._mark()
        if first and not self._closed:
            self._dirty()

    def detailed_state(self, value: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._report.detailed_state = value
            first = self._mark()
        if first:
            self._dirty()

    def created_resource(self, kind: str, id: str) -> None:
        with self._lock:
            if self._closed:
                return
            ids = self._resources.setdefault(kind, [])
            if id in ids:
                return
            ids.append(id)
            self._resources_changed = True
            first = self._mark()
        if first:
            self._dirty()

    # -- the worker's side ---------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True when something was reported since the last take."""
        return self._pending

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self) -> Report | None:
        """Everything reported since the last take (None: nothing), and start afresh."""
        with self._lock:
            if not self._pending:
                return None
            report = self._report
            if self._resources_changed:
                report.created_resources = {k: list(v) for k, v in self._resources.items()}
                self._resources_changed = False
            self._report = Report()
            self._pending = False
            return report

    def merge(self, report: Report) -> None:
        """Apply a report taken elsewhere (a child process's buffer) as if reported here."""
        with self._lock:
            if self._closed:
                return
            self._apply(report, newer=True)
            first = self._mark()
        if first:
            self._dirty()

    def restore(self, report: Report) -> None:
        """Put back a report whose write failed; values reported since then win."""
        with self._lock:
            self._apply(report, newer=False)
            first = self._mark()
        if first and not self._closed:
            self._dirty()

    def close(self) -> None:
        """Ignore every later report (the attempt has ended, or its thread was abandoned)."""
        with self._lock:
            self._closed = True

    # -- internals (under the lock) -------------------------------------------------

    def _mark(self) -> bool:
        """Note a change; True when the buffer was empty before (time to schedule a flush)."""
        if self._pending:
            return False
        self._pending = True
        return True

    def _dirty(self) -> None:
        if self.on_dirty is not None:
            self.on_dirty(self)

    def _apply(self, report: Report, *, newer: bool) -> None:
        mine = self._report
        if report.progress is not None and (newer or mine.progress is None):
            mine.progress = report.progress
        if report.progress_detail is not None and (newer or mine.progress_detail is None):
            mine.progress_detail = report.progress_detail
        if report.message is not None and (newer or mine.message is None):
            mine.message = report.message
        if report.detailed_state is not None and (newer or mine.detailed_state is None):
            mine.detailed_state = report.detailed_state
        if report.created_resources is not None and (newer or not self._resources_changed):
            self._resources = {k: list(v) for k, v in report.created_resources.items()}
            self._resources_changed = True
        mine.warnings += report.warnings
        if newer:
            mine.lines.extend(report.lines)
        else:
            mine.lines[:0] = report.lines


def _check_json(detail: dict[str, Any]) -> None:
    """Refuse, at the handler's call, a progress detail the store could not hold."""
    if not isinstance(detail, dict):
        raise TypeError(f"progress detail must be a dict, not {type(detail).__name__}")
    try:
        orjson.dumps(detail)
    except TypeError as exc:
        raise TypeError(f"progress detail must be JSON-serializable: {exc}") from None
