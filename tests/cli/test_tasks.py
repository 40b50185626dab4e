"""``taskgate tasks ls|show|logs|cancel|ack`` against the in-process app."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Invoke
from .inprocess import InProcessServer


def submit(tg: Invoke, *args: str, wait: bool = True) -> dict[str, Any]:
    result = tg("submit", *args, *(["--wait"] if wait else []), "--json")
    assert result.exit_code in (0, 1), result.output
    task = json.loads(result.stdout)
    assert isinstance(task, dict)
    return task


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_ls_table_has_the_columns(tg: Invoke) -> None:
    done = submit(tg, "echo", "name=vm-7", "steps=2")
    failed = submit(tg, "fail")
    result = tg("tasks", "ls")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "STATE", "PROGRESS", "MESSAGE", "CREATED", "OBJECT"]
    assert rows[0].split()[:4] == [failed["id"], "fail", "failed", "10%"]
    assert rows[1].split()[:4] == [done["id"], "echo", "succeeded", "100%"]
    assert "step 2 of 2" in rows[1] and rows[1].rstrip().endswith("vm-7")


def test_ls_filters_limit_all_and_json(tg: Invoke) -> None:
    ids = [submit(tg, "echo", f"name=n{i}", "steps=1")["id"] for i in range(3)]
    failed = submit(tg, "fail")["id"]
    labeled = submit(tg, "echo", "--label", "env=prod", "--object-id", "vm-9")["id"]

    listed = json_lines(tg("tasks", "ls", "--json").stdout)
    assert [t["id"] for t in listed] == [labeled, failed, *reversed(ids)]
    assert [
        t["id"] for t in json_lines(tg("tasks", "ls", "--state", "failed", "--json").stdout)
    ] == [failed]
    both = tg("tasks", "ls", "--state", "failed,succeeded", "--type", "fail", "--json")
    assert [t["id"] for t in json_lines(both.stdout)] == [failed]
    by_label = tg("tasks", "ls", "--label", "env=prod", "--json")
    assert [t["id"] for t in json_lines(by_label.stdout)] == [labeled]
    by_object = tg("tasks", "ls", "--object-id", "vm-9", "--json")
    assert [t["id"] for t in json_lines(by_object.stdout)] == [labeled]

    limited = tg("tasks", "ls", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 3  # header + 2
    assert "--limit N or --all" in limited.stderr
    assert len(json_lines(tg("tasks", "ls", "-n", "2", "--json").stdout)) == 2
    everything = tg("tasks", "ls", "--all", "--limit", "1")
    assert len(everything.stdout.splitlines()) == 6
    assert everything.stderr == ""
    assert len(json_lines(tg("tasks", "ls", "--all", "--json").stdout)) == 5

    assert tg("tasks", "ls", "--type", "nothing").stdout.strip() == "no tasks"
    assert tg("tasks", "ls", "--type", "nothing", "--json").stdout == ""
    bad = tg("tasks", "ls", "--state", "sleeping")
    assert bad.exit_code == 2
    assert "sleeping" in bad.stderr


def test_show_every_field_and_the_traceback(tg: Invoke) -> None:
    failed = submit(tg, "fail", "path=/x.qcow2")
    result = tg("tasks", "show", failed["id"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in (
        "id",
        "upid",
        "type",
        "state",
        "progress",
        "params",
        "attempt",
        "created_at",
        "finished_at",
        "worker",
        "labels",
        "log_count",
    ):
        assert f"\n{name} " in f"\n{out}", name
    assert "DiskImageError: /x.qcow2: bad magic number" in out
    assert "Traceback" in out and "_read_header" in out
    as_data = json.loads(tg("tasks", "show", failed["id"], "--json").stdout)
    assert as_data["error"]["type"] == "DiskImageError"
    assert as_data["user"] == "bob"


def test_logs_and_follow(tg: Invoke) -> None:
    done = submit(tg, "echo", "steps=3")
    result = tg("tasks", "logs", done["id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "step 1 of 3",
        "step 2 of 3",
        "step 3 of 3",
        "WARN: this is only a test",
    ]
    stamped = tg("tasks", "logs", done["id"], "--timestamps").stdout.splitlines()
    assert stamped[0].endswith(" step 1 of 3") and stamped[0][:2] == "20"
    lines = json_lines(tg("tasks", "logs", done["id"], "--json").stdout)
    assert [line["n"] for line in lines] == [1, 2, 3, 4]
    assert lines[3]["level"] == "warning"

    running = submit(tg, "echo", "steps=5", wait=False)
    followed = tg("tasks", "logs", "-f", running["id"])
    assert followed.exit_code == 0, followed.output
    assert followed.stdout.splitlines()[-1] == "WARN: this is only a test"
    assert len(followed.stdout.splitlines()) == 6
    followed_json = json_lines(tg("tasks", "logs", "-f", "--json", running["id"]).stdout)
    assert [line["n"] for line in followed_json] == [1, 2, 3, 4, 5, 6]


def test_ack(tg: Invoke) -> None:
    done = submit(tg, "echo")
    result = tg("tasks", "ack", done["id"])
    assert result.exit_code == 0, result.output
    assert "acknowledged by bob" in result.stdout
    task = json.loads(tg("tasks", "show", done["id"], "--json").stdout)
    assert task["acknowledged_by"] == "bob"
    assert task["state"] == "succeeded"
    assert json.loads(tg("tasks", "ack", done["id"], "--json").stdout)["id"] == done["id"]
    unacked = tg("tasks", "ls", "--unacknowledged", "--json").stdout
    assert done["id"] not in unacked
    assert done["id"] in tg("tasks", "ls", "--acknowledged", "--json").stdout


def test_keys_and_tenants(tg: Invoke, inproc: InProcessServer) -> None:
    task = submit(tg, "echo")
    bad = tg("tasks", "ls", env={"TASKGATE_API_KEY": "tgk_000000000000_" + "A" * 43})
    assert bad.exit_code == 6
    assert bad.stderr.startswith("taskgate: error: the server refused the API key")
    assert bad.stderr.count("\n") == 1

    reader = {"TASKGATE_API_KEY": inproc.keys["read"]}
    assert tg("tasks", "show", task["id"], env=reader).exit_code == 0
    refused = tg("submit", "echo", env=reader)
    assert refused.exit_code == 6
    assert "may not" in refused.stderr and "read" in refused.stderr

    other = {"TASKGATE_API_KEY": inproc.keys["other"]}
    hidden = tg("tasks", "show", task["id"], env=other)
    assert hidden.exit_code == 2
    assert task["id"] in hidden.stderr
    assert tg("tasks", "ls", "--json", env=other).stdout == ""

    nokey = tg("tasks", "ls", env={"TASKGATE_API_KEY": ""})
    assert nokey.exit_code == 6
    assert "needs an API key" in nokey.stderr and "TASKGATE_API_KEY" in nokey.stderr


def test_admin_lists_another_tenant(tg: Invoke, inproc: InProcessServer) -> None:
    theirs = json.loads(
        tg("submit", "echo", "--json", env={"TASKGATE_API_KEY": inproc.keys["other"]}).stdout
    )
    ours = submit(tg, "echo", wait=False)
    admin = {"TASKGATE_API_KEY": inproc.keys["admin"]}
    everyone = json_lines(tg("tasks", "ls", "--json", env=admin).stdout)
    assert {t["id"] for t in everyone} == {theirs["id"], ours["id"]}
    acme = json_lines(tg("tasks", "ls", "--tenant", "acme", "--json", env=admin).stdout)
    assert [(t["id"], t["tenant"]) for t in acme] == [(theirs["id"], "acme")]


def test_retry_and_search(tg: Invoke) -> None:
    failed = submit(tg, "fail", "--label", "ticket=T-5")
    result = tg("tasks", "retry", failed["id"], "--json")
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["id"] != failed["id"] and again["labels"]["retry_of"] == failed["id"]
    plain = tg("tasks", "retry", failed["id"])
    assert plain.exit_code == 0 and f"a retry of {failed['id']}" in plain.stdout
    found = json_lines(tg("tasks", "ls", "--search", "T-5", "--json").stdout)
    assert len(found) == 3 and found[-1]["id"] == failed["id"]
    by_id = json_lines(tg("tasks", "ls", "-q", failed["id"], "--json").stdout)
    assert [t["id"] for t in by_id][-1] == failed["id"]  # and its retries, by retry_of
    done = submit(tg, "echo", "name=x")
    refused = tg("tasks", "retry", done["id"])
    assert refused.exit_code == 1 and "succeeded" in refused.stderr
