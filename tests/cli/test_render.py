"""The renderers and displays on their own: the bar, plain lines, outcomes, durations."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from taskgate.cli import render
from taskgate.cli.watch import Bar, Lines
from taskgate.client import Task


def task(**fields: Any) -> Task:
    doc: dict[str, Any] = {
        "id": "01a2-task",
        "type": "vzdump",
        "state": "running",
        "created_at": (datetime.now(UTC) - timedelta(seconds=3)).isoformat(),
        **fields,
    }
    return Task.from_json(doc)


def recording(*, terminal: bool) -> Console:
    return Console(file=io.StringIO(), record=True, force_terminal=terminal, width=100)


def test_bar_shows_state_percent_elapsed_and_message() -> None:
    console = recording(terminal=True)
    with Bar(console) as bar:
        bar.show(task(progress=42.0, message="13.4 GiB of 32.0 GiB"))
        bar.progress.refresh()
        drawn = console.export_text(clear=False)
        assert "vzdump" in drawn and "running" in drawn
        assert " 42%" in drawn and "13.4 GiB of 32.0 GiB" in drawn
        assert re.search(r" \d+\.\ds ", drawn)  # the time since it was created
        bar.show(task(state="succeeded", progress=100.0, message="done"))
    final = console.export_text()
    assert "succeeded" in final and "100%" in final and "done" in final


def test_lines_print_each_visible_change_once() -> None:
    console = recording(terminal=False)
    lines = Lines(console)
    lines.show(task(state="queued"))
    lines.show(task(progress=10.0, message="a"))
    lines.show(task(progress=10.2, message="a"))  # same percent and message: not shown
    lines.show(task(state="succeeded", progress=100.0, message="a"))
    out = console.export_text().splitlines()
    assert len(out) == 3
    assert re.fullmatch(r"01a2-task queued \(\d+\.\ds\)", out[0])
    assert out[1].startswith("01a2-task running 10% a (")
    assert out[2].startswith("01a2-task succeeded 100% a (")


def test_outcomes() -> None:
    def text(t: Task, traceback: bool = False) -> str:
        console = recording(terminal=False)
        console.print(render.outcome(t, traceback=traceback))
        return console.export_text()

    now = datetime.now(UTC)
    started = now - timedelta(seconds=75)
    ok = text(
        task(
            state="succeeded",
            result={"size": 1},
            started_at=started.isoformat(),
            finished_at=now.isoformat(),
        )
    )
    assert ok.splitlines()[0] == "task 01a2-task succeeded in 1m15s"
    assert '"size": 1' in ok
    error = {"type": "OSError", "message": "disk full", "traceback": "Traceback ...\nOSError"}
    failed = task(state="failed", message="copying", error=error)
    assert "OSError: disk full" in text(failed)
    assert "Traceback" not in text(failed) and "-v shows the traceback" in text(failed)
    assert "Traceback ..." in text(failed, traceback=True)
    assert "canceled" in text(task(state="canceled", message="stopped by bob"))
    assert "stopped by bob" in text(task(state="canceled", message="stopped by bob"))


def test_durations_and_percent() -> None:
    assert render.duration(0.04) == "0.0s"
    assert render.duration(59.94) == "59.9s"
    assert render.duration(61) == "1m01s"
    assert render.duration(3600 * 2 + 5) == "2h00m05s"
    assert render.percent(None) == ""
    assert render.percent(99.6) == "99%"
    assert render.percent(100.0) == "100%"


def test_json_of_a_task_keeps_the_api_names() -> None:
    doc = render.to_json(task(labels={"a": "b"}, progress=5.5)).decode()
    assert '"state":"running"' in doc
    assert '"labels":{"a":"b"}' in doc
    assert '"created_at":"' in doc and 'Z"' in doc
