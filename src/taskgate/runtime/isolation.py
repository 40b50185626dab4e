"""`Launcher`: starts each handler as its operation's isolation says, and stops it by
force when it does not stop when asked.

- ``async``: a task on the worker's event loop. Forced: the asyncio task is cancelled.
- ``thread``: a handler thread (`HandlerThreads`). Forced: a thread cannot be stopped,
  so the attempt ends without it and the thread is abandoned; its buffer is closed and
  the store's conditional updates ignore anything it does later.
- ``process``: a child process (`ProcessRun`). Forced: the child is killed (SIGTERM,
  then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from taskgate.app import App, Operation
from taskgate.model import ErrorInfo
from taskgate.runtime.execution import Execution, Outcome, forced, raised, returned
from taskgate.runtime.process import KILL_WAIT, ProcessRun
from taskgate.runtime.threads import HandlerThreads

log = logging.getLogger("taskgate.worker")

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Launcher:
    """Runs handlers for one worker."""

    def __init__(
        self,
        app: App,
        *,
        concurrency: int,
        flush_interval: float,
        loop: asyncio.AbstractEventLoop,
        spawn: Spawn,
    ) -> None:
        self.app = app
        self.flush_interval = flush_interval
        self.threads = HandlerThreads(keep=min(concurrency, 8))
        self._loop = loop
        self._spawn = spawn

    def launch(self, execution: Execution) -> None:
        """Start the handler; its ending settles ``execution.outcome``."""
        task = execution.task
        operation = execution.operation
        if operation is None:
            app = self.app.import_path or self.app.name
            execution.settle(
                _refused(
                    "OperationNotFound", f"this worker's app ({app}) has no operation {task.type!r}"
                )
            )
            return
        if operation.isolation == "process":
            self._launch_process(execution)
            return
        try:
            # no parameters to check or convert: skip pydantic on this hot path
            plain = (
                not task.params
                and operation.model_param is None
                and not operation.params_model.model_fields
            )
            kwargs = {} if plain else operation.arguments(task.params)
        except Exception as exc:
            execution.settle(
                _refused(
                    "InvalidParameters",
                    f"the stored parameters do not fit operation {task.type}: {exc}",
                )
            )
            return
        if operation.isolation == "async":
            execution.handle = self._loop.create_task(
                self._call_async(execution, operation, kwargs), name=f"taskgate-task-{task.id}"
            )
        else:
            # in a copy of this context: what the worker set for the task (its log fields,
            # its span) holds in the thread too
            run = contextvars.copy_context().run
            self.threads.submit(
                functools.partial(run, self._call_sync, execution, operation, kwargs)
            )

    def _launch_process(self, execution: Execution) -> None:
        import_path = self.app.import_path
        if import_path is None:
            execution.settle(
                _refused(
                    "ConfigurationError",
                    f"operation {execution.task.type} runs in a child process, which imports"
                    " the app again, but the app has no import_path: load it by name"
                    " (taskgate worker module:app) or set app.import_path ="
                    " 'module:attribute'",
                )
            )
            return
        run = ProcessRun(
            execution, import_path, flush_interval=self.flush_interval, loop=self._loop
        )
        execution.handle = run
        self._spawn(run.start())

    async def _call_async(
        self, execution: Execution, operation: Operation, kwargs: dict[str, Any]
    ) -> None:
        try:
            value = await operation.handler(execution.context, **kwargs)
        except asyncio.CancelledError:
            execution.settle(forced("the handler's asyncio task was cancelled"))
            return
        except BaseException as exc:  # SystemExit too: it must not stop the worker
            execution.settle(raised(exc))
            return
        execution.settle(returned(value))

    def _call_sync(
        self, execution: Execution, operation: Operation, kwargs: dict[str, Any]
    ) -> None:
        """Runs in a handler thread."""
        try:
            outcome = returned(operation.handler(execution.context, **kwargs))
        except BaseException as exc:
            outcome = raised(exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
            self._loop.call_soon_threadsafe(execution.settle, outcome)

    # -- stopping -------------------------------------------------------------------

    def request_cancel(self, execution: Execution) -> None:
        """Let the handler see ``ctx.cancel_requested`` (in a child process too)."""
        execution.context._request_cancel()
        if isinstance(execution.handle, ProcessRun):
            execution.handle.cancel()

    def force(self, execution: Execution, grace: float) -> None:
        """Stop a handler that did not stop within ``grace`` seconds of being asked."""
        if execution.settled:
            return
        task = execution.task
        handle = execution.handle
        if isinstance(handle, ProcessRun):
            log.warning(
                "task %s (%s): the handler did not stop within %g s; killing its process %s",
                task.id,
                task.type,
                grace,
                handle.pid,
            )
            handle.kill()
            # settled once the child is gone; this covers a child that cannot be reaped
            execution.abandon_timer = self._loop.call_later(
                KILL_WAIT + 1.0, self.abandon, execution, "its process could not be killed"
            )
        elif isinstance(handle, asyncio.Task):
            log.warning(
                "task %s (%s): the handler did not stop within %g s; cancelling it",
                task.id,
                task.type,
                grace,
            )
            handle.cancel()
            execution.abandon_timer = self._loop.call_later(
                max(grace, 1.0), self.abandon, execution, "it ignored its cancellation"
            )
        else:
            self.abandon(execution, f"it did not stop within {grace:g} s")

    def abandon(self, execution: Execution, why: str) -> None:
        """End the attempt without its handler, which may go on running."""
        if execution.settled:
            return
        task = execution.task
        where = "thread" if execution.isolation == "thread" else "handler"
        log.warning(
            "task %s (%s): the handler is abandoned (%s); the task ends without it and"
            " its %s may still be running",
            task.id,
            task.type,
            why,
            where,
        )
        execution.buffer.close()
        execution.settle(
            forced(f"the handler was abandoned ({why}); its {where} may still be running")
        )

    def abort(self, execution: Execution) -> None:
        """The worker is going away at once: stop the handler without waiting."""
        if execution.settled:
            return
        execution.context._request_cancel()
        handle = execution.handle
        if isinstance(handle, ProcessRun):
            handle.kill()
        elif isinstance(handle, asyncio.Task):
            handle.cancel()
        execution.buffer.close()

    def shutdown(self) -> None:
        self.threads.shutdown()


def _refused(type: str, message: str) -> Outcome:
    """A handler that could not start, for a reason another attempt would not fix."""
    return Outcome("raised", error=ErrorInfo(type, message), retryable=False)
