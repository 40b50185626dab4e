"""Named schedules: an operation run with fixed parameters on a recurrence, as Pulp 2's
scheduled calls and cron-style schedulers do.

A schedule's recurrence is an ISO 8601 repeating interval (``R5/2026-01-01T00:00:00Z/PT1H``)
or a cron expression in a time zone (`taskgate.recurrence`). The scheduler (one per
store: the worker that holds the ``scheduler`` role) calls `ScheduleService.run_due`:

- **A due run** is submitted as a task carrying ``schedule_id``, its ``scheduled_at``
  the run's nominal time, in the same transaction that records it on the schedule
  (``last_task_id``, ``last_run_at``, ``total_run_count``). The task is inserted only if
  that record took (the schedule unchanged since it was read), so a run is never
  submitted twice, whichever process fires it.
- **Missed runs** (the store or every worker was down) run once, not as a burst: the
  next run is always the first one after now.
- **Overlap.** While the last run has not ended, a due run is skipped (``skip``) or held
  until the last one ends (``queue``; runs that fall due meanwhile merge into it).
- **Failures.** When a run ends its outcome is counted: a success resets
  ``consecutive_failures``, a failure or timeout adds one, a cancel changes nothing; at
  ``failure_threshold`` the schedule is disabled, with the reason, as Pulp does.
- **Late runs.** A run submitted more than ``schedule_threshold`` seconds after its
  nominal time says so in its log (Pulp's schedule_threshold).

Every write is conditional on the schedule's ``version``: the API and a scheduler (or
two schedulers for a moment) never overwrite each other's changes; the loser re-reads.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import orjson

from taskgate.errors import (
    Conflict,
    InvalidParameters,
    InvalidRequest,
    NotFound,
    ScheduleNotFound,
)
from taskgate.ids import new_task_id
from taskgate.model import Task
from taskgate.recurrence import (
    IntervalRecurrence,
    Recurrence,
    RecurrenceError,
    parse_recurrence,
)
from taskgate.service import Submission, TaskService
from taskgate.storage.connector import CHANNEL_DUE, CHANNEL_SCHEDULES, Row, Step
from taskgate.storage.rows import as_datetime, dumps, task_from_row

log = logging.getLogger("taskgate.scheduler")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
"""A schedule's name: unique in its tenant, usable in a URL and a shell."""
MAX_PAGE = 500
BATCH = 200
"""Schedules one scheduler pass reads at a time; their runs are submitted together."""
RETRIES = 5
"""Tries of a change that lost a race with another writer of the same schedule."""
PASSES = 50
"""Most batches one `ScheduleService.run_due` reads of each kind; the next call goes on."""
"""Tries of a change that lost a race with another writer of the same schedule."""
RUN_OPTIONS = ("object_id", "priority", "labels", "timeout", "max_attempts")
"""Submission options a schedule passes on to each of its runs."""
ENDED_STATES = frozenset({"succeeded", "failed", "canceled", "timed_out"})
FAILED_STATES = frozenset({"failed", "timed_out"})


class Overlap(StrEnum):
    SKIP = "skip"
    """A run that falls due while the last one has not ended is skipped."""
    QUEUE = "queue"
    """It waits for the last one to end, then runs (runs due meanwhile merge into it)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    name: str
    tenant: str
    user: str
    type: str
    params: dict[str, Any]
    recurrence: str
    timezone: str
    enabled: bool
    overlap: Overlap
    options: dict[str, Any] = field(default_factory=dict)
    """What each run is submitted with: object_id, priority, labels, timeout, max_attempts."""
    user_id: int | None = None
    failure_threshold: int | None = None
    schedule_threshold: float | None = None
    consecutive_failures: int = 0
    total_run_count: int = 0
    remaining_runs: int | None = None
    first_run: datetime | None = None
    next_run: datetime | None = None
    last_run_at: datetime | None = None
    last_task_id: str | None = None
    pending_run: datetime | None = None
    disabled_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    last_task_open: bool = False
    """The last run's outcome is not counted yet (it may still be running)."""


_at = as_datetime
"""Epoch seconds as an aware UTC datetime."""


def _time(value: float | None) -> datetime | None:
    return None if value is None else as_datetime(value)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def schedule_from_row(row: Row) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        user=row["user_name"],
        user_id=row["user_id"],
        type=row["type"],
        params=orjson.loads(row["params"]),
        options=orjson.loads(row["options"]) if row["options"] else {},
        recurrence=row["recurrence"],
        timezone=row["timezone"],
        enabled=bool(row["enabled"]),
        overlap=Overlap(row["overlap"]),
        failure_threshold=row["failure_threshold"],
        schedule_threshold=row["schedule_threshold"],
        consecutive_failures=row["consecutive_failures"],
        total_run_count=row["total_run_count"],
        remaining_runs=row["remaining_runs"],
        first_run=_time(row["first_run"]),
        next_run=_time(row["next_run"]),
        last_run_at=_time(row["last_run_at"]),
        last_task_id=row["last_task_id"],
        last_task_open=bool(row["last_task_open"]),
        pending_run=_time(row["pending_run"]),
        disabled_reason=row["disabled_reason"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        version=row["version"],
    )


@dataclass(slots=True)
class SchedulerPass:
    """What one `ScheduleService.run_due` did."""

    fired: list[Task] = field(default_factory=list)
    skipped: int = 0
    held: int = 0
    counted: int = 0
    disabled: int = 0


@lru_cache(maxsize=4096)
def _recurrence(text: str, timezone: str, origin: float) -> Recurrence:
    return parse_recurrence(text, timezone=timezone, created_at=_at(origin))


def recurrence_of(schedule: Schedule, origin: float | None = None) -> Recurrence:
    """The schedule's recurrence, parsed (and cached). An interval that names no start
    starts at ``origin``: by default its first run, which is when it was set."""
    if origin is None:
        anchor = schedule.first_run or schedule.created_at
        assert anchor is not None
        origin = anchor.timestamp()
    return _recurrence(schedule.recurrence, schedule.timezone, origin)


def _remaining(recurrence: Recurrence, next_run: datetime | None) -> int | None:
    """Runs still to come, ``next_run`` included (None: no end)."""
    if not isinstance(recurrence, IntervalRecurrence) or recurrence.total_runs is None:
        return None
    if next_run is None:
        return 0
    return recurrence.total_runs - recurrence.runs_through(next_run) + 1


class ScheduleService:
    """Create, read, change and delete schedules; fire their runs (`run_due`)."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks
        self.connector = tasks.connector

    # -- users' side --------------------------------------------------------------

    async def create(
        self,
        name: str,
        type: str,
        recurrence: str,
        params: Mapping[str, Any] | None = None,
        *,
        timezone: str = "UTC",
        enabled: bool = True,
        overlap: Overlap | str = Overlap.SKIP,
        failure_threshold: int | None = None,
        schedule_threshold: float | None = None,
        options: Mapping[str, Any] | None = None,
        tenant: str = "default",
        user: str = "anonymous",
        user_id: int | None = None,
    ) -> Schedule:
        """Validate and store a new schedule; raises `Conflict` if ``name`` is taken."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidParameters(
                "a schedule name is 1 to 128 letters, digits and . _ : @ -, starting"
                " with a letter or digit",
                errors=[{"field": "name", "message": "not a valid schedule name"}],
            )
        now = self.tasks.clock()
        clean = self._check_run(type, params or {}, options or {}, tenant, user)
        draft = Schedule(
            id=new_task_id(),
            name=name,
            tenant=tenant,
            user=user,
            user_id=user_id,
            type=type,
            params=clean,
            options=dict(options or {}),
            recurrence=recurrence,
            timezone=timezone,
            enabled=enabled,
            overlap=_overlap(overlap),
            failure_threshold=_threshold(failure_threshold),
            schedule_threshold=_seconds(schedule_threshold),
            created_at=_at(now),
        )
        draft = self._timed(draft, now)
        row = await self.connector.execute(
            "insert_schedule",
            {
                "id": draft.id,
                "name": draft.name,
                "tenant": draft.tenant,
                "user_name": draft.user,
                "user_id": draft.user_id,
                "type": draft.type,
                "params": dumps(draft.params),
                "options": dumps(draft.options) if draft.options else None,
                "recurrence": draft.recurrence,
                "timezone": draft.timezone,
                "enabled": draft.enabled,
                "overlap": draft.overlap.value,
                "failure_threshold": draft.failure_threshold,
                "schedule_threshold": draft.schedule_threshold,
                "remaining_runs": draft.remaining_runs,
                "first_run": _epoch(draft.first_run),
                "next_run": _epoch(draft.next_run),
                "disabled_reason": None,
                "now": now,
            },
            notify=CHANNEL_SCHEDULES,
        )
        if not row:
            raise Conflict(f"tenant {tenant!r} already has a schedule named {name!r}")
        return schedule_from_row(row[0])

    async def get(
        self, key: str, *, tenant: str | None = None, names_in: str | None = None
    ) -> Schedule:
        """The schedule whose id is ``key``, or whose name it is in tenant ``names_in``
        (default: ``tenant``); only ``tenant``'s when that is given."""
        row = await self.connector.fetch_one("get_schedule", {"id": key})
        home = tenant if names_in is None else names_in
        if row is None and home is not None:
            row = await self.connector.fetch_one(
                "get_schedule_by_name", {"tenant": home, "name": key}
            )
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise ScheduleNotFound(f"no schedule {key!r}")
        return schedule_from_row(row)

    async def list(
        self,
        *,
        tenant: str | None = None,
        enabled: bool | None = None,
        types: Sequence[str] = (),
        after: Schedule | None = None,
        limit: int = 100,
    ) -> list[Schedule]:
        """A page of schedules by name; ``after`` is the last one of the previous page."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        params: dict[str, Any] = {"limit": limit}
        fragments: list[str] = []
        if tenant is not None:
            fragments.append("tenant")
            params["tenant"] = tenant
        if enabled is not None:
            fragments.append("enabled")
            params["enabled"] = int(enabled)
        if types:
            fragments.append("types")
            params["types"] = dumps(list(types))
        if after is not None:
            fragments.append("after")
            params["after_name"] = after.name
            params["after_id"] = after.id
        rows = await self.connector.fetch_all("list_schedules", params, tuple(fragments))
        return [schedule_from_row(row) for row in rows]

    async def update(
        self, schedule_id: str, changes: Mapping[str, Any], *, tenant: str | None = None
    ) -> Schedule:
        """Change what a user may change: params, recurrence, timezone, enabled, overlap,
        failure_threshold, schedule_threshold, options. A new recurrence or time zone, or
        enabling, computes the next run from now; enabling also forgets past failures."""
        allowed = {
            "params", "recurrence", "timezone", "enabled", "overlap", "failure_threshold",
            "schedule_threshold", "options",
        }  # fmt: skip
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise InvalidParameters(
                f"a schedule cannot change {', '.join(unknown)}",
                errors=[{"field": name, "message": "cannot be changed"} for name in unknown],
            )
        for _ in range(RETRIES):
            old = await self.get(schedule_id, tenant=tenant)
            new = replace(
                old,
                params=changes.get("params", old.params),
                options=dict(changes.get("options", old.options) or {}),
                recurrence=changes.get("recurrence", old.recurrence),
                timezone=changes.get("timezone", old.timezone),
                enabled=bool(changes.get("enabled", old.enabled)),
                overlap=_overlap(changes.get("overlap", old.overlap)),
                failure_threshold=_threshold(
                    changes.get("failure_threshold", old.failure_threshold)
                ),
                schedule_threshold=_seconds(
                    changes.get("schedule_threshold", old.schedule_threshold)
                ),
            )
            if "params" in changes or "options" in changes:
                params = self._check_run(new.type, new.params, new.options, new.tenant, new.user)
                new = replace(new, params=params)
            now = self.tasks.clock()
            retimed = new.recurrence != old.recurrence or new.timezone != old.timezone
            if retimed:
                new = self._timed(new, now)
            if new.enabled and not old.enabled:
                new = replace(new, consecutive_failures=0, disabled_reason=None, pending_run=None)
                if not retimed:
                    new = self._timed(new, now, keep_first=True)
            if not new.enabled and old.enabled:
                new = replace(new, pending_run=None, disabled_reason="paused")
            row = await self._write_update(new, now)
            if row is not None:
                return row
        raise Conflict("the schedule kept changing; try again")

    async def pause(self, schedule_id: str, *, tenant: str | None = None) -> Schedule:
        return await self.update(schedule_id, {"enabled": False}, tenant=tenant)

    async def resume(self, schedule_id: str, *, tenant: str | None = None) -> Schedule:
        return await self.update(schedule_id, {"enabled": True}, tenant=tenant)

    async def delete(self, schedule_id: str, *, tenant: str | None = None) -> None:
        """Delete the schedule; its past and running tasks stay (with their schedule_id)."""
        schedule = await self.get(schedule_id, tenant=tenant)
        await self.connector.execute("delete_schedule", {"id": schedule.id})

    async def run_now(self, schedule_id: str, *, tenant: str | None = None) -> Task:
        """Submit a run now, outside the recurrence (its next run stays). `Conflict` if
        the last run has not ended: a schedule never has two runs at once."""
        for _ in range(RETRIES):
            schedule = await self.get(schedule_id, tenant=tenant)
            if schedule.last_task_open:
                state = await self._last_state(schedule)
                if state not in ENDED_STATES:
                    raise Conflict(
                        f"the schedule's last run (task {schedule.last_task_id}) has not ended yet",
                        task_id=schedule.last_task_id,
                    )
                counted = await self._count(schedule, state, self.tasks.clock())
                if counted is None:
                    continue
                schedule = counted
            now = self.tasks.clock()
            task = await self._fire(schedule, now, now, advance=False)
            if task is not None:
                return task
        raise Conflict("the schedule kept changing; try again")

    # -- the scheduler's side ------------------------------------------------------

    async def next_run(self) -> float | None:
        """When the next enabled schedule falls due (epoch seconds; None: none will)."""
        row = await self.connector.fetch_one("next_schedule_run", {})
        return None if row is None else row["next_run"]

    async def run_due(self, now: float | None = None) -> SchedulerPass:
        """Count the outcomes of ended runs, then submit every due run (see the module
        docstring). Idempotent: a second scheduler at the same time does no harm."""
        now = self.tasks.clock() if now is None else now
        result = SchedulerPass()
        for _ in range(PASSES):
            rows = await self.connector.fetch_all("ended_schedule_runs", {"limit": BATCH})
            outcomes = await asyncio.gather(
                *(self._after_run(schedule_from_row(r), r["last_task_state"], now) for r in rows)
            )
            for schedule, fired in outcomes:
                result.counted += 1
                result.disabled += not schedule.enabled
                if fired is not None:
                    result.fired.append(fired)
            if len(rows) < BATCH:
                break
        for _ in range(PASSES):
            rows = await self.connector.fetch_all("due_schedules", {"now": now, "limit": BATCH})
            outcomes2 = await asyncio.gather(*(self._due(schedule_from_row(r), now) for r in rows))
            for outcome in outcomes2:
                if isinstance(outcome, Task):
                    result.fired.append(outcome)
                elif outcome == "skipped":
                    result.skipped += 1
                elif outcome == "held":
                    result.held += 1
            if len(rows) < BATCH:
                break
        return result

    async def _after_run(
        self, schedule: Schedule, state: str | None, now: float
    ) -> tuple[Schedule, Task | None]:
        """Count an ended run; then submit the run it held back, if any."""
        counted = await self._count(schedule, state, now)
        if counted is None or not counted.enabled or counted.pending_run is None:
            return counted or schedule, None
        nominal = counted.pending_run.timestamp()
        return counted, await self._fire_or_disable(counted, nominal, now, advance=False)

    async def _due(self, schedule: Schedule, now: float) -> Task | str | None:
        assert schedule.next_run is not None
        nominal = schedule.next_run.timestamp()
        if schedule.last_task_open:
            state = await self._last_state(schedule)
            if state in ENDED_STATES or state is None:
                counted = await self._count(schedule, state, now)
                if counted is None or not counted.enabled:
                    return None
                schedule = counted
            else:
                return await self._hold(schedule, nominal, now)
        return await self._fire_or_disable(schedule, nominal, now, advance=True)

    async def _fire_or_disable(
        self, schedule: Schedule, nominal: float, now: float, *, advance: bool
    ) -> Task | None:
        """`_fire`; a run that cannot be submitted any more disables the schedule."""
        try:
            return await self._fire(schedule, nominal, now, advance=advance)
        except (InvalidRequest, NotFound) as exc:  # the operation is gone, or changed
            await self._disable(schedule, f"cannot submit a run: {exc.message}", now)
            log.error("schedule %s (%s) disabled: %s", schedule.id, schedule.name, exc.message)
            return None

    async def _hold(self, schedule: Schedule, nominal: float, now: float) -> str | None:
        """The last run still goes: skip this one, or keep it for when that one ends."""
        recurrence = recurrence_of(schedule)
        next_run = recurrence.next_after(_at(now))
        pending = None
        if schedule.overlap is Overlap.QUEUE:
            pending = schedule.pending_run.timestamp() if schedule.pending_run else nominal
        rows = await self.connector.execute(
            "hold_schedule_run",
            {
                "id": schedule.id,
                "version": schedule.version,
                "remaining_runs": _remaining(recurrence, next_run),
                "next_run": _epoch(next_run),
                "pending_run": pending,
                "now": now,
            },
        )
        if not rows:
            return None
        if pending is None:
            log.info(
                "schedule %s (%s): run due at %s skipped, its last run %s still goes",
                schedule.id,
                schedule.name,
                _time(nominal),
                schedule.last_task_id,
            )
            return "skipped"
        return "held"

    async def _fire(
        self, schedule: Schedule, nominal: float, now: float, *, advance: bool
    ) -> Task | None:
        """Submit the run due at ``nominal``; None if the schedule changed meanwhile."""
        recurrence = recurrence_of(schedule)
        if advance:
            next_run = recurrence.next_after(_at(max(now, nominal)))
            remaining = _remaining(recurrence, next_run)
        else:
            next_run, remaining = schedule.next_run, schedule.remaining_runs
        options = {k: v for k, v in schedule.options.items() if k in RUN_OPTIONS}
        row = self.tasks.prepare(
            schedule.type,
            schedule.params,
            Submission(
                tenant=schedule.tenant,
                user=schedule.user,
                user_id=schedule.user_id,
                schedule_id=schedule.id,
                scheduled_at=_at(nominal),
                **options,
            ),
        )
        late = now - nominal
        threshold = schedule.schedule_threshold
        warn = threshold is not None and late > threshold
        row["log_count"] = row["warnings"] = int(warn)
        steps = [
            Step(
                "fire_schedule",
                {
                    "id": schedule.id,
                    "version": schedule.version,
                    "task_id": row["id"],
                    "remaining_runs": remaining,
                    "next_run": _epoch(next_run),
                    "now": now,
                },
            ),
            Step("insert_scheduled_task", row),
        ]
        if warn:
            steps.append(
                Step(
                    "append_scheduled_log_line",
                    {
                        "task_id": row["id"],
                        "n": 1,
                        "ts": now,
                        "level": "warning",
                        "text": f"this run of schedule {schedule.name} was due at"
                        f" {_at(nominal):%Y-%m-%dT%H:%M:%SZ} and starts {late:.1f} s late"
                        f" (schedule_threshold {threshold:g} s)",
                    },
                )
            )
        results = await self.connector.execute_batch(steps, notify=CHANNEL_DUE)
        if not results[1]:
            return None
        task = task_from_row(results[1][0])
        self.tasks.metrics.task_submitted(task.type)
        return task

    async def _count(self, schedule: Schedule, state: str | None, now: float) -> Schedule | None:
        """Count the last run's outcome (``state``; None: the task is gone)."""
        failures = schedule.consecutive_failures
        if state == "succeeded":
            failures = 0
        elif state in FAILED_STATES:
            failures += 1
        enabled, reason = schedule.enabled, schedule.disabled_reason
        threshold = schedule.failure_threshold
        if enabled and threshold is not None and failures >= threshold:
            enabled = False
            reason = f"{failures} runs failed in a row (failure_threshold {threshold})"
            log.warning("schedule %s (%s) disabled: %s", schedule.id, schedule.name, reason)
        rows = await self.connector.execute(
            "count_schedule_run",
            {
                "id": schedule.id,
                "version": schedule.version,
                "consecutive_failures": failures,
                "enabled": enabled,
                "disabled_reason": reason,
                "now": now,
            },
        )
        return schedule_from_row(rows[0]) if rows else None

    async def _disable(self, schedule: Schedule, reason: str, now: float) -> None:
        await self._write_update(replace(schedule, enabled=False, disabled_reason=reason), now)

    async def _last_state(self, schedule: Schedule) -> str | None:
        if schedule.last_task_id is None:
            return None
        row = await self.connector.fetch_one("get_task", {"id": schedule.last_task_id})
        return None if row is None else str(row["state"])

    # -- helpers ------------------------------------------------------------------

    def _check_run(
        self,
        type: str,
        params: Mapping[str, Any],
        options: Mapping[str, Any],
        tenant: str,
        user: str,
    ) -> dict[str, Any]:
        """Validate a run as it will be submitted; return its clean parameters."""
        unknown = sorted(set(options) - set(RUN_OPTIONS))
        if unknown:
            raise InvalidParameters(
                f"unknown run options {', '.join(unknown)}; use {', '.join(RUN_OPTIONS)}",
                errors=[{"field": f"options.{k}", "message": "unknown option"} for k in unknown],
            )
        try:
            row = self.tasks.prepare(type, params, Submission(tenant=tenant, user=user, **options))
        except TypeError as exc:
            raise InvalidParameters(
                f"bad run options: {exc}", errors=[{"field": "options", "message": str(exc)}]
            ) from None
        clean: dict[str, Any] = orjson.loads(row["params"])
        return clean

    def _timed(self, schedule: Schedule, now: float, *, keep_first: bool = False) -> Schedule:
        """``schedule`` with first_run, next_run and remaining_runs computed from now."""
        try:
            recurrence = recurrence_of(schedule, None if keep_first else now)
        except RecurrenceError as exc:
            raise InvalidParameters(
                str(exc), errors=[{"field": "recurrence", "message": str(exc)}]
            ) from None
        moment = _at(now)
        first = recurrence.first_run()
        if first is None or first < moment:
            first = recurrence.next_after(moment)
        if first is None:
            message = "every run of this recurrence is in the past"
            raise InvalidParameters(message, errors=[{"field": "recurrence", "message": message}])
        return replace(
            schedule,
            recurrence=recurrence.text,
            timezone=recurrence.timezone,
            first_run=schedule.first_run if keep_first else first,
            next_run=first,
            remaining_runs=_remaining(recurrence, first),
        )

    async def _write_update(self, new: Schedule, now: float) -> Schedule | None:
        rows = await self.connector.execute(
            "update_schedule",
            {
                "id": new.id,
                "version": new.version,
                "params": dumps(new.params),
                "options": dumps(new.options) if new.options else None,
                "recurrence": new.recurrence,
                "timezone": new.timezone,
                "enabled": new.enabled,
                "overlap": new.overlap.value,
                "failure_threshold": new.failure_threshold,
                "schedule_threshold": new.schedule_threshold,
                "consecutive_failures": new.consecutive_failures,
                "remaining_runs": new.remaining_runs,
                "first_run": _epoch(new.first_run),
                "next_run": _epoch(new.next_run),
                "pending_run": _epoch(new.pending_run),
                "disabled_reason": None if new.enabled else new.disabled_reason,
                "now": now,
            },
            notify=CHANNEL_SCHEDULES,
        )
        return schedule_from_row(rows[0]) if rows else None


def _overlap(value: Any) -> Overlap:
    try:
        return Overlap(value)
    except ValueError:
        raise InvalidParameters(
            "overlap is skip or queue",
            errors=[{"field": "overlap", "message": "must be skip or queue"}],
        ) from None


def _threshold(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameters(
            "failure_threshold is a whole number of at least 1 (or null: never disable)",
            errors=[{"field": "failure_threshold", "message": "must be an integer >= 1"}],
        )
    return value


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidParameters(
            "schedule_threshold is a number of seconds, 0 or more (or null)",
            errors=[{"field": "schedule_threshold", "message": "must be a number >= 0"}],
        )
    return float(value)
