"""One attempt of one task on a worker: its record (`Execution`) and how it ended
(`Outcome`).

Whatever runs the handler (a task on the loop, a thread, a child process) settles the
execution's outcome once; the first settle wins, so a handler that returns just as it is
killed has exactly one ending.
"""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import orjson

from taskgate.app import Operation
from taskgate.context import Context, Family
from taskgate.errors import (
    ConfigurationError,
    InvalidParameters,
    OperationNotFound,
    TaskCanceled,
    TaskTimedOut,
)
from taskgate.model import ErrorInfo, Task
from taskgate.runtime.buffer import ReportBuffer
from taskgate.tracing import RunSpan

StopReason = Literal["canceled", "timed_out", "shutdown", "lost"]
"""Why the worker asked a handler to stop: a cancel request, its timeout, the worker
stopping, or the attempt no longer holding the task in the store."""

Interrupt = Literal["canceled", "timed_out"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a handler ended. Picklable: a child process sends it to its worker."""

    kind: Literal["returned", "raised", "forced"]
    value: Any = None
    """The handler's result (``returned``), already checked to be JSON-serializable."""
    error: ErrorInfo | None = None
    """What the handler raised (``raised``)."""
    interrupt: Interrupt | None = None
    """``raised`` a `TaskCanceled` or a `TaskTimedOut`."""
    retryable: bool = True
    """False when another attempt cannot do better (bad configuration, parameters or
    result)."""
    note: str | None = None
    """How a ``forced`` ending came about, for the log."""


def returned(value: Any) -> Outcome:
    """The outcome of a handler that returned ``value``: a failure if it is not JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return Outcome("returned", value)
    try:
        orjson.dumps(value)
    except TypeError as exc:
        return Outcome(
            "raised",
            error=ErrorInfo(
                "TypeError",
                f"the handler's result is not JSON-serializable ({type(value).__name__}): {exc}",
            ),
            retryable=False,
        )
    return Outcome("returned", value)


def raised(exc: BaseException) -> Outcome:
    """The outcome of a handler that raised ``exc``."""
    interrupt: Interrupt | None = None
    if isinstance(exc, TaskTimedOut):
        interrupt = "timed_out"
    elif isinstance(exc, TaskCanceled):
        interrupt = "canceled"
    return Outcome(
        "raised",
        error=error_info(exc),
        interrupt=interrupt,
        retryable=not isinstance(exc, ConfigurationError | InvalidParameters | OperationNotFound),
    )


_RUNTIME_DIR = str(Path(__file__).resolve().parent)


def error_info(exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
    """``ErrorInfo`` of an exception: its qualified name, its text, its traceback.

    The traceback starts at the handler: the runtime's own calling frames are left out.
    """
    text = None
    if with_traceback:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None and _is_runtime(tb):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    return ErrorInfo(type=type(exc).__qualname__, message=str(exc), traceback=text)


def _is_runtime(tb: TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR)


def forced(note: str) -> Outcome:
    return Outcome("forced", note=note)


class Execution:
    """A task attempt held by this worker, from its claim until its ending is stored."""

    __slots__ = (
        "abandon_timer",
        "buffer",
        "context",
        "family",
        "flush_lock",
        "force_timer",
        "handle",
        "operation",
        "outcome",
        "span",
        "stop_reason",
        "task",
        "timeout_timer",
    )

    def __init__(
        self,
        task: Task,
        operation: Operation | None,
        buffer: ReportBuffer,
        loop: asyncio.AbstractEventLoop,
        family: Family | None = None,
    ) -> None:
        self.task = task
        self.operation = operation
        self.buffer = buffer
        self.family = family
        """Spawns and waits for the attempt's children (`taskgate.runtime.family`)."""
        self.context = Context(task, buffer, family)
        self.outcome: asyncio.Future[Outcome] = loop.create_future()
        self.stop_reason: StopReason | None = None
        self.handle: Any = None
        """What runs the handler: an `asyncio.Task`, or a `ProcessRun`; None in a thread."""
        self.flush_lock = asyncio.Lock()
        self.timeout_timer: asyncio.TimerHandle | None = None
        self.force_timer: asyncio.TimerHandle | None = None
        self.abandon_timer: asyncio.TimerHandle | None = None
        self.span: RunSpan | None = None
        """The attempt's trace span, when tracing is on (`taskgate.tracing`)."""

    @property
    def isolation(self) -> str:
        return self.operation.isolation if self.operation is not None else "none"

    @property
    def settled(self) -> bool:
        return self.outcome.done()

    def settle(self, outcome: Outcome) -> None:
        """Record how the handler ended; only the first call counts."""
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    def cancel_timers(self) -> None:
        for timer in (self.timeout_timer, self.force_timer, self.abandon_timer):
            if timer is not None:
                timer.cancel()
        self.timeout_timer = self.force_timer = self.abandon_timer = None

    def __repr__(self) -> str:
        return f"<Execution {self.task.id} {self.task.type} attempt {self.task.attempt}>"
