"""`HandlerThreads`: the threads that run sync (``isolation="thread"``) handlers.

A `concurrent.futures.ThreadPoolExecutor` would do, but for one thing: a handler that
ignores a cancel request cannot be stopped, and the worker abandons its thread. An
executor's threads are joined at interpreter exit, so one such thread would keep the
worker process alive forever after SIGTERM. These threads are daemons, and the pool
starts a new one whenever none is idle, so an abandoned thread never costs a slot: at
most ``concurrency`` handlers run at once (the worker sees to that) plus the abandoned.
Idle threads beyond ``keep`` exit after ``idle_timeout`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("taskgate.worker")

Job = Callable[[], None]


class HandlerThreads:
    """A growing pool of daemon threads; `submit` never blocks and never queues behind
    a busy thread."""

    def __init__(
        self, *, keep: int = 4, idle_timeout: float = 60.0, name: str = "taskgate-handler"
    ) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._keep = keep
        self._idle_timeout = idle_timeout
        self._name = name
        self._counter = 0
        self._closed = False

    @property
    def size(self) -> int:
        """Threads alive (busy, idle or abandoned)."""
        return self._threads

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle thread, or on a new one. ``job`` must not raise."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler threads are shut down")
            if self._idle > 0:
                self._idle -= 1  # reserved for this job
                start = False
            else:
                self._threads += 1
                self._counter += 1
                start = True
                number = self._counter
        self._jobs.put(job)
        if start:
            thread = threading.Thread(target=self._run, name=f"{self._name}-{number}", daemon=True)
            thread.start()

    def shutdown(self) -> None:
        """Let idle threads exit; busy (or abandoned) threads exit when their job ends."""
        with self._lock:
            self._closed = True
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    # time out only if no job was reserved for an idle thread meanwhile
                    if self._idle > 0 and self._threads > self._keep:
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            try:
                job()
            except BaseException:  # a job must not raise; never let it kill the thread
                log.exception("a handler thread job raised")
            with self._lock:
                if self._closed:
                    self._threads -= 1
                    return
                self._idle += 1
