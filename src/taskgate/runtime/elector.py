"""`Elector`: runs a worker's leader duties while it holds the role, and only then.

Every worker is a candidate for the role ``scheduler`` of its store (one store: one
scheduler, however many nodes; `taskgate.storage.leadership`). Every
``leader_interval`` seconds a candidate tries to take the role; the holder confirms it
as often, and runs the duties (the reaper) as tasks of their own. When a confirmation
fails (the store is out of reach, or gave the role to another after this worker
stalled) the duties are cancelled at once and the worker is a candidate again. On
shutdown the holder lets the role go, so that another worker takes over within one
interval. A holder that stops confirming loses the role after `TIMEOUT_INTERVALS`
intervals; on PostgreSQL, one that dies loses it at once.

The holder's row in the ``leaders`` table (`WorkerSide.leaders`) shows who leads, from
which node and process.

There is no fencing: a holder that stalled past the timeout runs its duties for up to
one more interval after it resumes, beside the new holder. Duties must allow it: every
change the reaper makes is conditional.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from taskgate.errors import StorageError
from taskgate.storage.leadership import Candidate, Leadership
from taskgate.work import WorkerSide

log = logging.getLogger("taskgate.worker")

SCHEDULER = "scheduler"
"""The role whose holder runs the reaper."""
TIMEOUT_INTERVALS = 5
"""A holder that stops confirming loses the role after this many intervals (at least
`MIN_TIMEOUT` seconds)."""
MIN_TIMEOUT = 1.0

Duty = Callable[[], Coroutine[Any, Any, None]]
"""A leader duty: started when the worker takes the role, runs until cancelled."""


class Elector:
    """Makes worker ``worker_id`` a candidate for ``name``; runs ``duties`` while it leads."""

    def __init__(
        self,
        service: WorkerSide,
        worker_id: str,
        duties: Sequence[Duty],
        *,
        interval: float,
        name: str = SCHEDULER,
    ) -> None:
        self.service = service
        self.worker_id = worker_id
        self.duties = tuple(duties)
        self.interval = interval
        self.name = name
        self.timeout = max(TIMEOUT_INTERVALS * interval, MIN_TIMEOUT)
        self._leading = False
        self._jobs: list[asyncio.Task[None]] = []
        self._failing = False

    @property
    def leading(self) -> bool:
        """This worker holds the role (and runs the duties)."""
        return self._leading

    async def run(self) -> None:
        """Stand for the role until cancelled; let it go then."""
        candidate = Candidate(self.worker_id, self.service.node, os.getpid())
        leadership = self.service.connector.leadership(self.name, candidate, timeout=self.timeout)
        try:
            while True:
                if self._leading:
                    await self._keep(leadership)
                else:
                    await self._try(leadership)
                await asyncio.sleep(self.interval)
        finally:
            await self._step_down(leadership, "it is stopping", logging.INFO)

    async def _try(self, leadership: Leadership) -> None:
        try:
            taken = await leadership.try_acquire()
        except StorageError as exc:
            if not self._failing:
                log.warning(
                    "worker %s: cannot stand for %s (%s); trying again",
                    self.worker_id,
                    self.name,
                    exc,
                )
            self._failing = True
            return
        self._failing = False
        if taken:
            self._leading = True
            log.info("worker %s is now the %s", self.worker_id, self.name)
            self._jobs = [self._start(duty) for duty in self.duties]

    async def _keep(self, leadership: Leadership) -> None:
        try:
            held = await leadership.confirm()
        except StorageError:
            held = False
        if not held:
            await self._step_down(
                leadership,
                "it could not confirm the role in time (the store is out of reach, or"
                " gave the role to another after this worker stalled)",
                logging.WARNING,
            )
            return
        for i, job in enumerate(self._jobs):
            if job.done():  # a duty that crashed: a bug; keep the others, start it again
                log.error(
                    "worker %s: a %s duty failed; starting it again",
                    self.worker_id,
                    self.name,
                    exc_info=None if job.cancelled() else job.exception(),
                )
                self._jobs[i] = self._start(self.duties[i])

    async def _step_down(self, leadership: Leadership, why: str, level: int) -> None:
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await leadership.release()
        if self._leading:
            self._leading = False
            log.log(level, "worker %s is no longer the %s: %s", self.worker_id, self.name, why)

    def _start(self, duty: Duty) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(duty(), name=f"taskgate-{self.name}-duty")
