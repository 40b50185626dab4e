"""How the client commands show tasks, schedules and groups: rich tables and panels for
people, JSON for scripts.

Every renderer takes the SDK's typed records (`taskgate.client`), never the server's.
With ``--json`` a command writes only `json_line` output on stdout: one JSON object per
line, so a stream of tasks or log lines is JSON Lines and a single answer is one object.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

import click
import orjson
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from taskgate.client import ErrorInfo, LogLine, Reservation, Schedule, Task
from taskgate.client import Group as GroupSummary  # rich has a Group of its own

STATE_STYLES = {
    "queued": "cyan",
    "scheduled": "blue",
    "suspended": "dim yellow",
    "running": "yellow",
    "canceling": "magenta",
    "succeeded": "bold green",
    "failed": "bold red",
    "canceled": "magenta",
    "timed_out": "bold red",
}
LEVEL_STYLES = {"warning": "yellow", "error": "bold red", "debug": "dim"}
WIDE = 200
"""Columns of output that is not a terminal: wide enough that ids and messages stay whole."""


class _Console(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        reader_gone()  # as for JSON output (rich's own exits with status 1)


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): colours only on a terminal; wide when piped."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    width = None if terminal or os.environ.get("COLUMNS") else WIDE
    return _Console(file=stream, width=width, highlight=False, soft_wrap=not terminal)


# -- JSON ------------------------------------------------------------------------------


def to_json(value: Any) -> bytes:
    """A record (dataclass), list or dict as JSON; times as RFC 3339 with ``Z``."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def json_line(value: Any, out: TextIO | None = None) -> None:
    """Write one JSON value and a newline on stdout (or ``out``), and flush it.

    When the reader has gone (``taskgate tasks ls --json | head -1``), stop quietly
    (`reader_gone`)."""
    stream = out or sys.stdout
    try:
        stream.write(to_json(value).decode() + "\n")
        stream.flush()
    except BrokenPipeError:
        reader_gone()


def reader_gone() -> NoReturn:
    """Stdout's reader has closed the pipe: exit quietly with status 0."""
    with contextlib.suppress(OSError, ValueError):  # no file descriptor under tests
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail
    raise click.exceptions.Exit(0)


# -- small pieces -----------------------------------------------------------------------


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def percent(progress: float | None) -> str:
    """Whole percent, rounded down: 99.6 is not yet 100%."""
    return "" if progress is None else f"{math.floor(progress)}%"


def when(moment: datetime | None) -> str:
    """A time in the local zone, to the second."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def took(task: Task) -> str | None:
    """How long the task ran (started to finished), as ``1.2s`` or ``3m04s``."""
    if task.started_at is None or task.finished_at is None:
        return None
    return duration((task.finished_at - task.started_at).total_seconds())


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode()


# -- tasks ------------------------------------------------------------------------------


def fields_grid() -> Table:
    """Two columns, a record's field names (bold) and their values."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def task_table(tasks: Iterable[Task]) -> Table:
    """One row per task: id, type, state (coloured), progress, message, created, object."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("PROGRESS", justify="right", no_wrap=True)
    table.add_column("MESSAGE", overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("OBJECT", overflow="ellipsis", no_wrap=True)
    for task in tasks:
        table.add_row(
            task.id,
            task.type,
            state_text(task.state),
            percent(task.progress),
            task.message or "",
            when(task.created_at),
            task.object_id or "",
        )
    return table


def _value(value: Any) -> RenderableType:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, datetime):
        return Text(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    if isinstance(value, dict | list):
        return Text(pretty_json(value)) if value else Text(pretty_json(value), style="dim")
    return Text(str(value))


DETAIL_FIELDS = (
    "id",
    "upid",
    "type",
    "object_id",
    "tenant",
    "user",
    "user_id",
    "node",
    "worker",
    "detailed_state",
    "message",
    "params",
    "result",
    "warnings",
    "created_resources",
    "attempt",
    "max_attempts",
    "timeout",
    "cancel_requested_at",
    "cancel_attempts",
    "priority",
    "idempotency_key",
    "request_id",
    "group_id",
    "parent_id",
    "children",
    "schedule_id",
    "labels",
    "reserved_resources",
    "acknowledged_at",
    "acknowledged_by",
    "created_at",
    "scheduled_at",
    "started_at",
    "updated_at",
    "finished_at",
    "log_count",
)


def ids_text(ids: Iterable[str]) -> Text:
    """Task ids, one a line; ``-`` when there are none."""
    listed = list(ids)
    return Text("\n".join(listed)) if listed else Text("-", style="dim")


def reservation_text(reservation: Reservation | None) -> Text:
    """What a task reserves, a line for each kind: ``exclusive repository:1, ...``."""
    if reservation is None:
        return Text("-", style="dim")
    lines = []
    if reservation.exclusive:
        lines.append(f"exclusive {', '.join(reservation.exclusive)}")
    if reservation.shared:
        lines.append(f"shared {', '.join(reservation.shared)}")
    lines.extend(f"limit {limit.key} (at most {limit.max})" for limit in reservation.limits)
    return Text("\n".join(lines))


DETAIL_RENDERERS: dict[str, Callable[[Any], RenderableType]] = {
    "children": ids_text,
    "reserved_resources": reservation_text,
}


def task_details(task: Task) -> RenderableType:
    """Every field of the task (``archived`` only once it is in history), then its error
    with the traceback."""
    grid = fields_grid()
    grid.add_row("state", state_text(task.state))
    if task.archived:
        grid.add_row("archived", Text("yes (moved to history)", style="dim"))
    grid.add_row("progress", Text(percent(task.progress) or "-"))
    if task.progress_detail:
        grid.add_row("progress_detail", _value(task.progress_detail))
    for name in DETAIL_FIELDS:
        renderer = DETAIL_RENDERERS.get(name, _value)
        grid.add_row(name, renderer(getattr(task, name, None)))
    if task.error is None:
        return grid
    return Group(grid, Text(""), error_block(task.error, traceback=True))


def error_block(error: ErrorInfo, *, traceback: bool) -> RenderableType:
    """``Type: message``, then the remote traceback if asked for and known."""
    head = Text.assemble((error.type, "bold red"), ": ", error.message)
    if not traceback or not error.traceback:
        return head
    from rich.syntax import Syntax  # pygments: imported only when a traceback is shown

    code = Syntax(error.traceback.rstrip("\n"), "pytb", theme="ansi_dark", word_wrap=True)
    return Group(head, code)


def outcome(task: Task, *, traceback: bool) -> RenderableType:
    """How a task ended, as a person reads it: the result, or why it did not succeed."""
    ran = took(task)
    head = Text.assemble(
        ("task ", ""),
        (task.id, "bold"),
        (" ", ""),
        state_text(task.state),
        (f" in {ran}" if ran else "", ""),
    )
    if task.state == "succeeded":
        if task.result is None:
            return head
        return Group(head, Text(pretty_json(task.result)))
    parts: list[RenderableType] = [head]
    if task.message and task.error is None:
        parts.append(Text(task.message))
    if task.error is not None:
        parts.append(error_block(task.error, traceback=traceback))
        if not traceback and task.error.traceback:
            parts.append(Text("(-v shows the traceback)", style="dim"))
    return Group(*parts)


def plain_status(task: Task, elapsed: float) -> str:
    """One line of a task's progress for output that is not a terminal."""
    bits = [task.id, task.state]
    if task.progress is not None:
        bits.append(percent(task.progress))
    if task.message:
        bits.append(task.message)
    bits.append(f"({duration(elapsed)})")
    return " ".join(bits)


def log_text(line: LogLine, *, timestamps: bool) -> Text:
    """A log line, coloured by level; with its time if asked."""
    text = Text(line.t, style=LEVEL_STYLES.get(line.level, ""))
    if timestamps and line.ts is not None:
        return Text.assemble((when(line.ts), "dim"), " ", text)
    return text


# -- schedules --------------------------------------------------------------------------


def recurrence_text(schedule: Schedule) -> Text:
    """``0 3 * * * (Europe/Paris)``: the recurrence and the zone a cron expression runs in."""
    return Text.assemble(schedule.recurrence, (f" ({schedule.timezone})", "dim"))


def enabled_text(schedule: Schedule) -> Text:
    return Text("yes", style="green") if schedule.enabled else Text("no", style="yellow")


def failures_text(schedule: Schedule) -> Text:
    """Failed runs in a row, out of the threshold that disables the schedule (if any)."""
    count = str(schedule.consecutive_failures)
    if schedule.failure_threshold is not None:
        count += f"/{schedule.failure_threshold}"
    return Text(count, style="red" if schedule.consecutive_failures else "")


def schedule_table(schedules: Iterable[Schedule]) -> Table:
    """One row per schedule: name, operation, recurrence (and zone), enabled, next and
    last run, runs so far, failures in a row."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("NAME", no_wrap=True)
    table.add_column("OPERATION", no_wrap=True)
    table.add_column("RECURRENCE", overflow="ellipsis", no_wrap=True)
    table.add_column("ENABLED", no_wrap=True)
    table.add_column("NEXT RUN", no_wrap=True)
    table.add_column("LAST RUN", no_wrap=True)
    table.add_column("RUNS", justify="right", no_wrap=True)
    table.add_column("FAILURES", justify="right", no_wrap=True)
    for schedule in schedules:
        table.add_row(
            schedule.name,
            schedule.type,
            recurrence_text(schedule),
            enabled_text(schedule),
            when(schedule.next_run) or "-",
            when(schedule.last_run_at) or "-",
            str(schedule.total_run_count),
            failures_text(schedule),
        )
    return table


SCHEDULE_FIELDS = (
    "id",
    "name",
    "type",
    "params",
    "options",
    "recurrence",
    "timezone",
    "overlap",
    "failure_threshold",
    "schedule_threshold",
    "consecutive_failures",
    "total_run_count",
    "remaining_runs",
    "first_run",
    "next_run",
    "last_run_at",
    "last_task_id",
    "pending_run",
    "disabled_reason",
    "tenant",
    "user",
    "created_at",
    "updated_at",
    "version",
)


def schedule_details(schedule: Schedule) -> RenderableType:
    """Every field of the schedule."""
    grid = fields_grid()
    grid.add_row("enabled", enabled_text(schedule))
    for name in SCHEDULE_FIELDS:
        grid.add_row(name, _value(getattr(schedule, name, None)))
    return grid


def schedule_line(schedule: Schedule, done: str) -> Text:
    """``schedule nightly created; next run 2026-01-02 03:00:00``."""
    line = Text.assemble("schedule ", (schedule.name, "bold"), f" {done}")
    if schedule.enabled:
        line.append(
            f"; next run {when(schedule.next_run)}" if schedule.next_run else "; no run left"
        )
    elif schedule.disabled_reason and schedule.disabled_reason != "paused":
        line.append(f"; disabled: {schedule.disabled_reason}", style="yellow")
    return line


# -- groups -----------------------------------------------------------------------------


def counts_text(group: GroupSummary) -> Text:
    """``2 running, 1 succeeded``: the states some task of the group is in, coloured."""
    parts = [(n, state) for state, n in group.states.items() if n]
    if not parts:
        return Text("no tasks", style="dim")
    text = Text()
    for i, (n, state) in enumerate(parts):
        text.append(f"{', ' if i else ''}{n} ")
        text.append_text(state_text(state))
    return text


def group_details(group: GroupSummary) -> RenderableType:
    """The group's id, total and whether it has ended, then a row per state some of its
    tasks are in."""
    grid = fields_grid()
    grid.add_row("id", Text(group.id))
    grid.add_row("total", Text(str(group.total)))
    ended = "yes" if group.ended else f"no ({group.finished} of {group.total} ended)"
    grid.add_row("ended", Text(ended, style="green" if group.ended else "yellow"))
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("STATE", no_wrap=True)
    table.add_column("TASKS", justify="right", no_wrap=True)
    for state, n in group.states.items():
        if n:
            table.add_row(state_text(state), str(n))
    hint = Text(f"its tasks: taskgate tasks ls --group {group.id} --archived any", style="dim")
    return Group(grid, Text(""), table, Text(""), hint)


def group_line(group: GroupSummary, done: str) -> Text:
    """``group 01a2... suspended: 2 suspended, 1 running``."""
    return Text.assemble("group ", (group.id, "bold"), f" {done}: ", counts_text(group))


def group_status(group: GroupSummary, elapsed: float) -> str:
    """One line of a group's progress for output that is not a terminal."""
    return (
        f"{group.id} {group.finished}/{group.total} ended: {counts_text(group).plain}"
        f" ({duration(elapsed)})"
    )
