"""Supervision of the worker processes that ``taskgate serve`` starts.

Each worker runs in its own process (``python -m taskgate worker APP --worker-id ID``),
one per *slot*. The supervisor keeps every slot filled:

- a worker that dies is started again, with a new id; if it keeps dying soon after it
  starts, each restart waits longer (exponential backoff, capped), so a crash loop does
  not burn the machine;
- a worker that dies unexpectedly may have left tasks ``running``: ``on_lost(worker_id)``
  is called at once (serve passes ``TaskService.recover_lost``), so they are failed or
  queued again now rather than when their lease runs out;
- workers run in sessions of their own, so that only the supervisor signals them;
- `Supervisor.stop` sends SIGTERM to every worker (they stop claiming and let running
  tasks finish within their own grace period), waits up to ``stop_timeout``, then kills
  what is left and recovers its tasks. `Supervisor.kill` cuts that wait short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("taskgate.supervisor")

PID_PLACEHOLDER = "{pid}"
"""In a worker id, stands for the worker's process id (``taskgate worker --worker-id``
replaces it in the child; the supervisor, once it knows the pid)."""

Command = Callable[[str], Sequence[str]]
"""The argv that starts the worker with the given id (template)."""
Namer = Callable[[int, int], str]
"""The worker id (template) for (slot, generation); generation counts a slot's starts."""
OnLost = Callable[[str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before restarting a worker that keeps dying."""

    initial: float = 0.5
    maximum: float = 30.0
    healthy_after: float = 10.0
    """A worker that ran this long is healthy again: its next restart is immediate."""

    def delay(self, failures: int) -> float:
        """The wait before a restart after ``failures`` quick deaths in a row."""
        if failures <= 0:
            return 0.0
        return min(self.maximum, self.initial * 2.0 ** (failures - 1))


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """A worker process the supervisor started."""

    slot: int
    worker_id: str
    pid: int
    started_at: float
    """`time.monotonic` at start."""
    generation: int


def describe_exit(code: int) -> str:
    """``"exit status 3"`` or ``"signal SIGKILL"`` for a return code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


class Supervisor:
    """Keeps ``count`` worker processes running until stopped."""

    def __init__(
        self,
        command: Command,
        count: int,
        *,
        name: Namer,
        env: Mapping[str, str] | None = None,
        on_lost: OnLost | None = None,
        stop_timeout: float = 30.0,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._command = command
        self.count = count
        self._name = name
        self._env = dict(env) if env is not None else None
        self._on_lost = on_lost
        self.stop_timeout = stop_timeout
        self.backoff = backoff
        self._slots: dict[int, WorkerProcess] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: asyncio.Event | None = None
        self._forced: asyncio.Event | None = None
        self._deadline = 0.0
        self.restarts = 0
        """Restarts after unexpected exits, over all slots."""

    @property
    def workers(self) -> list[WorkerProcess]:
        """The worker processes running now, by slot."""
        return [self._slots[s] for s in sorted(self._slots)]

    async def start(self) -> None:
        """Start every worker; returns once each has been spawned."""
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()
        started = [asyncio.get_running_loop().create_future() for _ in range(self.count)]
        self._tasks = [
            asyncio.create_task(self._run_slot(slot, started[slot - 1]), name=f"worker-slot-{slot}")
            for slot in range(1, self.count + 1)
        ]
        if started:
            await asyncio.wait(started)

    async def stop(self, timeout: float | None = None) -> None:
        """SIGTERM every worker, wait for them (up to the stop timeout), kill the rest."""
        if self._stopping is None:
            return
        wait = self.stop_timeout if timeout is None else timeout
        if not self._stopping.is_set():
            self._deadline = time.monotonic() + wait
            self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def kill(self) -> None:
        """Stop at once: workers still running get SIGKILL (their tasks are recovered)."""
        if self._stopping is None or self._forced is None:
            return
        if not self._stopping.is_set():
            self._deadline = time.monotonic()
            self._stopping.set()
        self._forced.set()

    # -- one slot ------------------------------------------------------------------

    async def _run_slot(self, slot: int, started: asyncio.Future[None]) -> None:
        assert self._stopping is not None
        generation = 0
        failures = 0
        try:
            while not self._stopping.is_set():
                generation += 1
                template = self._name(slot, generation)
                began = time.monotonic()
                try:
                    # A session of its own: Ctrl+C in a terminal (SIGINT to the foreground
                    # process group) reaches only serve, which then sends one SIGTERM. A
                    # worker signaled twice would cut its grace period short.
                    proc = await asyncio.create_subprocess_exec(
                        *self._command(template),
                        env=self._env,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                except OSError as exc:
                    log.error("cannot start worker %s: %s", template, exc)
                    failures += 1
                    _resolve(started)
                    await self._pause(self.backoff.delay(failures))
                    continue
                worker_id = template.replace(PID_PLACEHOLDER, str(proc.pid))
                self._slots[slot] = WorkerProcess(slot, worker_id, proc.pid, began, generation)
                _resolve(started)
                log.info("worker %s started (pid %d)", worker_id, proc.pid)
                code = await self._watch(proc)
                self._slots.pop(slot, None)
                if code is None:  # stopping: SIGTERM sent
                    await self._reap(worker_id, proc)
                    return
                ran = time.monotonic() - began
                failures = 0 if ran >= self.backoff.healthy_after else failures + 1
                delay = self.backoff.delay(failures)
                log.warning(
                    "worker %s (pid %d) died (%s) after %.1f s; restarting it%s",
                    worker_id,
                    proc.pid,
                    describe_exit(code),
                    ran,
                    f" in {delay:.1f} s" if delay else "",
                )
                await self._lost(worker_id)
                self.restarts += 1
                await self._pause(delay)
        finally:
            _resolve(started)

    async def _watch(self, proc: asyncio.subprocess.Process) -> int | None:
        """The process's return code, or None once a stop began (SIGTERM then sent)."""
        assert self._stopping is not None
        exited = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not exited.done():
                exited.cancel()
        if exited.done() and not exited.cancelled():
            return exited.result()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        return None

    async def _reap(self, worker_id: str, proc: asyncio.subprocess.Process) -> None:
        """Wait for a worker told to stop; kill it at the deadline or on `kill`."""
        assert self._forced is not None
        exited = asyncio.ensure_future(proc.wait())
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            await asyncio.wait(
                {exited, forced},
                timeout=max(self._deadline - time.monotonic(), 0.0),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            forced.cancel()
        if not exited.done():
            log.error("worker %s (pid %d) did not stop in time; killing it", worker_id, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        code = await exited
        if code != 0:
            log.warning("worker %s stopped (%s)", worker_id, describe_exit(code))
            await self._lost(worker_id)
        else:
            log.info("worker %s stopped", worker_id)

    async def _lost(self, worker_id: str) -> None:
        if self._on_lost is None:
            return
        try:
            await self._on_lost(worker_id)
        except Exception:
            # The lease reaper recovers the tasks later anyway; never stop supervising.
            log.exception("recovering the tasks of worker %s failed", worker_id)

    async def _pause(self, delay: float) -> None:
        assert self._stopping is not None
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def die_with_parent(parent_pid: int) -> bool:
    """Ask Linux to send SIGTERM to this process when ``parent_pid`` (its parent) dies.

    Called by a worker that serve started, so that a ``kill -9`` of serve does not leave
    orphaned workers running (the SIGTERM makes them shut down gracefully). Returns False
    if the parent is already gone. Where ``prctl`` is not available, only checks.
    """
    if os.getppid() != parent_pid:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    # The parent may have died between the first check and prctl.
    return os.getppid() == parent_pid
