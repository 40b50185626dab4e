"""`Worker`: claims due tasks, runs their handlers, reports for them and ends them;
`run_worker`, the blocking entry point of a worker process.

One worker runs in one process, on one event loop:

- The claim loop takes up to ``min(free slots, claim_batch)`` due tasks in one write,
  under a lease of ``lease`` seconds. It never sleeps on a fixed poll while work is
  due: a ``due`` notification (a submit, a retry) wakes it, a timer wakes it when the
  next scheduled task falls due, and a slow safety poll (``poll_interval``) covers a
  lost notification.
- A slot is freed as soon as a handler returns. Its ending (and its last reports) is
  written after, concurrently with other tasks' endings, so the store's group commit
  puts many of them in one transaction.
- Heartbeats renew every lease this worker holds (`taskgate.runtime.upkeep`).
- One worker of the store is the scheduler (`taskgate.runtime.elector`): it runs the
  reaper, which ends or re-queues the tasks of workers whose leases ran out, and submits
  the runs of named schedules (`taskgate.schedules`). Every
  worker stands for the role; another takes over when the scheduler stops or dies.
- Cancel requests (seen through ``changed`` notifications about running tasks, and
  re-checked at each heartbeat) and timeouts ask the handler to stop through its
  context; after ``cancel_grace`` seconds it is stopped by force (`Launcher.force`).
- `Worker.request_stop` stops claiming, lets running tasks finish within
  ``shutdown_grace``, then stops the rest and ends each one with a clear reason.

How each attempt ends is decided in `taskgate.runtime.ending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from taskgate.app import App
from taskgate.errors import StorageError, StorageUnavailable, TaskNotFound
from taskgate.logcontext import CURRENT_TASK, TaskFields, about
from taskgate.model import ACTIVE, State, Task
from taskgate.retention import RetentionService
from taskgate.runtime.buffer import ReportBuffer
from taskgate.runtime.elector import Elector
from taskgate.runtime.ending import decide, store_ending
from taskgate.runtime.execution import Execution, Outcome, StopReason
from taskgate.runtime.family import WorkerFamily
from taskgate.runtime.flag import Flag
from taskgate.runtime.isolation import Launcher
from taskgate.runtime.process import KILL_WAIT
from taskgate.runtime.reporter import Reporter
from taskgate.runtime.upkeep import aging, heartbeats, reaper, retention, schedules
from taskgate.schedules import ScheduleService
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect_settings
from taskgate.storage.connector import CHANNEL_CHANGED, CHANNEL_DUE, RESERVED
from taskgate.tracing import RunSpan, Tracing
from taskgate.tracing import load as load_tracing

log = logging.getLogger("taskgate.worker")

CHECK_DELAY = 0.02
"""Seconds a ``changed`` notification about a running task waits before the task is
re-read: most such notifications come from this worker's own writes, and a short task
has ended by then."""
GATHER = 0.002
"""Seconds the claim loop waits for more slots to come free before claiming a few."""
ENDING_TIMEOUT = 30.0
"""Seconds a stopping worker keeps trying to store the endings of its tasks."""

_REASONS: dict[StopReason, str] = {
    "canceled": "cancel requested",
    "timed_out": "timed out",
    "shutdown": "the worker is stopping",
    "lost": "this attempt no longer holds the task",
}


def default_worker_id(node: str) -> str:
    return f"{node}-{os.getpid()}-{secrets.token_hex(4)}"


class Worker:
    """Runs the tasks of ``service``'s app until `request_stop` (or cancellation)."""

    def __init__(
        self,
        service: TaskService,
        settings: Settings,
        *,
        worker_id: str | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.worker_id = worker_id or default_worker_id(service.node)
        self.tracing = tracing if tracing is not None else load_tracing(settings)
        """A span per attempt, when tracing is on (`taskgate.tracing`)."""
        if self.tracing is not None and service.tracing is None:
            service.tracing = self.tracing  # children spawned in a run link to it
        self.claimed = 0
        """Tasks claimed so far."""
        self._running: dict[str, Execution] = {}
        self._stale: set[Execution] = set()
        """Executions whose task came back to this worker in a newer attempt."""
        self._executing = 0
        self._wake = Flag()
        """Tasks may have become due."""
        self._reserved_due = True
        """Tasks that reserve resources may be claimable: one was submitted, a
        reservation was released, or a reserved task's timer or the safety poll woke the
        claim loop."""
        self._slot = Flag()
        """A slot came free (or an ending was stored)."""
        self._changed = Flag()
        """Something a shutdown waits for happened."""
        self._ready = asyncio.Event()
        self._stopping = False
        self._hurry = False
        self._give_up = False
        self._started = False
        self._unended = 0
        self._jobs: set[asyncio.Task[Any]] = set()
        self._to_check: set[str] = set()
        self._check_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._launcher: Launcher | None = None
        self._reporter: Reporter | None = None
        self._elector: Elector | None = None

    # -- what tests and operators look at -------------------------------------------

    @property
    def running_task_ids(self) -> frozenset[str]:
        """Tasks this worker holds (their handler runs, or their ending is being stored)."""
        return frozenset(self._running)

    @property
    def executing(self) -> int:
        """Handlers running now: the slots in use."""
        return self._executing

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def ready(self) -> asyncio.Event:
        """Set once the worker has registered and starts claiming."""
        return self._ready

    @property
    def leading(self) -> bool:
        """This worker is the store's scheduler now (it runs the reaper)."""
        return self._elector is not None and self._elector.leading

    def execution(self, task_id: str) -> Execution | None:
        """The attempt of ``task_id`` this worker holds, if any."""
        return self._running.get(task_id)

    # -- life cycle -----------------------------------------------------------------

    def request_stop(self, *, immediate: bool = False) -> None:
        """Stop gracefully: claim no more, let running tasks finish within
        ``shutdown_grace``, then stop the rest. ``immediate`` (a second signal) skips
        the grace periods. Call it on the worker's event loop."""
        if not self._stopping:
            log.info("worker %s: stopping", self.worker_id)
        self._stopping = True
        if immediate:
            self._hurry = True
            for execution in self._executions():
                if execution.stop_reason is not None and not execution.settled:
                    self._force(execution)
        for event in (self._wake, self._slot, self._changed):
            event.set()

    async def run(self) -> None:
        """Register, claim and run tasks until stopped, end every task held, unregister."""
        if self._started:
            raise RuntimeError("a Worker runs once; create another")
        self._started = True
        loop = self._loop = asyncio.get_running_loop()
        settings = self.settings
        self._launcher = Launcher(
            self.service.app,
            concurrency=settings.concurrency,
            flush_interval=settings.flush_interval,
            loop=loop,
            spawn=self._spawn,
        )
        self._reporter = Reporter(
            self.service,
            flush_interval=settings.flush_interval,
            loop=loop,
            spawn=self._spawn,
            give_up=lambda: self._give_up,
        )
        await self._register()
        self.service.connector.add_listener(self._on_notification)
        self._elector = Elector(
            self.service,
            self.worker_id,
            [
                functools.partial(reaper, self.service, self.worker_id, settings.reaper_interval),
                functools.partial(
                    schedules,
                    ScheduleService(self.service),
                    self.worker_id,
                    settings.schedule_interval,
                ),
                functools.partial(
                    retention,
                    RetentionService(
                        self.service,
                        archive_after=settings.archive_after,
                        purge_after=settings.purge_after,
                    ),
                    self.worker_id,
                    settings.retention_interval,
                ),
                functools.partial(aging, self.service, self.worker_id, settings.priority_aging),
            ],
            interval=settings.leader_interval,
        )
        background = [
            loop.create_task(
                heartbeats(
                    self.service,
                    self.worker_id,
                    settings,
                    lambda: self._running.keys(),
                    self._recheck_running,
                ),
                name="taskgate-heartbeat",
            ),
            loop.create_task(self._elector.run(), name="taskgate-elector"),
        ]
        log.info(
            "worker %s started: concurrency %d, lease %g s, app %s",
            self.worker_id,
            settings.concurrency,
            settings.lease,
            self.service.app.import_path or self.service.app.name,
        )
        clean = False
        try:
            self._ready.set()
            await self._claim_loop()
            await self._drain()
            clean = True
        finally:
            self._stopping = True
            if not clean:  # cancelled or crashed: nobody waits for the handlers now
                for execution in self._executions():
                    self._launcher.abort(execution)
            for job in background:
                job.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self.service.connector.remove_listener(self._on_notification)
            if self._check_timer is not None:
                self._check_timer.cancel()
            self._reporter.close()
            await self._release()
            self._launcher.shutdown()
            log.info("worker %s stopped", self.worker_id)

    async def _register(self) -> None:
        """Record this worker; a store that is busy or down for a moment is waited out."""
        delay = 0.05
        while True:
            try:
                await self.service.register_worker(
                    self.worker_id, pid=os.getpid(), concurrency=self.settings.concurrency
                )
                return
            except StorageUnavailable as exc:
                if self._stopping:
                    raise
                log.warning("worker %s: cannot register yet (%s)", self.worker_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.poll_interval)

    async def _drain(self) -> None:
        """Shutdown: let handlers finish, then stop them, then store every ending."""
        settings = self.settings
        if self._executing:
            log.info(
                "worker %s: waiting up to %g s for %d running tasks",
                self.worker_id,
                0 if self._hurry else settings.shutdown_grace,
                self._executing,
            )
            await self._until(lambda: self._executing == 0 or self._hurry, settings.shutdown_grace)
        left = [e for e in self._executions() if not e.settled]
        if left:
            log.warning(
                "worker %s: stopping %d tasks still running: %s",
                self.worker_id,
                len(left),
                ", ".join(e.task.id for e in left),
            )
            for execution in left:
                self._request_stop(execution, "shutdown")
            # forced endings come within the grace period, plus a kill's SIGTERM wait
            await self._until(lambda: self._executing == 0, settings.cancel_grace + KILL_WAIT + 5.0)
        if not await self._until(self._nothing_held, ENDING_TIMEOUT):
            self._give_up = True  # store writes stop retrying; what is left is recovered
            await self._until(self._nothing_held, 5.0)

    async def _release(self) -> None:
        """Hand back whatever this worker still holds, and unregister."""
        try:
            if self._unended or not self._nothing_held():
                # endings that could not be stored: end our leases now, so that those
                # tasks are failed (worker lost) or queued again at once
                recovered = await self.service.recover_lost(worker=self.worker_id)
                if recovered:
                    log.warning(
                        "worker %s: %d tasks recovered as worker lost: %s",
                        self.worker_id,
                        len(recovered),
                        ", ".join(t.id for t in recovered),
                    )
            await self.service.unregister_worker(self.worker_id)
        except StorageError as exc:
            log.error(
                "worker %s: cannot unregister (%s); its tasks are recovered when their"
                " leases run out",
                self.worker_id,
                exc,
            )

    def _nothing_held(self) -> bool:
        return not self._running and not self._stale

    async def _until(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            await self._changed.wait(remaining)
        return True

    def _executions(self) -> list[Execution]:
        return [*self._running.values(), *self._stale]

    # -- claiming -----------------------------------------------------------------

    def _capacity(self) -> int:
        concurrency = self.settings.concurrency
        held = len(self._running) + len(self._stale)
        # endings being stored hold no slot, but must not pile up without bound
        return min(
            self.settings.claim_batch,
            concurrency - self._executing,
            2 * concurrency - held,
        )

    async def _claim_loop(self) -> None:
        settings = self.settings
        failures = 0
        while not self._stopping:
            limit = self._capacity()
            if limit <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            if limit < settings.claim_batch and self._executing and GATHER > 0:
                # slots come free one by one as handlers end: gather some for a moment,
                # so that one claim (one write) fetches many tasks instead of a few
                await self._gather_slots(settings.claim_batch, GATHER)
                limit = self._capacity()
            self._wake.clear()
            try:
                tasks = await self._claim_reserved(limit)
                if len(tasks) < limit:
                    tasks += await self._claim(limit - len(tasks))
            except Exception as exc:
                failures += 1
                log.warning("worker %s: claiming failed: %s", self.worker_id, exc)
                await self._wait_wake(min(0.05 * 2**failures, settings.poll_interval))
                continue
            failures = 0
            if self._stopping or len(tasks) >= limit:
                continue
            if tasks:
                await asyncio.sleep(0)  # let the handlers just started begin first
            # nothing else is due now: sleep until told, or until the next scheduled task
            timeout = settings.poll_interval
            try:
                due, reserved = await self.service.next_due()
            except StorageError:
                due = reserved = None
            now = self.service.clock()
            if due is not None:
                timeout = min(timeout, due - now)
            # a timer for a reserved task, and the safety poll, look at reserved tasks too
            look = False
            if reserved is not None and reserved - now <= timeout:
                timeout, look = reserved - now, True
            if not tasks:
                timeout = max(timeout, 0.001)  # no busy loop on a clock that disagrees
            if timeout > 0:
                await self._wait_wake(timeout, reserved=look or timeout >= settings.poll_interval)

    async def _claim_reserved(self, limit: int) -> list[Task]:
        """Claim reserved tasks when some may be claimable (and start them)."""
        if not self._reserved_due:
            return []
        self._reserved_due = False
        try:
            tasks = await self.service.claim_reserved(self.worker_id, limit, self.settings.lease)
        except BaseException:
            self._reserved_due = True
            raise
        if len(tasks) >= limit:
            self._reserved_due = True  # there may be more
        for task in tasks:
            self._start(task)
        return tasks

    async def _claim(self, limit: int) -> list[Task]:
        """Claim tasks that reserve nothing (and start them)."""
        tasks = await self.service.claim(self.worker_id, limit, self.settings.lease)
        for task in tasks:
            self._start(task)
        return tasks

    async def _gather_slots(self, wanted: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._capacity() < wanted and self._executing and not self._stopping:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._slot.clear()
            await self._slot.wait(remaining)

    async def _wait_wake(self, timeout: float, *, reserved: bool = True) -> None:
        """Sleep until woken or ``timeout``; a timeout that was the safety poll or a
        reserved task's timer (``reserved``) looks at reserved tasks next."""
        if not await self._wake.wait(timeout) and reserved:
            self._reserved_due = True

    # -- running a task -----------------------------------------------------------

    def _start(self, task: Task) -> None:
        # what starts here (the handler, its timers, the task storing its ending) runs in
        # this context: its log records name the task (`taskgate.logcontext`)
        token = CURRENT_TASK.set(TaskFields(task.id, task.type, task.tenant, task.request_id))
        try:
            if self.tracing is None:
                self._launch(task, None)
            else:
                span = self.tracing.start_run(task)
                with span.current():
                    self._launch(task, span)
        finally:
            CURRENT_TASK.reset(token)

    def _launch(self, task: Task, span: RunSpan | None) -> None:
        loop, launcher, reporter = self._loop, self._launcher, self._reporter
        assert loop is not None and launcher is not None and reporter is not None
        self.claimed += 1
        operation = self.service.app.operations.get(task.type)
        buffer = ReportBuffer(task, clock=self.service.clock)
        execution = Execution(task, operation, buffer, loop, WorkerFamily(self.service, task, loop))
        execution.span = span
        reporter.attach(execution)
        previous = self._running.get(task.id)
        if previous is not None:  # an older attempt here lost the task, which came back
            self._stale.add(previous)
            self._request_stop(previous, "lost")
        self._running[task.id] = execution
        self._executing += 1
        if task.timeout is not None:
            execution.timeout_timer = loop.call_later(
                task.timeout, self._request_stop, execution, "timed_out"
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("task %s (%s): attempt %d started", task.id, task.type, task.attempt)
        launcher.launch(execution)
        self._spawn(self._run(execution))

    async def _run(self, execution: Execution) -> None:
        try:
            outcome = await execution.outcome
        finally:
            execution.cancel_timers()
            self._executing -= 1
            self._slot.set()
            self._changed.set()
        try:
            stored = await self._end(execution, outcome)
            if execution.span is not None:
                execution.span.end(stored)
        except Exception:
            self._unended += 1
            log.exception(
                "task %s (%s): its ending could not be stored",
                execution.task.id,
                execution.task.type,
            )
        finally:
            if self._running.get(execution.task.id) is execution:
                del self._running[execution.task.id]
            else:
                self._stale.discard(execution)
            self._slot.set()
            self._changed.set()

    async def _end(self, execution: Execution, outcome: Outcome) -> Task | None:
        """Store how the attempt ended; the task as stored (None: the attempt no longer
        held it)."""
        reporter = self._reporter
        assert reporter is not None
        task = execution.task
        ending = decide(execution, outcome)
        execution.buffer.close()
        if ending.action == "none":
            # the task's fate is stored already (by a reaper): add nothing to it
            execution.buffer.take()
            log.info(
                "task %s (%s): attempt %d lost the task; its ending is not stored",
                task.id,
                task.type,
                task.attempt,
            )
            return None
        for text, level in ending.lines:
            execution.buffer.note(text, level)
        # the last reports go first, so the final state is written after the last lines
        await reporter.flush(execution, final=True)
        stored = await store_ending(self.service, execution, ending, give_up=lambda: self._give_up)
        if stored is None:
            log.info(
                "task %s (%s): attempt %d no longer held the task; its ending (%s) was not stored",
                task.id,
                task.type,
                task.attempt,
                ending.state or ending.action,
            )
        elif ending.action == "retry":
            log.info(
                "task %s (%s): attempt %d of %d ended (%s); next attempt in %.1f s",
                task.id,
                task.type,
                task.attempt,
                task.max_attempts,
                ending.error.type if ending.error else "error",
                ending.delay,
            )
        elif stored.state is not State.SUCCEEDED:
            log.info(
                "task %s (%s): %s%s",
                task.id,
                task.type,
                stored.state,
                f" ({ending.error.type}: {ending.error.message})" if ending.error else "",
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("task %s (%s): succeeded", task.id, task.type)
        return stored

    # -- stopping a task ----------------------------------------------------------

    def _request_stop(self, execution: Execution, reason: StopReason) -> None:
        """Ask the handler to stop; stop it by force ``cancel_grace`` seconds later.
        The first reason given is the one that counts."""
        loop, launcher = self._loop, self._launcher
        assert loop is not None and launcher is not None
        if execution.settled or execution.stop_reason is not None:
            return
        execution.stop_reason = reason
        task = execution.task
        launcher.request_cancel(execution)
        if reason == "timed_out":
            line = f"timeout of {task.timeout or 0:g} s reached: asking the handler to stop"
            execution.buffer.note(line, "warning")
        elif reason == "canceled":
            execution.buffer.note("cancel requested: asking the handler to stop", "info")
        elif reason == "shutdown":
            execution.buffer.note("worker stopping: asking the handler to stop", "warning")
        grace = 0.0 if self._hurry else self.settings.cancel_grace
        with about(task):  # a notification or a heartbeat asks: not in the task's context
            log.info(
                "task %s (%s): %s; the handler has %g s to stop",
                task.id,
                task.type,
                _REASONS[reason],
                grace,
            )
            execution.force_timer = loop.call_later(grace, self._force, execution)

    def _force(self, execution: Execution) -> None:
        assert self._launcher is not None
        if execution.force_timer is not None:
            execution.force_timer.cancel()
            execution.force_timer = None
        self._launcher.force(execution, 0.0 if self._hurry else self.settings.cancel_grace)

    # -- notifications and heartbeats -------------------------------------------------

    def _on_notification(self, channel: str, payload: str) -> None:
        if channel == CHANNEL_DUE:
            if payload and RESERVED in payload.split(","):
                self._reserved_due = True
            self._wake.set()
            return
        if channel != CHANNEL_CHANGED or not self._running:
            return
        if not payload:  # changes may have been missed (a reconnect): re-read them all
            self._recheck_running()
            return
        running = self._running
        found = False
        for task_id in payload.split(","):
            if task_id in running:
                self._to_check.add(task_id)
                found = True
        if found and self._check_timer is None and self._loop is not None:
            self._check_timer = self._loop.call_later(CHECK_DELAY, self._start_check)

    def _start_check(self) -> None:
        self._check_timer = None
        ids, self._to_check = self._to_check, set()
        if ids:
            self._spawn(self._check(ids))

    async def _check(self, task_ids: set[str] | list[str]) -> None:
        """Re-read running tasks: a cancel request, or an attempt that lost its task."""
        for task_id in task_ids:
            execution = self._running.get(task_id)
            if execution is None or execution.settled or execution.stop_reason is not None:
                continue
            try:
                current = await self.service.get(task_id)
            except TaskNotFound:
                self._request_stop(execution, "lost")
                continue
            except StorageError as exc:
                log.debug("task %s: re-reading it failed: %s", task_id, exc)
                continue
            if execution.settled or execution.stop_reason is not None:
                continue
            mine = current.worker == self.worker_id and current.attempt == execution.task.attempt
            if not mine or current.state not in ACTIVE:
                self._request_stop(execution, "lost")
            elif current.state is State.CANCELING:
                self._request_stop(execution, "canceled")

    def _recheck_running(self) -> None:
        """After a heartbeat: re-read every running task (a missed cancel request)."""
        if self._running:
            self._spawn(self._check(list(self._running)))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        assert loop is not None
        job = loop.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._job_done)

    def _job_done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error(
                "worker %s: a background job failed", self.worker_id, exc_info=job.exception()
            )


# -- the process entry point ----------------------------------------------------------


def run_worker(settings: Settings, app: App, *, worker_id: str | None = None) -> None:
    """Run a worker for ``app`` against ``settings.database`` until SIGTERM/SIGINT.

    Blocking; uses uvloop when it is installed. The first SIGTERM or SIGINT stops the
    worker gracefully, a second one skips the grace periods.
    """
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_worker(settings, app, worker_id=worker_id))


async def serve_worker(
    settings: Settings,
    app: App,
    *,
    worker_id: str | None = None,
    install_signal_handlers: bool = True,
) -> None:
    """Open the store, run a `Worker` until it is stopped, close the store."""
    connector = connect_settings(settings)
    service = TaskService(connector, app, node=settings.node)
    await service.open()
    try:
        worker = Worker(service, settings, worker_id=worker_id)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, _on_signal, worker, sig)
                    installed.append(sig)
        try:
            await worker.run()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
    finally:
        await service.close()


def _on_signal(worker: Worker, sig: signal.Signals) -> None:
    if worker.stopping:
        log.warning("worker %s: %s again: stopping now", worker.worker_id, sig.name)
        worker.request_stop(immediate=True)
    else:
        log.info("worker %s: %s: stopping gracefully", worker.worker_id, sig.name)
        worker.request_stop()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
