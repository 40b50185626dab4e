"""``taskgate groups submit|show|wait|suspend|resume|cancel``, ``tasks suspend|resume``,
and the group, resource, children and history options of ``submit``, ``tasks ls`` and
``tasks show``, against the in-process app: what each prints, and each refusal's exit
status."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from taskgate.cli import render
from taskgate.retention import RetentionService

from .conftest import Invoke
from .inprocess import InProcessServer
from .test_tasks import json_lines, submit

QUICK = [{"type": "echo", "params": {"name": "a", "steps": 1}}, {"type": "echo"}]
LATER = {"type": "sleep", "params": {"seconds": 60}, "delay": 3600}
"""A task that may start only in an hour: it waits through a test."""


def submit_group(tg: Invoke, tasks: Any) -> dict[str, Any]:
    result = tg("groups", "submit", "-", "--json", input=json.dumps(tasks))
    assert result.exit_code == 0, result.output
    group = json.loads(result.stdout)
    assert isinstance(group, dict)
    return group


def show(tg: Invoke, group_id: str) -> dict[str, Any]:
    result = tg("groups", "show", group_id, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert isinstance(summary, dict)
    return summary


# -- groups ---------------------------------------------------------------------------------


def test_submit_from_stdin_or_a_file_prints_the_id(tg: Invoke, tmp_path: Path) -> None:
    piped = tg("groups", "submit", "-", input=json.dumps(QUICK))  # a bare list
    assert piped.exit_code == 0, piped.output
    group_id = piped.stdout.strip()
    assert piped.stdout == f"{group_id}\n" and len(group_id) == 36
    assert show(tg, group_id)["total"] == 2

    path = tmp_path / "group.json"
    path.write_text(json.dumps({"tasks": [*QUICK, {"type": "echo", "priority": 4}]}))
    submitted = json.loads(tg("groups", "submit", str(path), "--json").stdout)
    assert submitted["group"] == f"/v1/groups/{submitted['id']}"
    assert [t["priority"] for t in submitted["tasks"]] == [0, 0, 4]
    assert {t["group_id"] for t in submitted["tasks"]} == {submitted["id"]}
    listed = json_lines(tg("tasks", "ls", "--group", submitted["id"], "--json").stdout)
    assert {t["id"] for t in listed} == {t["id"] for t in submitted["tasks"]}


def test_wait_then_show(tg: Invoke) -> None:
    group_id = submit_group(tg, QUICK)["id"]
    waited = tg("groups", "wait", group_id)
    assert waited.exit_code == 0, waited.output
    lines = waited.stdout.splitlines()
    assert all(line.startswith(f"{group_id} ") and " ended: " in line for line in lines[:-1])
    assert lines[-2].startswith(f"{group_id} 2/2 ended: 2 succeeded (")  # plain: piped
    assert lines[-1] == f"group {group_id} ended: 2 succeeded"

    table = tg("groups", "show", group_id)
    assert table.exit_code == 0, table.output
    out = [line.rstrip() for line in table.stdout.splitlines()]
    assert out[:3] == [f"id     {group_id}", "total  2", "ended  yes"]
    rows = [line.split() for line in out[out.index("STATE      TASKS") + 1 :] if line]
    assert rows[0] == ["succeeded", "2"] and len(rows) == 2  # only states with tasks
    assert rows[1][:3] == ["its", "tasks:", "taskgate"]

    summary = show(tg, group_id)
    assert summary["ended"] and summary["states"]["succeeded"] == 2
    assert set(summary["states"]) >= {"queued", "suspended", "timed_out"}
    again = tg("groups", "wait", group_id, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout) == summary


def test_wait_exit_statuses(tg: Invoke) -> None:
    failed = submit_group(tg, [QUICK[0], {"type": "fail"}])["id"]
    result = tg("groups", "wait", failed)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-2] == f"group {failed} ended: 1 succeeded, 1 failed"
    assert "--state failed,timed_out" in result.stdout.splitlines()[-1]
    assert tg("groups", "wait", failed, "--json").exit_code == 1

    timed_out = submit_group(tg, [{"type": "sleep", "timeout": 0.2}])["id"]
    assert tg("groups", "wait", timed_out).exit_code == 1

    waiting = submit_group(tg, [QUICK[0], LATER])["id"]
    late = tg("groups", "wait", waiting, "--timeout", "0.3")
    assert late.exit_code == 5, late.output
    assert late.stderr == (
        f"taskgate: error: group {waiting}: 1 of 2 tasks still going after waiting 0.3s\n"
    )
    as_data = tg("groups", "wait", waiting, "--timeout", "0.2", "--json")
    assert as_data.exit_code == 5 and not json.loads(as_data.stdout)["ended"]

    assert tg("groups", "cancel", waiting).exit_code == 0
    canceled = tg("groups", "wait", waiting)
    assert canceled.exit_code == 3, canceled.output
    assert canceled.stdout.splitlines()[-1] == f"group {waiting} ended: 1 succeeded, 1 canceled"

    both = submit_group(tg, [{"type": "fail"}, LATER])["id"]
    tg("groups", "cancel", both)
    assert tg("groups", "wait", both).exit_code == 1  # a failure outranks a cancel


def test_suspend_resume_and_cancel_a_group(tg: Invoke) -> None:
    group_id = submit_group(tg, [LATER, LATER])["id"]
    suspended = tg("groups", "suspend", group_id)
    assert suspended.exit_code == 0, suspended.output
    assert suspended.stdout == f"group {group_id} suspended: 2 suspended\n"
    in_ls = tg("tasks", "ls", "--group", group_id, "--state", "suspended", "--json")
    assert len(json_lines(in_ls.stdout)) == 2
    resumed = json.loads(tg("groups", "resume", group_id, "--json").stdout)
    assert resumed["states"]["scheduled"] == 2 and resumed["id"] == group_id
    canceled = tg("groups", "cancel", group_id)
    assert canceled.stdout == f"group {group_id} canceled: 2 canceled\n"


def test_a_group_of_another_tenant_is_not_found(tg: Invoke, inproc: InProcessServer) -> None:
    group_id = submit_group(tg, [LATER])["id"]
    other = {"TASKGATE_API_KEY": inproc.keys["other"]}
    for command in ("show", "wait", "cancel"):
        hidden = tg("groups", command, group_id, env=other)
        assert hidden.exit_code == 2, hidden.output
        assert hidden.stderr == f"taskgate: error: no group {group_id}\n"
    reader = {"TASKGATE_API_KEY": inproc.keys["read"]}
    assert tg("groups", "show", group_id, env=reader).exit_code == 0
    refused = tg("groups", "suspend", group_id, env=reader)
    assert refused.exit_code == 6 and "may not" in refused.stderr
    tg("groups", "cancel", group_id)


# -- tasks ----------------------------------------------------------------------------------


def test_suspend_and_resume_a_task(tg: Invoke) -> None:
    task = submit(tg, "echo", "--delay", "1h", wait=False)
    suspended = tg("tasks", "suspend", task["id"])
    assert suspended.exit_code == 0, suspended.output
    assert suspended.stdout == f"task {task['id']} suspended\n"
    table = tg("tasks", "ls", "--state", "suspended").stdout.splitlines()
    assert table[1].split()[:3] == [task["id"], "echo", "suspended"]
    again = tg("tasks", "suspend", task["id"])
    assert again.exit_code == 1 and again.stderr.startswith("taskgate: error: ")
    resumed = json.loads(tg("tasks", "resume", task["id"], "--json").stdout)
    assert resumed["state"] == "scheduled"
    not_suspended = tg("tasks", "resume", task["id"])
    assert not_suspended.exit_code == 1 and not_suspended.stdout == ""
    tg("tasks", "cancel", task["id"])
    assert render.state_text("suspended").style == render.STATE_STYLES["suspended"]


def test_submit_joins_a_group_and_reserves_resources(tg: Invoke) -> None:
    args = ("--group", "nightly", "--exclusive", "repo:1", "--exclusive", "repo:2")
    task = submit(tg, "echo", *args, "--shared", "remote:9", "--delay", "1h", wait=False)
    assert task["group_id"] == "nightly"
    assert task["reserved_resources"] == {
        "exclusive": ["repo:1", "repo:2"],
        "shared": ["remote:9"],
        "limits": [],
    }
    plain = submit(tg, "echo", "--group", "nightly")
    assert plain["reserved_resources"] is None and plain["children"] == []
    by_resource = json_lines(tg("tasks", "ls", "--resource", "remote:9", "--json").stdout)
    assert [t["id"] for t in by_resource] == [task["id"]]
    in_group = json_lines(tg("tasks", "ls", "--group", "nightly", "--json").stdout)
    assert {t["id"] for t in in_group} == {task["id"], plain["id"]}
    assert show(tg, "nightly")["total"] == 2

    details = tg("tasks", "show", task["id"]).stdout.splitlines()
    start = next(i for i, line in enumerate(details) if line.startswith("reserved_resources"))
    assert details[start].split() == ["reserved_resources", "exclusive", "repo:1,", "repo:2"]
    assert details[start + 1].split() == ["shared", "remote:9"]
    assert [line.split() for line in details if line.startswith("children ")] == [["children", "-"]]
    assert not any(line.startswith("archived") for line in details)  # only once it is
    tg("groups", "cancel", "nightly")


def test_children_and_history(tg: Invoke, inproc: InProcessServer) -> None:
    parent = submit(tg, "fan_out", "parts=2")
    assert parent["state"] == "succeeded" and len(parent["children"]) == 2
    details = tg("tasks", "show", parent["id"]).stdout.splitlines()
    first = next(i for i, line in enumerate(details) if line.startswith("children "))
    assert details[first].split() == ["children", parent["children"][0]]
    assert details[first + 1].split() == [parent["children"][1]]  # one id a line
    kids = json_lines(tg("tasks", "ls", "--parent", parent["id"], "--json").stdout)
    assert sorted(t["id"] for t in kids) == sorted(parent["children"])

    assert inproc.service is not None
    inproc.call(RetentionService(inproc.service, archive_after=0, purge_after=math.inf).run())
    live = submit(tg, "echo", "--delay", "1h", wait=False)
    assert tg("tasks", "ls").stdout.splitlines()[1].split()[0] == live["id"]
    assert len(tg("tasks", "ls").stdout.splitlines()) == 2  # the header and the live one
    archived = json_lines(tg("tasks", "ls", "--archived", "true", "--json").stdout)
    assert {t["id"] for t in archived} == {parent["id"], *parent["children"]}
    assert all(t["archived"] for t in archived)
    every = json_lines(tg("tasks", "ls", "--archived", "any", "--json").stdout)
    assert len(every) == 4 and every[0]["id"] == live["id"]
    shown = tg("tasks", "show", parent["id"]).stdout.splitlines()
    assert shown[1].split() == ["archived", "yes", "(moved", "to", "history)"]
    tg("tasks", "cancel", live["id"])


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("groups", "submit", "-"), "not json", "stdin is not JSON"),
        (("groups", "submit", "-"), "[]", "stdin holds no tasks"),
        (("groups", "submit", "-"), '{"tasks": []}', "stdin holds no tasks"),
        (("groups", "submit", "-"), '{"task": []}', "unknown field 'task' (accepted: tasks)"),
        (("groups", "submit", "-"), '"echo"', 'neither {"tasks": [...]} nor a list'),
        (("groups", "submit", "-"), '[{"type": "echo"}, 3]', "tasks.1 is not an object with"),
        (("groups", "submit", "-"), '[{"params": {}}]', 'tasks.0 is not an object with a "type"'),
        (("groups", "submit", "/no/such/file.json"), None, "No such file or directory"),
        (("groups", "submit"), None, "Missing argument 'FILE'"),
        (("groups", "show", " "), None, "must not be empty"),
        (("groups", "wait", "g", "--timeout", "soon"), None, "is not a duration"),
        (("groups", "nope"), None, "No such command"),
        (("tasks", "ls", "--archived", "maybe"), None, "'maybe' is not one of"),
        (("tasks", "ls", "--group", ""), None, "must not be empty"),
        (("tasks", "suspend", ""), None, "must not be empty"),
        (("tasks", "show", " "), None, "must not be empty"),
        (("tasks", "cancel", ""), None, "must not be empty"),
        (("submit", "echo", "--exclusive", "a", "--exclusive", " "), None, "must not be empty"),
    ],
)
def test_bad_input_is_a_usage_error(
    tg: Invoke, args: tuple[str, ...], stdin: str | None, says: str
) -> None:
    result = tg(*args, input=stdin)
    assert result.exit_code == 2, result.output
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert tg("tasks", "ls", "--archived", "any", "--json").stdout == ""  # nothing stored


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (
            ("groups", "submit", "-"),
            '[{"type": "echo"}, {"type": "echo", "params": {"steps": 0}}]',
            "tasks.1.params.steps",
        ),
        (("groups", "submit", "-"), '[{"type": "nope"}]', "tasks.0.type"),
        (("groups", "submit", "-"), '[{"type": "echo", "group_id": "g"}]', "tasks.0.group_id"),
        (("groups", "show", "no-such-group"), None, "no group no-such-group"),
        (("groups", "show", "bad id"), None, "group"),
        (("tasks", "ls", "--parent", "x"), None, "'x' is not a valid task id"),
        (("submit", "echo", "--group", "a b"), None, "group_id"),
        (("submit", "echo", "--shared", "x" * 300), None, "shared_resource"),
    ],
)
def test_what_the_server_refuses_exits_2(
    tg: Invoke, args: tuple[str, ...], stdin: str | None, says: str
) -> None:
    result = tg(*args, input=stdin)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("taskgate: error: ") and says in result.stderr
    assert result.stderr.count("\n") == 1
    assert tg("tasks", "ls", "--archived", "any", "--json").stdout == ""  # nothing stored
