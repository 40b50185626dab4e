"""Process isolation: a handler runs in a child process that the worker can kill.

The child is started with the ``spawn`` method (safe in a process with threads) and
imports the app again from `App.import_path`. It runs the handler with a `Context`
whose sink is its own `ReportBuffer`; a thread sends that buffer's reports to the worker
over a pipe every ``flush_interval``, so a tight progress loop costs one message per
interval. Its last report and then its `Outcome` (the result, or the error with its
formatted traceback) follow when the handler ends.

Over the same pipe the worker forwards a cancel request, which the child turns into
``ctx.cancel_requested``. After the grace period the worker kills the child (SIGTERM,
then SIGKILL). A child whose worker dies sees its pipe close and exits at once.

Messages, child to worker: ``("report", Report)``, ``("outcome", Outcome)``, and a
child task's spawn or wait, ``("call", n, method, args)``; worker to child:
``("cancel",)`` and the answer to call n, ``("reply", n, ok, value)``
(`taskgate.runtime.family`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from taskgate.context import Context
from taskgate.errors import ConfigurationError
from taskgate.model import ErrorInfo, Task
from taskgate.runtime.buffer import ReportBuffer
from taskgate.runtime.execution import Execution, Outcome, forced, raised, returned
from taskgate.runtime.family import PipeFamily, WorkerFamily, answer

log = logging.getLogger("taskgate.worker")

KILL_WAIT = 2.0
"""Seconds between SIGTERM and SIGKILL when a child is killed."""
PARENT_GONE_EXIT = 70
"""Exit status of a child whose worker went away."""

_SPAWN = multiprocessing.get_context("spawn")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "an unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


class ProcessRun:
    """The worker's side of one handler running in a child process."""

    def __init__(
        self,
        execution: Execution,
        import_path: str,
        *,
        flush_interval: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.execution = execution
        self.import_path = import_path
        self.flush_interval = flush_interval
        self._loop = loop
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: Any = None
        self._killed = False
        self._exited = False
        self._cancel_requested = False
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    async def start(self) -> None:
        """Start the child; its outcome settles the execution (here, or later)."""
        parent, child = _SPAWN.Pipe(duplex=True)
        self._conn = parent
        if self._cancel_requested:  # asked before the child existed: it reads this first
            self.cancel()
        task = self.execution.task
        process = _SPAWN.Process(
            target=child_main,
            args=(child, self.import_path, task, self.flush_interval),
            name=f"taskgate-task-{task.id}",
            daemon=True,  # if the worker exits, multiprocessing ends its children too
        )
        try:
            await asyncio.to_thread(process.start)
        except BaseException as exc:
            parent.close()
            child.close()
            self._exited = True
            self.execution.settle(raised(exc))
            return
        child.close()
        self._process = process
        reader = threading.Thread(
            target=self._read, name=f"taskgate-pipe-{process.pid}", daemon=True
        )
        reader.start()
        if self._killed or self.execution.settled:
            # stopped by force (or abandoned) while it was starting
            self._killed = False
            self.kill()

    def cancel(self) -> None:
        """Forward a cancel request; the handler sees ``ctx.cancel_requested``."""
        self._cancel_requested = True
        conn = self._conn
        if conn is None or conn.closed or self._exited:
            return
        with contextlib.suppress(OSError, ValueError):
            conn.send(("cancel",))

    def kill(self) -> None:
        """SIGTERM now, SIGKILL after `KILL_WAIT` seconds if it is still alive."""
        self._killed = True
        process = self._process
        if process is None or self._exited:
            return
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
        self._loop.call_later(KILL_WAIT, self._sigkill)

    def _sigkill(self) -> None:
        if not self._exited and self._process is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.kill()

    # -- the reader thread ------------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(fn, *args)

    def _read(self) -> None:
        conn, process = self._conn, self._process
        assert conn is not None and process is not None
        try:
            while True:
                message = conn.recv()
                self._post(self._on_message, message)
        except (EOFError, OSError):
            pass
        except Exception:  # a message that cannot be unpickled: the child is of no use
            log.exception("task %s: bad message from its process", self.execution.task.id)
            with contextlib.suppress(OSError, ValueError):
                process.kill()
        process.join(KILL_WAIT)
        if process.exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
            process.join()
        self._post(self._on_exit, process.exitcode)

    # -- on the loop -----------------------------------------------------------------

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "report":
            self.execution.buffer.merge(message[1])
        elif kind == "outcome":
            self.execution.settle(message[1])
        elif kind == "call":
            call = self._loop.create_task(self._answer(*message[1:]))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _answer(self, n: int, method: str, args: tuple[Any, ...]) -> None:
        family = self.execution.family
        if not isinstance(family, WorkerFamily):
            ok, value = False, ("ConfigurationError", "this worker cannot spawn children")
        else:
            ok, value = await answer(family, method, args)
        conn = self._conn
        if conn is not None and not conn.closed and not self._exited:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("reply", n, ok, value))

    def _on_exit(self, code: int | None) -> None:
        self._exited = True
        if self._conn is not None:
            self._conn.close()
        with contextlib.suppress(ValueError):
            self._process.close()
        if self.execution.settled:
            return
        if self._killed:
            self.execution.settle(forced(f"its process was killed ({describe_exit(code)})"))
            return
        if self.execution.stop_reason is not None:
            self.execution.settle(
                forced(f"its process ended ({describe_exit(code)}) after being asked to stop")
            )
            return
        self.execution.settle(
            Outcome(
                "raised",
                error=ErrorInfo(
                    "ChildProcessError",
                    f"the task's process ended ({describe_exit(code)}) before its handler finished",
                ),
            )
        )


# -- the child ------------------------------------------------------------------------


def child_main(
    conn: multiprocessing.connection.Connection,
    import_path: str,
    task: Task,
    flush_interval: float,
) -> None:
    """Entry point of the child process: run one handler, report, send the outcome."""
    # Ctrl-C in a terminal reaches the whole process group: the worker decides what
    # happens to its tasks, not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()
    done = threading.Event()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    try:
        from taskgate.loader import load_app

        app = load_app(import_path)
        operation = app.get(task.type)
        if operation.isolation != "process":
            raise ConfigurationError(
                f"operation {task.type} in {import_path} is not process-isolated"
                f" (isolation={operation.isolation!r}): the app the worker runs"
                " and the one it imports differ"
            )
        kwargs = operation.arguments(task.params)
    except BaseException as exc:
        send(("outcome", _not_retryable(raised(exc))))
        _exit(0)
        return

    buffer = ReportBuffer(task)
    family = PipeFamily(send)
    ctx = Context(task, buffer, family)

    def read() -> None:
        try:
            while True:
                message = conn.recv()
                if message and message[0] == "cancel":
                    ctx._request_cancel()
                elif message and message[0] == "reply":
                    family.reply(*message[1:])
        except (EOFError, OSError):
            family.close()
            if not done.is_set():
                _exit(PARENT_GONE_EXIT)  # the worker is gone: nobody owns this run now

    def pump() -> None:
        while not done.wait(flush_interval):
            report = buffer.take()
            if report is not None:
                send(("report", report))

    threading.Thread(target=read, name="taskgate-child-reader", daemon=True).start()
    threading.Thread(target=pump, name="taskgate-child-reports", daemon=True).start()
    try:
        if operation.is_async:
            value = asyncio.run(operation.handler(ctx, **kwargs))
        else:
            value = operation.handler(ctx, **kwargs)
        outcome = returned(value)
    except BaseException as exc:
        outcome = raised(exc)
    done.set()
    buffer.close()
    last = buffer.take()
    try:
        if last is not None:
            send(("report", last))
        send(("outcome", outcome))
    except Exception as exc:  # e.g. an unpicklable detail: still end the task
        send(("outcome", raised(exc)))
    _exit(0)


def _not_retryable(outcome: Outcome) -> Outcome:
    return Outcome(
        outcome.kind,
        outcome.value,
        outcome.error,
        outcome.interrupt,
        retryable=False,
        note=outcome.note,
    )


def _exit(code: int) -> None:
    """Exit now: threads the handler left behind must not keep the child alive."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
