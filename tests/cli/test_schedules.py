"""``taskgate schedules list|show|create|update|pause|resume|run|runs|delete`` against
the in-process app: what each prints, and the exit status of each refusal."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Invoke
from .inprocess import InProcessServer

LATER = "R/2099-01-01T00:00:00Z/P1D"
"""A recurrence whose first run is far off: the worker's scheduler leaves it alone."""


def create(tg: Invoke, *args: str) -> dict[str, Any]:
    result = tg("schedules", "create", *args, "--json")
    assert result.exit_code == 0, result.output
    schedule = json.loads(result.stdout)
    assert isinstance(schedule, dict)
    return schedule


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_create_list_and_show(tg: Invoke) -> None:
    nightly = create(
        tg,
        "nightly",
        "echo",
        "0 3 * * *",
        "name=db1",
        "steps=2",
        "--timezone",
        "Europe/Paris",
        "--overlap",
        "queue",
        "--failure-threshold",
        "3",
        "--schedule-threshold",
        "5m",
        "--priority",
        "7",
        "--label",
        "team=ops",
        "--timeout",
        "10m",
        "--max-attempts",
        "2",
        "--object-id",
        "db1",
        "--disabled",
    )
    assert nightly["params"] == {"name": "db1", "steps": 2, "extra": None}
    assert nightly["timezone"] == "Europe/Paris" and nightly["overlap"] == "queue"
    assert (nightly["failure_threshold"], nightly["schedule_threshold"]) == (3, 300)
    assert nightly["options"] == {
        "object_id": "db1",
        "priority": 7,
        "labels": {"team": "ops"},
        "timeout": 600,
        "max_attempts": 2,
    }
    assert nightly["enabled"] is False and nightly["user"] == "bob"
    piped = tg("schedules", "create", "hourly", "sleep", LATER, "seconds=1")
    assert piped.exit_code == 0, piped.output
    hourly = json.loads(tg("schedules", "show", "hourly", "--json").stdout)
    assert piped.stdout == f"{hourly['id']}\n"  # the id alone, as submit prints a task's

    table = tg("schedules", "list")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "OPERATION",
        "RECURRENCE",
        "ENABLED",
        "NEXT",
        "RUN",
        "LAST",
        "RUN",
        "RUNS",
        "FAILURES",
    ]
    assert rows[0].split()[:3] == ["hourly", "sleep", LATER]
    assert rows[0].split()[4] == "yes" and rows[0].split()[-2:] == ["0", "0"]
    assert rows[1].split() == [
        "nightly",
        "echo",
        "0",
        "3",
        "*",
        "*",
        "*",
        "(Europe/Paris)",
        "no",
        "-",
        "-",
        "0",
        "0/3",
    ]
    assert [s["name"] for s in json_lines(tg("schedules", "ls", "--json").stdout)] == [
        "hourly",
        "nightly",
    ]
    disabled = tg("schedules", "list", "--disabled", "--json").stdout
    assert [s["name"] for s in json_lines(disabled)] == ["nightly"]
    by_type = tg("schedules", "list", "--type", "sleep,fail", "--json").stdout
    assert [s["name"] for s in json_lines(by_type)] == ["hourly"]
    limited = tg("schedules", "list", "-n", "1")
    assert len(limited.stdout.splitlines()) == 2 and "--limit N or --all" in limited.stderr
    assert tg("schedules", "list", "--type", "nothing").stdout.strip() == "no schedules"

    shown = tg("schedules", "show", "nightly")
    assert shown.exit_code == 0, shown.output
    for name in ("enabled", "id", "recurrence", "timezone", "options", "next_run", "version"):
        assert f"\n{name} " in f"\n{shown.stdout}", name
    assert "Europe/Paris" in shown.stdout and '"team": "ops"' in shown.stdout
    by_id = json.loads(tg("schedules", "show", nightly["id"], "--json").stdout)
    assert by_id == nightly


def test_update_pause_and_resume(tg: Invoke) -> None:
    create(tg, "backup", "echo", LATER, "name=a", "--priority", "1", "--label", "team=ops")
    result = tg(
        "schedules",
        "update",
        "backup",
        "name=b",
        "--recurrence",
        "R/2099-06-01T00:00:00Z/PT12H",
        "--priority",
        "9",
        "--failure-threshold",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    changed = json.loads(result.stdout)
    assert changed["recurrence"] == "R/2099-06-01T00:00:00Z/PT12H"
    assert changed["params"]["name"] == "b" and changed["failure_threshold"] == 2
    assert changed["options"] == {"priority": 9, "labels": {"team": "ops"}}  # labels kept
    off = tg("schedules", "update", "backup", "--failure-threshold", "off", "--json")
    assert json.loads(off.stdout)["failure_threshold"] is None
    line = tg("schedules", "update", "backup", "--overlap", "queue")
    assert line.exit_code == 0, line.output
    assert line.stdout.startswith("schedule backup updated; next run 2099-")
    nothing = tg("schedules", "update", "backup")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr

    paused = tg("schedules", "pause", "backup")
    assert (paused.exit_code, paused.stdout) == (0, "schedule backup paused\n")
    assert json.loads(tg("schedules", "show", "backup", "--json").stdout)["enabled"] is False
    resumed = tg("schedules", "resume", "backup", "--json")
    assert json.loads(resumed.stdout)["enabled"] is True
    disabled = tg("schedules", "update", "backup", "--disabled", "--json")
    assert json.loads(disabled.stdout)["enabled"] is False


def test_run_runs_and_delete(tg: Invoke) -> None:
    sleeper = create(tg, "sleeper", "sleep", LATER, "seconds=60")
    first = tg("schedules", "run", "sleeper")
    assert first.exit_code == 0, first.output
    task_id = first.stdout.strip()
    busy = tg("schedules", "run", "sleeper")
    assert busy.exit_code == 1
    assert busy.stderr == (
        f"taskgate: error: the schedule's last run (task {task_id}) has not ended yet\n"
    )
    listed = tg("schedules", "runs", "sleeper")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "TYPE", "STATE"]
    assert [row.split()[:2] for row in rows] == [[task_id, "sleep"]]
    assert [t["id"] for t in json_lines(tg("schedules", "runs", sleeper["id"], "--json").stdout)]
    assert tg("schedules", "runs", "sleeper", "--state", "failed").stdout.strip() == "no tasks"
    assert tg("tasks", "cancel", task_id).exit_code == 0

    create(tg, "echoes", "echo", LATER, "steps=2")
    waited = tg("schedules", "run", "echoes", "--wait")
    assert waited.exit_code == 0, waited.output
    assert "succeeded" in waited.stdout and '"echo": "hello"' in waited.stdout
    as_json = tg("schedules", "run", "echoes", "--wait", "--json")
    run = json.loads(as_json.stdout)
    assert run["state"] == "succeeded" and run["schedule_id"] is not None
    assert len(json_lines(tg("schedules", "runs", "echoes", "--json").stdout)) == 2

    deleted = tg("schedules", "delete", "sleeper")
    assert (deleted.exit_code, deleted.stdout) == (0, "schedule sleeper deleted; its tasks stay\n")
    assert tg("schedules", "show", "sleeper").exit_code == 2
    assert json.loads(tg("tasks", "show", task_id, "--json").stdout)["schedule_id"] == sleeper["id"]
    gone = json.loads(tg("schedules", "delete", "echoes", "--json").stdout)
    assert gone["name"] == "echoes" and gone["total_run_count"] == 2


def test_refusals_exit_with_one_line(tg: Invoke, inproc: InProcessServer) -> None:
    for args in (
        ("show", "nope"),
        ("run", "nope"),
        ("pause", "nope"),
        ("resume", "nope"),
        ("delete", "nope"),
        ("runs", "nope"),
        ("update", "nope", "--overlap", "skip"),
    ):
        missing = tg("schedules", *args)
        assert missing.exit_code == 2, (args, missing.output)
        assert missing.stderr == "taskgate: error: no schedule 'nope'\n", args
        blank = tg("schedules", args[0], " ", *args[2:])
        assert blank.exit_code == 2 and "must not be empty" in blank.stderr, args
        assert "Traceback" not in blank.output

    bad = tg("schedules", "create", "bad", "echo", "every tuesday")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("taskgate: error: recurrence: cron expression 'every tuesday'")
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.output
    zone = tg("schedules", "create", "bad", "echo", "@daily", "--timezone", "Atlantis/Capital")
    assert zone.exit_code == 2 and "Atlantis/Capital" in zone.stderr
    unknown = tg("schedules", "create", "bad", "no_such_operation", LATER)
    assert unknown.exit_code == 2 and "no_such_operation" in unknown.stderr
    create(tg, "taken", "echo", LATER)
    again = tg("schedules", "create", "taken", "echo", LATER)
    assert again.exit_code == 1 and "already has a schedule named 'taken'" in again.stderr
    bad_params = tg("schedules", "update", "taken", "steps=0")
    assert bad_params.exit_code == 2 and "steps" in bad_params.stderr

    for args, message in [
        (("create", "x", "echo", "0", "3", "*", "*", "*"), "in quotes"),
        (("create", "x", "echo", LATER, "--failure-threshold", "0"), "--failure-threshold"),
        (("create", "x", "echo", LATER, "--overlap", "maybe"), "--overlap"),
        (("run", "taken", "--wait-timeout", "5"), "--wait-timeout needs --wait"),
        (("create", "x"), "Missing argument"),
    ]:
        result = tg("schedules", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)

    reader = {"TASKGATE_API_KEY": inproc.keys["read"]}
    assert tg("schedules", "show", "taken", env=reader).exit_code == 0
    refused = tg("schedules", "pause", "taken", env=reader)
    assert refused.exit_code == 6 and "may not" in refused.stderr
    other = {"TASKGATE_API_KEY": inproc.keys["other"]}
    assert tg("schedules", "show", "taken", env=other).exit_code == 2  # another tenant's
