"""History and retention: how long ended tasks are kept, and where.

An ended task stays in the hot table (``tasks``) for ``archive_after`` seconds after it
ended, then moves to history (``task_history``: the same columns, ``archived`` true),
and is deleted, with its log and reservations, ``purge_after`` seconds after it ended.
Both periods are the store's settings, and an operation may set its own
(``@app.operation(..., archive_after=3600, purge_after=7 * 86400)``; `math.inf`: never).
A ``purge_after`` shorter than ``archive_after`` deletes ended tasks straight from the
hot table.

The scheduler (one per store) runs `RetentionService.run` every
``retention_interval``: for each operation with ended tasks (found by a loose index scan,
one probe per operation), it moves or deletes the expired ones oldest first, `BATCH` at a
time, each batch one short transaction, and pauses between batches three times as long
as the batch took (`taskgate.service.pace`), so that the API and the workers, in this
process or another, have the store (and the machine) at least three quarters of the
time. A pass that still finds full batches after `BATCHES` of them
ends; the next pass goes on at once.

History stays readable: get-by-id (and by UPID) looks there when the hot table has no
such task, lists take ``archived=true|false|any``, a group's summary counts both.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from taskgate.service import TaskService, pace
from taskgate.storage.connector import Step
from taskgate.storage.rows import dumps

log = logging.getLogger("taskgate.scheduler")

BATCH = 200
"""Tasks moved or deleted per transaction."""
BATCHES = 500
"""Most batches one pass runs before it lets the scheduler's other duties in."""


@dataclass(slots=True)
class RetentionPass:
    """What one pass did."""

    archived: int = 0
    purged: int = 0
    batches: int = 0

    @property
    def more(self) -> bool:
        """It stopped at `BATCHES` with work left."""
        return self.batches >= BATCHES


class RetentionService:
    """Moves ended tasks to history and deletes them when their time has come."""

    def __init__(self, tasks: TaskService, *, archive_after: float, purge_after: float) -> None:
        self.tasks = tasks
        self.connector = tasks.connector
        self.archive_after = archive_after
        self.purge_after = purge_after

    def periods(self, type: str) -> tuple[float, float]:
        """(archive_after, purge_after) of the tasks of operation ``type``: its own, else
        the store's (an operation the app no longer has takes the store's)."""
        operation = self.tasks.app.operations.get(type)
        archive, purge = self.archive_after, self.purge_after
        if operation is not None:
            if operation.retention.archive_after is not None:
                archive = operation.retention.archive_after
            if operation.retention.purge_after is not None:
                purge = operation.retention.purge_after
        return archive, purge

    async def run(self) -> RetentionPass:
        """One pass: archive, then purge, what has expired."""
        done = RetentionPass()
        now = self.tasks.clock()
        for row in await self.connector.fetch_all("ended_types", {}):
            archive, purge = self.periods(row["type"])
            if archive < purge:
                done.archived += await self._expire(
                    "expired_tasks", row["type"], now - archive, self._archive, done
                )
            else:  # deleted before it would move: straight from the hot table
                done.purged += await self._expire(
                    "expired_tasks", row["type"], now - purge, self._purge_hot, done
                )
        for row in await self.connector.fetch_all("archived_types", {}):
            _, purge = self.periods(row["type"])
            done.purged += await self._expire(
                "expired_history", row["type"], now - purge, self._purge_history, done
            )
        if done.archived or done.purged:
            log.info("retention: %d tasks moved to history, %d deleted", done.archived, done.purged)
        return done

    async def _expire(
        self,
        find: str,
        type: str,
        before: float,
        act: Callable[[Sequence[str]], Awaitable[int]],
        done: RetentionPass,
    ) -> int:
        """``act`` on the tasks ``find`` selects (of ``type``, ended before ``before``),
        batch by batch; how many it took."""
        if math.isinf(before):  # -inf: kept for ever
            return 0
        total = 0
        params = {"type": type, "finished_before": before, "limit": BATCH}
        while not done.more:
            rows = await self.connector.fetch_all(find, params)
            if not rows:
                break
            started = time.monotonic()
            total += await act([str(r["id"]) for r in rows])
            done.batches += 1
            if len(rows) < BATCH:
                break
            await pace(time.monotonic() - started)
        return total

    async def _archive(self, ids: Sequence[str]) -> int:
        text = dumps(list(ids))
        _, moved = await self.connector.execute_batch(
            [Step("archive_tasks", {"ids": text}), Step("drop_archived", {"ids": text})]
        )
        return len(moved)

    async def _purge_hot(self, ids: Sequence[str]) -> int:
        return await self.tasks.delete_ids("purge_tasks", ids)

    async def _purge_history(self, ids: Sequence[str]) -> int:
        return await self.tasks.delete_ids("purge_history", ids)
