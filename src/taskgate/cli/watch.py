"""Following a task until it ends, as ``submit --wait`` and ``tasks wait`` show it, and a
group until every task of it has ended (``groups wait``).

The task is followed with the server's ``?wait`` long poll (through the SDK), so each
change arrives as it happens and nothing polls in a loop; a group's summary is read at
growing intervals (`taskgate.client.Client.watch_group`). What a person sees depends on
where the output goes:

- a terminal: a live rich progress bar with the task's percent, state, message and the
  time since it was created, redrawn as each long poll returns (for a group: its tasks
  ended out of its total, and how many are in each state);
- not a terminal: one plain line each time the state, percent or message changes (each
  time the group's counts change);
- ``--json``: nothing while waiting (stdout carries only the final task or group),
  except the bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.progress import Task as BarTask
from rich.text import Text

from taskgate.cli import render
from taskgate.client import Client, Group, GroupRef, Task


class Display(Protocol):
    """Shows a followed task as it changes."""

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...

    def show(self, task: Task) -> None:
        """The task as it is now (called after each long poll that saw a change)."""


class GroupDisplay(Protocol):
    """Shows a followed group as its counts change."""

    def __enter__(self) -> GroupDisplay: ...

    def __exit__(self, *exc: object) -> None: ...

    def show(self, group: Group) -> None:
        """The group's summary as it is now (called each time it changed)."""


def started_ago(task: Task) -> float:
    """Seconds since the task was created, by this machine's clock (never negative)."""
    if task.created_at is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - task.created_at).total_seconds())


class ElapsedColumn(ProgressColumn):
    """Time since the task was created, ticking between polls; frozen once it ends."""

    def render(self, task: BarTask) -> Text:
        origin = task.fields.get("origin")
        ended = task.fields.get("ended")
        if origin is None:
            return Text("")
        now = ended if ended is not None else time.monotonic()
        return Text(render.duration(now - origin), style="progress.elapsed")


class StateColumn(ProgressColumn):
    def render(self, task: BarTask) -> Text:
        return render.state_text(str(task.fields.get("state", "")))


class _Live:
    """A live rich progress display, drawn while in its ``with`` block."""

    progress: Progress

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _ended(self, bar: TaskID) -> None:
        """Freeze ``bar`` (its spinner and time) and draw it as it ended."""
        self.progress.stop_task(bar)
        self.progress.refresh()


class Bar(_Live):
    """A live rich progress bar for one task."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.description}"),
            StateColumn(),
            BarColumn(),
            TaskProgressColumn(),
            ElapsedColumn(),
            TextColumn("{task.fields[message]}"),
            console=console,
            refresh_per_second=8,
        )
        self.bar: TaskID | None = None
        self.origin: float | None = None

    def show(self, task: Task) -> None:
        if self.origin is None:
            self.origin = time.monotonic() - started_ago(task)
        fields: dict[str, Any] = {
            "state": task.state,
            "message": task.message or "",
            "origin": self.origin,
            "ended": time.monotonic() if task.terminal else None,
        }
        completed = task.progress or 0.0
        if self.bar is None:
            self.bar = self.progress.add_task(task.type, total=100, **fields)
            self.progress.update(self.bar, completed=completed)
        else:
            self.progress.update(self.bar, completed=completed, **fields)
        if task.terminal:
            self._ended(self.bar)


class Lines:
    """One plain line per visible change, for output that is not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last: tuple[object, ...] | None = None
        self.origin: float | None = None

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, task: Task) -> None:
        if self.origin is None:
            self.origin = time.monotonic() - started_ago(task)
        seen = (task.state, round(task.progress or 0.0), task.message)
        if seen == self.last:
            return
        self.last = seen
        line = render.plain_status(task, time.monotonic() - self.origin)
        self.console.print(line, markup=False, highlight=False)


class GroupBar(_Live):
    """A live rich progress bar for a group: its tasks ended out of its total, and how
    many are in each state."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            ElapsedColumn(),
            TextColumn("{task.fields[counts]}", markup=False),
            console=console,
            refresh_per_second=8,
        )
        self.bar: TaskID | None = None
        self.origin = time.monotonic()

    def show(self, group: Group) -> None:
        fields: dict[str, Any] = {
            "counts": render.counts_text(group).plain,
            "origin": self.origin,
            "ended": time.monotonic() if group.ended else None,
        }
        if self.bar is None:
            self.bar = self.progress.add_task(f"group {group.id}", total=group.total, **fields)
        self.progress.update(self.bar, total=group.total, completed=group.finished, **fields)
        if group.ended:
            self._ended(self.bar)


class GroupLines:
    """One plain line per change of a group's counts, for output that is not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.origin = time.monotonic()

    def __enter__(self) -> GroupLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, group: Group) -> None:
        line = render.group_status(group, time.monotonic() - self.origin)
        self.console.print(line, markup=False, highlight=False)


class Silent:
    """Shows nothing (``--json`` with no terminal to draw a bar on)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, item: Task | Group) -> None:
        return None


def _target(*, as_json: bool) -> tuple[Console, bool] | None:
    """Where a display draws, and whether as a live bar (see the module docstring); None:
    nowhere."""
    if as_json:
        err = render.console(stderr=True)
        return (err, True) if err.is_terminal else None
    out = render.console()
    return out, out.is_terminal


def display_for(*, as_json: bool) -> Display:
    """The display of a followed task, for where the output goes."""
    target = _target(as_json=as_json)
    if target is None:
        return Silent()
    console, live = target
    return Bar(console) if live else Lines(console)


def group_display_for(*, as_json: bool) -> GroupDisplay:
    """The display of a followed group, for where the output goes."""
    target = _target(as_json=as_json)
    if target is None:
        return Silent()
    console, live = target
    return GroupBar(console) if live else GroupLines(console)


def follow(client: Client, task: Task, *, timeout: float | None, display: Display) -> Task:
    """Show ``task`` until it ends; the ended task. Raises `taskgate.client.WaitTimeout`
    when ``timeout`` seconds pass first."""
    with display:
        display.show(task)
        for seen in client.watch(task.id, timeout=timeout):
            task = seen
            display.show(task)
    return task


def follow_group(
    client: Client, group: GroupRef, *, timeout: float | None, display: GroupDisplay
) -> Group:
    """Show the group until every task of it has ended; its summary then. Raises
    `taskgate.client.GroupWaitTimeout` when ``timeout`` seconds pass first."""
    last: Group | None = None
    with display:
        for last in client.watch_group(group, timeout=timeout):
            display.show(last)
    assert last is not None
    return last
