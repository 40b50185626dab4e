"""The ``taskgate`` command against a real ``taskgate serve``, run as a person runs it:
a subprocess with TASKGATE_URL and TASKGATE_API_KEY set, its output piped (plain lines)
or on a pseudo-terminal (the live progress bar)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acceptance.server import Server

from .terminal import (
    BAR,
    Terminal,
    client_env,
    command,
    frames,
    run,
    run_many,
    screen,
    visible,
)

pytestmark = pytest.mark.acceptance

Taskgate = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def env(server: Server, home: Path) -> dict[str, str]:
    assert server.key is not None, server.log_text()
    return client_env(server.url, server.key, home)


@pytest.fixture
def taskgate(env: dict[str, str]) -> Taskgate:
    def invoke(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return run(list(args), {**env, **overrides})

    return invoke


def task_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    value = json.loads(result.stdout)
    assert isinstance(value, dict), result.stdout
    return value


def new_label() -> str:
    return f"run={uuid.uuid4().hex}"


def test_exit_statuses_of_waited_tasks(taskgate: Taskgate, env: dict[str, str]) -> None:
    task_id = taskgate("submit", "sleep", "seconds=60").stdout.strip()
    done, failed, timed_out, waited = run_many(
        [
            ["submit", "echo", "name=vm-100", "steps=2", "--wait"],
            ["submit", "flaky", "failures=5", "--wait", "-v"],
            ["submit", "sleep", "seconds=60", "--task-timeout", "0.5", "--wait"],
            ["tasks", "wait", task_id, "--timeout", "0.5", "--json"],
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    assert '"echo": "vm-100"' in done.stdout
    assert " succeeded 100% step 2 " in done.stdout  # a plain line: not a terminal

    assert failed.returncode == 1, failed.stderr
    assert "ConnectionError: attempt 3 failed" in failed.stdout
    assert "Traceback" in failed.stdout

    assert timed_out.returncode == 4, timed_out.stdout + timed_out.stderr
    assert "timed_out" in timed_out.stdout

    assert waited.returncode == 5
    assert task_of(waited)["state"] in ("queued", "running")
    assert "still" in waited.stderr
    canceled = taskgate("tasks", "cancel", task_id, "--json")
    assert canceled.returncode == 0, canceled.stderr
    assert task_of(canceled)["state"] in ("canceling", "canceled")
    ended = taskgate("tasks", "wait", task_id, "--json")
    assert ended.returncode == 3
    assert task_of(ended)["state"] == "canceled"


def test_ls_show_logs_ack_with_json(taskgate: Taskgate, env: dict[str, str]) -> None:
    label = new_label()
    submitted = taskgate("submit", "echo", "name=vm-7", "steps=3", "--label", label, "--json")
    assert submitted.returncode == 0, submitted.stderr
    task_id = task_of(submitted)["id"]
    followed, log, table, listed, shown, as_data = run_many(
        [
            ["tasks", "logs", "-f", task_id],
            ["tasks", "logs", "-f", task_id, "--json"],
            ["tasks", "ls", "--label", label, "--state", "succeeded,failed"],
            ["tasks", "ls", "--label", label, "--json"],
            ["tasks", "show", task_id],
            ["tasks", "wait", task_id, "--json"],
        ],
        env,
    )
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [
        "step 1 of 3",
        "step 2 of 3",
        "step 3 of 3",
        "WARN: this is only a test",
    ]
    assert [json.loads(line)["n"] for line in log.stdout.splitlines()] == [1, 2, 3, 4]

    # the task may still be running when ls and show ask: only its id is certain
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "STATE", "PROGRESS", "MESSAGE", "CREATED", "OBJECT"]
    assert [row.split()[:3] for row in rows] in ([], [[task_id, "echo", "succeeded"]])
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [task_id]
    assert re.search(rf"^id\s+{task_id}\s*$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^user\s+admin\s*$", shown.stdout, re.M)
    assert task_of(as_data)["result"] == {"echo": "vm-7", "steps": 3}

    acked = taskgate("tasks", "ack", task_id, "--json")
    assert acked.returncode == 0, acked.stderr
    assert task_of(acked)["acknowledged_by"] == "admin"
    unacked, acknowledged = run_many(
        [
            ["tasks", "ls", "--label", label, "--unacknowledged", "--json"],
            ["tasks", "ls", "--label", label, "--acknowledged"],
        ],
        env,
    )
    assert unacked.returncode == 0 and unacked.stdout == ""
    assert acknowledged.stdout.splitlines()[1].split()[:3] == [task_id, "echo", "succeeded"]


def test_keys_and_unreachable_servers(server: Server, env: dict[str, str]) -> None:
    reader = subprocess.run(
        command(
            "keys",
            "create",
            "--db",
            f"sqlite:///{server.database}",
            "--user",
            "reader",
            "--role",
            "read",
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wrong_key = {"TASKGATE_API_KEY": "tgk_0123456789ab_" + "x" * 43}
    as_reader = {"TASKGATE_API_KEY": reader}
    down = {"TASKGATE_URL": f"http://127.0.0.1:{port}"}
    results = [
        run(args, {**env, **changes})
        for args, changes in [
            (["tasks", "ls"], wrong_key),
            (["tasks", "ls"], as_reader),
            (["submit", "echo"], as_reader),
            (["submit", "echo", "--wait"], down),
            (["submit", "echo", "steps"], {}),
        ]
    ]
    wrong, read, refused, unreachable, usage = results
    assert wrong.returncode == 6
    assert wrong.stderr.startswith("taskgate: error: the server refused the API key")
    assert read.returncode == 0, read.stderr
    assert refused.returncode == 6
    assert "may not" in refused.stderr
    assert unreachable.returncode == 6
    assert unreachable.stderr == (
        f"taskgate: error: cannot reach the taskgate server at http://127.0.0.1:{port}:"
        " connection refused\n"
    )
    assert usage.returncode == 2
    assert "is not key=value" in usage.stderr
    for result in results:
        assert "Traceback" not in result.stderr
        assert result.returncode == 0 or result.stdout == ""


# -- in a terminal ------------------------------------------------------------------------

_BAR_LINE = r"{type}\s+{state}\s+" + BAR + r"+[^%]*?(\d+)%\s+\d+(\.\d)?s\s+{message}"


def test_progress_bar_in_a_terminal_then_the_result(env: dict[str, str]) -> None:
    terminal = Terminal(["submit", "echo", "name=vm-100", "steps=4", "--wait"], env)
    code, raw = terminal.finish()
    assert code == 0, raw
    assert "\x1b[" in raw  # colours and cursor moves: rich saw a terminal
    drawn = frames(raw)
    final_bar = re.compile(_BAR_LINE.format(type="echo", state="succeeded", message="step 4"))
    assert any(final_bar.search(f) and "100%" in f for f in drawn), drawn
    lines = screen(raw)
    bar_row = next(i for i, line in enumerate(lines) if BAR in line)
    assert final_bar.search(lines[bar_row]), lines
    assert re.match(r"task \S+ succeeded in \d", lines[bar_row + 1]), lines
    assert json.loads("\n".join(lines[bar_row + 2 :])) == {"echo": "vm-100", "steps": 4}


def test_live_bar_while_running_then_canceled(env: dict[str, str], taskgate: Taskgate) -> None:
    task_id = taskgate("submit", "sleep", "seconds=60").stdout.strip()
    terminal = Terminal(["tasks", "wait", task_id], env)
    # the bar shows the running task's percent and message before the task ends
    terminal.read_until(_BAR_LINE.format(type="sleep", state="running", message="sleeping"))
    assert taskgate("tasks", "cancel", task_id).returncode == 0
    code, raw = terminal.finish()
    assert code == 3, raw
    lines = screen(raw)
    assert any(re.search(rf"sleep\s+canceled\s+{BAR}", line) for line in lines), lines
    assert re.match(rf"task {task_id} canceled", lines[-1]) or any(
        line.startswith(f"task {task_id} canceled") for line in lines
    ), lines


def test_failure_in_a_terminal_shows_the_error_and_with_v_the_traceback(
    env: dict[str, str],
) -> None:
    code, raw = Terminal(["submit", "flaky", "failures=5", "--wait", "-v"], env).finish()
    assert code == 1, raw
    lines = screen(raw)
    assert any(re.search(rf"flaky\s+failed\s+{BAR}", line) for line in lines), lines
    assert "ConnectionError: attempt 3 failed" in lines
    assert any(line.startswith("Traceback") for line in lines), lines


def test_ctrl_c_stops_the_waiting_not_the_task(env: dict[str, str], taskgate: Taskgate) -> None:
    terminal = Terminal(["submit", "sleep", "seconds=60", "--wait"], env)
    terminal.read_until(_BAR_LINE.format(type="sleep", state="running", message="sleeping"))
    terminal.type(b"\x03")
    code, raw = terminal.finish()
    assert code == 130, raw
    assert "Traceback" not in raw and "KeyboardInterrupt" not in raw
    found = re.search(r"stopped waiting; task (\S+) goes on", visible(raw))
    assert found, raw
    task = task_of(taskgate("tasks", "show", found.group(1), "--json"))
    assert task["state"] == "running"
    assert taskgate("tasks", "cancel", task["id"]).returncode == 0


def test_purge_asks_at_a_terminal(env: dict[str, str]) -> None:
    """On a real terminal, purge asks first (no answer is no); nothing here is old enough
    to go, so the server shared with other tests keeps its tasks."""
    args = ["tasks", "purge", "--finished-before", "2000-01-01T00:00:00Z"]
    declined = Terminal(args, env)
    declined.read_until(r"in every tenant, with their logs, on .*\? \[y/N\]")
    declined.type(b"\n")
    code, raw = declined.finish()
    assert code == 1, raw
    assert "taskgate: nothing purged" in screen(raw)
    accepted = Terminal(args, env)
    accepted.read_until(r"\[y/N\]")
    accepted.type(b"y\n")
    code, raw = accepted.finish()
    assert code == 0, raw
    assert screen(raw)[-1] == "purged 0 tasks"


def test_group_progress_bar_in_a_terminal(
    env: dict[str, str], taskgate: Taskgate, tmp_path: Path
) -> None:
    path = tmp_path / "group.json"
    path.write_text(
        json.dumps(
            [{"type": "echo", "params": {"steps": 2}}, {"type": "sleep", "params": {"seconds": 1}}]
        )
    )
    group_id = taskgate("groups", "submit", str(path)).stdout.strip()
    code, raw = Terminal(["groups", "wait", group_id], env).finish()
    assert code == 0, raw
    assert "\x1b[" in raw  # rich saw a terminal
    lines = screen(raw)
    bar = next(line for line in lines if BAR in line)
    assert re.search(rf"group {group_id}\s+{BAR}+\s+2/2\s+\d+(\.\d)?s\s+2 succeeded", bar), lines
    assert lines[-1] == f"group {group_id} ended: 2 succeeded"
    piped = taskgate("groups", "wait", group_id)  # not a terminal: plain lines, no bar
    assert piped.returncode == 0 and BAR not in piped.stdout
    assert piped.stdout.splitlines()[-1] == f"group {group_id} ended: 2 succeeded"
