"""``taskgate submit`` and ``taskgate tasks wait`` against the in-process app: output
when not on a terminal (plain lines), ``--json``, and the exit statuses."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Invoke


def as_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict), text
    return value


def test_submit_prints_only_the_id_when_piped(tg: Invoke) -> None:
    result = tg("submit", "echo", "name=vm-1", "steps=2")
    assert result.exit_code == 0, result.output
    task_id = result.stdout.strip()
    assert "\n" not in task_id and len(task_id) == 36
    shown = as_json(tg("tasks", "show", task_id, "--json").stdout)
    assert shown["id"] == task_id
    assert shown["params"]["name"] == "vm-1"
    assert shown["params"]["steps"] == 2
    assert shown["object_id"] == "vm-1"


def test_submit_values_are_typed_and_options_are_sent(tg: Invoke) -> None:
    args = (
        "submit",
        "echo",
        "name=007",
        "steps=1",
        'extra={"tags": ["a"], "on": true, "none": null, "n": 1.5}',
        "--object-id",
        "obj-9",
        "--priority",
        "7",
        "--label",
        "env=test",
        "--label",
        "team=cli",
        "--delay",
        "1h",
        "--task-timeout",
        "90s",
        "--max-attempts",
        "2",
        "--idempotency-key",
        "cli-test-key-1",
        "--json",
    )
    result = tg(*args)
    assert result.exit_code == 0, result.output
    task = as_json(result.stdout)
    assert task["params"]["name"] == "007"
    assert task["params"]["steps"] == 1
    assert task["params"]["extra"] == {"tags": ["a"], "on": True, "none": None, "n": 1.5}
    assert task["state"] == "scheduled"
    assert task["object_id"] == "obj-9"
    assert task["priority"] == 7
    assert task["labels"] == {"env": "test", "team": "cli"}
    assert task["timeout"] == 90
    assert task["max_attempts"] == 2
    assert task["idempotency_key"] == "cli-test-key-1"
    again = tg(*args)  # the same key again: the same task
    assert again.exit_code == 0, again.output
    assert as_json(again.stdout)["id"] == task["id"]
    reused = tg("submit", "echo", "name=other", "--idempotency-key", "cli-test-key-1")
    assert reused.exit_code == 2, reused.output
    assert "Idempotency-Key" in reused.stderr or "idempotency" in reused.stderr.lower()
    assert tg("tasks", "cancel", task["id"]).exit_code == 0


def test_submit_wait_success_plain_lines_then_the_result(tg: Invoke) -> None:
    result = tg("submit", "echo", "name=vm-2", "steps=3", "--wait")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(" succeeded 100% step 3 of 3 " in line for line in lines), result.stdout
    outcome = next(i for i, line in enumerate(lines) if line.startswith("task "))
    task_id = lines[outcome].split()[1]
    assert all(line.startswith(f"{task_id} ") for line in lines[:outcome])
    assert "succeeded in" in lines[outcome]
    assert json.loads("\n".join(lines[outcome + 1 :])) == {
        "echo": "vm-2",
        "steps": 3,
        "extra": None,
    }


def test_submit_wait_json_is_one_object(tg: Invoke) -> None:
    result = tg("submit", "echo", "steps=2", "--wait", "--json")
    assert result.exit_code == 0, result.output
    task = as_json(result.stdout)
    assert task["state"] == "succeeded"
    assert task["result"] == {"echo": "hello", "steps": 2, "extra": None}
    assert task["progress"] == 100
    assert task["created_at"].endswith("Z")


def test_failed_task_exits_1_with_its_error(tg: Invoke) -> None:
    result = tg("submit", "fail", "--wait")
    assert result.exit_code == 1, result.output
    assert "DiskImageError: /images/vm-100.qcow2: bad magic number" in result.stdout
    assert "_read_header" not in result.stdout
    assert "-v shows the traceback" in result.stdout

    verbose = tg("submit", "fail", "--wait", "-v")
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.stdout and "_read_header" in verbose.stdout

    as_data = tg("submit", "fail", "--wait", "--json")
    assert as_data.exit_code == 1
    task = as_json(as_data.stdout)
    assert task["state"] == "failed"
    assert task["error"]["type"] == "DiskImageError"
    assert "_read_header" in task["error"]["traceback"]


def test_timed_out_task_exits_4(tg: Invoke) -> None:
    result = tg("submit", "sleep", "seconds=30", "--task-timeout", "0.3", "--wait")
    assert result.exit_code == 4, result.output
    assert "timed_out" in result.stdout


def test_canceled_task_exits_3(tg: Invoke) -> None:
    task_id = tg("submit", "sleep", "seconds=30").stdout.strip()
    canceled = tg("tasks", "cancel", task_id)
    assert canceled.exit_code == 0, canceled.output
    assert task_id in canceled.stdout
    assert "cancel" in canceled.stdout
    result = tg("tasks", "wait", task_id)
    assert result.exit_code == 3, result.output
    assert "canceled" in result.stdout
    # canceling an ended task is refused by the server: one line, status 1
    again = tg("tasks", "cancel", task_id)
    assert again.exit_code == 1
    assert again.stderr.startswith("taskgate: error: ")
    assert again.stdout == ""


def test_wait_timeout_exits_5_and_leaves_the_task(tg: Invoke) -> None:
    task_id = tg("submit", "sleep", "seconds=30").stdout.strip()
    result = tg("tasks", "wait", task_id, "--timeout", "0.3")
    assert result.exit_code == 5, result.output
    assert f"task {task_id} is still" in result.stderr
    as_data = tg("tasks", "wait", task_id, "--timeout", "200ms", "--json")
    assert as_data.exit_code == 5
    assert as_json(as_data.stdout)["state"] in ("queued", "running")
    submitted = tg("submit", "sleep", "seconds=30", "--wait", "--wait-timeout", "0.2")
    assert submitted.exit_code == 5, submitted.output
    for task in tg("tasks", "ls", "--state", "running,queued", "--json").stdout.splitlines():
        tg("tasks", "cancel", json.loads(task)["id"])


def test_tasks_wait_on_an_ended_task_answers_at_once(tg: Invoke) -> None:
    task = as_json(tg("submit", "echo", "--wait", "--json").stdout)
    result = tg("tasks", "wait", task["id"], "--json")
    assert result.exit_code == 0
    assert as_json(result.stdout)["result"] == task["result"]


def test_usage_errors_exit_2(tg: Invoke) -> None:
    for args, message in [
        (("submit", "echo", "steps"), "is not key=value"),
        (("submit", "echo", "a=1", "a=2"), "given twice"),
        (("submit", "echo", "--delay", "soon"), "is not a duration"),
        (("submit", "echo", "--label", "novalue"), "is not key=value"),
        (("submit", "echo", "--wait-timeout", "5"), "--wait-timeout needs --wait"),
        (("submit", "echo", "--priority", "high"), "high"),
        (("submit",), "Missing argument"),
        (("tasks", "wait"), "Missing argument"),
        (("tasks", "nope"), "No such command"),
        (("submit", "echo", "--url", "localhost:8006"), "is not a server URL"),
    ]:
        result = tg(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_server_refusals_of_input_exit_2(tg: Invoke) -> None:
    unknown = tg("submit", "no_such_operation")
    assert unknown.exit_code == 2, unknown.output
    assert "no_such_operation" in unknown.stderr
    bad = tg("submit", "echo", "steps=0")
    assert bad.exit_code == 2
    assert "steps" in bad.stderr and bad.stderr.count("\n") == 1
    missing = tg("tasks", "show", "0190a0b0-0000-7000-8000-000000000000")
    assert missing.exit_code == 2
    assert "not found" in missing.stderr.lower() or "no task" in missing.stderr.lower()
