"""How a task attempt ends: from the handler's `Outcome` and the reason the worker asked
it to stop (if any) to the state the store records.

The rules (first ending wins):

- returned a value: ``succeeded``, even after a cancel or timeout request: the handler
  finished its work. Returned None after such a request: it stopped early, so the task
  ends as the request says (``canceled``, ``timed_out``, or the shutdown ending).
- raised `TaskTimedOut`: ``timed_out``. Raised anything after a stop request (usually
  `TaskCanceled` from ``ctx.check_canceled()``): as the request says.
- raised `TaskCanceled` unasked: ``canceled``.
- raised anything else: another attempt after the operation's backoff while attempts
  remain (and the error is one a retry can fix), else ``failed`` with the error.
- killed or abandoned after the grace period: as the request says.
- the shutdown ending: queued again at once when the task allows retry on worker loss
  and attempts remain, else ``failed`` with ``WorkerShutdown``.
- the attempt lost its hold on the task (its lease ran out and it was recovered
  elsewhere): nothing is written; the store already has the task's fate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from taskgate.app import RetryPolicy
from taskgate.errors import StorageError, StorageUnavailable
from taskgate.model import ErrorInfo, State, Task
from taskgate.runtime.execution import Execution, Outcome, StopReason
from taskgate.service import TaskService

log = logging.getLogger("taskgate.worker")

WORKER_SHUTDOWN = "WorkerShutdown"
"""`ErrorInfo.type` of a task ended because its worker stopped."""


@dataclass(frozen=True, slots=True)
class Ending:
    """What to store for an attempt that ended."""

    action: Literal["finish", "retry", "none"]
    state: State | None = None
    result: Any = None
    error: ErrorInfo | None = None
    delay: float = 0.0
    """Seconds before the next attempt (``retry``)."""
    lines: tuple[tuple[str, str], ...] = ()
    """(text, level) log lines written before the ending."""


def timeout_error(task: Task) -> ErrorInfo:
    return ErrorInfo("TimeoutError", f"task exceeded its timeout of {task.timeout or 0:g} s")


def shutdown_error() -> ErrorInfo:
    return ErrorInfo(WORKER_SHUTDOWN, "worker stopped before the task finished")


def decide(execution: Execution, outcome: Outcome) -> Ending:
    """The ending of ``execution``'s attempt, given how its handler ended."""
    reason = execution.stop_reason
    task = execution.task
    if outcome.kind == "returned":
        if reason is None or outcome.value is not None:
            return Ending("finish", State.SUCCEEDED, result=outcome.value)
        return _stopped(task, reason)
    if outcome.kind == "forced":
        note = ((outcome.note, "warning"),) if outcome.note else ()
        return _stopped(task, reason or "shutdown", note)
    error = outcome.error or ErrorInfo("Error", "the handler failed")
    if outcome.interrupt == "timed_out" and reason is None:
        # the handler gave up on its own: it knows best why
        own = error if task.timeout is None else timeout_error(task)
        return Ending(
            "finish",
            State.TIMED_OUT,
            error=ErrorInfo("TimeoutError", own.message, error.traceback),
            lines=((f"timed out: {own.message}", "error"),),
        )
    if reason is not None:
        failed: tuple[tuple[str, str], ...] = ()
        if outcome.interrupt is None:
            failed = ((f"the handler failed while stopping: {_summary(error)}", "warning"),)
        if outcome.interrupt == "timed_out" and reason != "lost":
            reason = "timed_out"
        return _stopped(task, reason, failed)
    if outcome.interrupt == "canceled":
        return Ending("finish", State.CANCELED, lines=(("the handler canceled the task", "info"),))
    return _failed(execution, error, retryable=outcome.retryable)


def _stopped(task: Task, reason: StopReason, lines: tuple[tuple[str, str], ...] = ()) -> Ending:
    if reason == "canceled":
        return Ending("finish", State.CANCELED, lines=(*lines, ("canceled", "info")))
    if reason == "timed_out":
        error = timeout_error(task)
        return Ending(
            "finish", State.TIMED_OUT, error=error, lines=(*lines, (error.message, "error"))
        )
    if reason == "lost":
        return Ending("none", lines=lines)
    if task.retry_on_worker_loss and task.attempt < task.max_attempts:
        return Ending(
            "retry",
            error=shutdown_error(),
            delay=0.0,
            lines=(
                *lines,
                (f"worker stopped during attempt {task.attempt}; queued again", "warning"),
            ),
        )
    return Ending(
        "finish",
        State.FAILED,
        error=shutdown_error(),
        lines=(*lines, ("worker stopped before the task finished", "error")),
    )


def _failed(execution: Execution, error: ErrorInfo, *, retryable: bool) -> Ending:
    task = execution.task
    head = f"attempt {task.attempt} of {task.max_attempts} failed: {_summary(error)}"
    if retryable and task.attempt < task.max_attempts:
        operation = execution.operation
        policy = operation.retry if operation is not None else RetryPolicy()
        delay = max(policy.delay(task.attempt), 0.0)
        return Ending(
            "retry",
            error=error,
            delay=delay,
            lines=((f"{head}; retrying in {delay:.1f} s", "error"),),
        )
    if not retryable and task.attempt < task.max_attempts:
        head += "; not retried: another attempt cannot fix this"
    return Ending("finish", State.FAILED, error=error, lines=((head, "error"),))


def _summary(error: ErrorInfo) -> str:
    return f"{error.type}: {error.message}" if error.message else error.type


async def persist(
    write: Callable[[], Awaitable[Task | None]], *, give_up: Callable[[], bool]
) -> Task | None:
    """Run a store write, retrying (with backoff) while the store is unavailable.

    The worker keeps renewing the task's lease meanwhile, so waiting is safe; a
    stopping worker gives up at some point and lets the leases run out instead.
    """
    delay = 0.05
    while True:
        try:
            return await write()
        except StorageUnavailable as exc:
            if give_up():
                raise
            log.warning("store unavailable (%s); retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def store_ending(
    service: TaskService, execution: Execution, ending: Ending, *, give_up: Callable[[], bool]
) -> Task | None:
    """Store ``ending``; the task as stored, or None if the attempt no longer held it."""
    task = execution.task
    if ending.action == "none":
        return None
    if ending.action == "retry":
        error = ending.error or shutdown_error()
        done = await persist(
            lambda: service.retry(task, delay=ending.delay, error=error), give_up=give_up
        )
        if done is None:
            # another attempt needs `running`: a cancel request came in meanwhile
            done = await persist(lambda: service.finish(task, State.CANCELED), give_up=give_up)
        return done
    state = ending.state or State.FAILED
    try:
        return await persist(
            lambda: service.finish(task, state, result=ending.result, error=ending.error),
            give_up=give_up,
        )
    except StorageError as exc:
        if state is not State.SUCCEEDED or isinstance(exc, StorageUnavailable):
            raise
        # e.g. a result too large to store: the task still has to end
        failure = ErrorInfo("StorageError", f"the task's result could not be stored: {exc}")
        return await persist(
            lambda: service.finish(task, State.FAILED, error=failure), give_up=give_up
        )
