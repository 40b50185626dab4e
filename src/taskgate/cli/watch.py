"""Following a task until it ends, as ``submit --wait`` and ``tasks wait`` show it.

The task is followed with the server's ``?wait`` long poll (through the SDK), so each
change arrives as it happens and nothing polls in a loop. What a person sees depends on
where the output goes:

- a terminal: a live rich progress bar with the task's percent, state, message and the
  time since it was created, redrawn as each long poll returns;
- not a terminal: one plain line each time the state, percent or message changes;
- ``--json``: nothing while waiting (stdout carries only the final task), except the bar
  on stderr when stderr is a terminal.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
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
from taskgate.client import Client, Task


class Display(Protocol):
    """Shows a followed task as it changes."""

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...

    def show(self, task: Task) -> None:
        """The task as it is now (called after each long poll that saw a change)."""


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


class Bar:
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

    def __enter__(self) -> Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

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
            self.progress.stop_task(self.bar)
            self.progress.refresh()


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


class Silent:
    """Shows nothing (``--json`` with no terminal to draw a bar on)."""

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, task: Task) -> None:
        return None


def display_for(*, as_json: bool) -> Display:
    """The display for where the output goes (see the module docstring)."""
    if as_json:
        err = render.console(stderr=True)
        return Bar(err) if err.is_terminal else Silent()
    out = render.console()
    return Bar(out) if out.is_terminal else Lines(out)


def follow(client: Client, task: Task, *, timeout: float | None, display: Display) -> Task:
    """Show ``task`` until it ends; the ended task. Raises `taskgate.client.WaitTimeout`
    when ``timeout`` seconds pass first."""
    with display:
        display.show(task)
        for seen in client.watch(task.id, timeout=timeout):
            task = seen
            display.show(task)
    return task
