"""``taskgate tasks purge`` against the in-process app: by state and age, --json, the
--yes rule when stdin is not a terminal, the question asked when it is, and the
refusals (exit status 2 before anything is sent, 6 for a key that is not an admin's)."""

from __future__ import annotations

import json

import pytest

from taskgate.cli import client_commands

from .conftest import Invoke
from .inprocess import BASE, InProcessServer
from .test_tasks import json_lines, submit


@pytest.fixture
def admin(inproc: InProcessServer) -> dict[str, str]:
    return {"TASKGATE_API_KEY": inproc.keys["admin"]}


def task_ids(tg: Invoke, admin: dict[str, str]) -> set[str]:
    return {t["id"] for t in json_lines(tg("tasks", "ls", "--all", "--json", env=admin).stdout)}


def test_purge_by_state_and_age(tg: Invoke, admin: dict[str, str]) -> None:
    done = submit(tg, "echo", "steps=1")
    failed = submit(tg, "fail")
    waiting = submit(tg, "echo", "--delay", "1h", wait=False)

    result = tg("tasks", "purge", "--state", "failed", "--yes", env=admin)
    assert result.exit_code == 0, result.output
    assert result.stdout == "purged 1 task\n"
    assert tg("tasks", "show", failed["id"], env=admin).exit_code == 2  # gone

    older = tg("tasks", "purge", "--older-than", "1h", "--yes", env=admin)
    assert (older.exit_code, older.stdout) == (0, "purged 0 tasks\n")
    long_ago = tg("tasks", "purge", "--finished-before", "2000-01-01T00:00:00Z", "-y", env=admin)
    assert long_ago.stdout == "purged 0 tasks\n"
    typed = tg("tasks", "purge", "--older-than", "0s", "--type", "fail", "--yes", env=admin)
    assert typed.stdout == "purged 0 tasks\n"
    assert task_ids(tg, admin) == {done["id"], waiting["id"]}

    every = tg("tasks", "purge", "--older-than", "0s", "--yes", "--json", env=admin)
    assert every.exit_code == 0, every.output
    assert json.loads(every.stdout) == {"purged": 1}
    assert task_ids(tg, admin) == {waiting["id"]}  # a task not ended stays


def test_piped_it_needs_yes(tg: Invoke, admin: dict[str, str]) -> None:
    failed = submit(tg, "fail")
    result = tg("tasks", "purge", "--state", "failed", env=admin)
    assert result.exit_code == 2
    assert "not a terminal" in result.stderr and "--yes" in result.stderr
    assert result.stdout == ""
    assert task_ids(tg, admin) == {failed["id"]}


def test_on_a_terminal_it_asks(
    tg: Invoke, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_commands, "interactive", lambda: True)
    failed = submit(tg, "fail")
    args = ("tasks", "purge", "--state", "failed,canceled", "--type", "fail", "--older-than", "0s")

    declined = tg(*args, env=admin, input="n\n")
    assert declined.exit_code == 1
    question = (
        "Delete the failed or canceled tasks of type fail that finished more than 0s ago,"
        f" in every tenant, with their logs, on {BASE}? [y/N]"
    )
    assert question in declined.stderr
    assert "nothing purged" in declined.stderr
    assert task_ids(tg, admin) == {failed["id"]}
    assert tg(*args, env=admin, input="\n").exit_code == 1  # the default is no

    accepted = tg(*args, "--tenant", "default", "--json", env=admin, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "in tenant default," in accepted.stderr
    assert json.loads(accepted.stdout) == {"purged": 1}  # the question is on stderr
    assert task_ids(tg, admin) == set()

    asked_nothing = tg("tasks", "purge", "--state", "failed", "--yes", env=admin)
    assert asked_nothing.stdout == "purged 0 tasks\n" and "[y/N]" not in asked_nothing.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give --state, --finished-before or --older-than"),
        (("--type", "fail", "--tenant", "default"), "give --state"),
        (("--state", "running"), "only ended tasks can be purged"),
        (("--state", "sleeping,failed"), "sleeping"),
        (("--finished-before", "yesterday"), "not an RFC 3339 time"),
        (("--finished-before", "2026-01-01T00:00:00"), "no time zone"),
        (("--older-than", "a week"), "not a duration"),
        (("--older-than", "7d", "--finished-before", "2026-01-01T00:00:00Z"), "not both"),
    ],
)
def test_refusals_exit_2(
    tg: Invoke, admin: dict[str, str], args: tuple[str, ...], says: str
) -> None:
    failed = submit(tg, "fail")
    result = tg("tasks", "purge", *args, "--yes", env=admin)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert task_ids(tg, admin) == {failed["id"]}


def test_a_key_that_is_not_an_admins_exits_6(tg: Invoke, admin: dict[str, str]) -> None:
    failed = submit(tg, "fail")
    refused = tg("tasks", "purge", "--state", "failed", "--yes")  # the write key
    assert refused.exit_code == 6
    assert refused.stderr.startswith("taskgate: error: the API key may not do this")
    assert refused.stderr.count("\n") == 1
    assert task_ids(tg, admin) == {failed["id"]}
