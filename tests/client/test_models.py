"""The SDK's records: every field of the task (and schedule) JSON, read tolerantly."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import taskgate.client
from taskgate.client import (
    ConcurrencyLimit,
    ErrorInfo,
    Group,
    InvalidResponse,
    Limit,
    LogLine,
    LogPage,
    Operation,
    Page,
    Reservation,
    Schedule,
    SchedulePage,
    State,
    SubmittedGroup,
    Task,
    TaskEvent,
)

FULL: dict[str, Any] = {
    "id": "01a2064e-d1f6-7171-8b27-b4ec45249ab8",
    "upid": "UPID:vm:00007EE0:6F9DA8B3:6B03A9AE:add:1:alice@taskgate:",
    "type": "add",
    "object_id": "1",
    "tenant": "acme",
    "user": "alice",
    "user_id": 7,
    "node": "vm",
    "worker": "vm-w1-123",
    "state": "failed",
    "detailed_state": "adding",
    "progress": 50,
    "progress_detail": {"total": 2, "done": 1},
    "message": "half way",
    "params": {"a": 1, "b": 2},
    "result": None,
    "error": {"type": "ValueError", "message": "bad", "traceback": "Traceback ...\n"},
    "warnings": 2,
    "created_resources": {"vm": ["100", "101"]},
    "attempt": 1,
    "max_attempts": 3,
    "timeout": 30.0,
    "cancel_requested_at": None,
    "cancel_attempts": 0,
    "priority": 5,
    "idempotency_key": "k1",
    "request_id": "r1",
    "group_id": None,
    "parent_id": None,
    "schedule_id": None,
    "children": ["01a2064e-d1f6-7171-8b27-b4ec45249ab9", "01a2064e-d1f6-7171-8b27-b4ec45249aba"],
    "labels": {"env": "prod"},
    "reserved_resources": {
        "exclusive": ["repository:1"],
        "shared": ["remote:9", "remote:10"],
        "limits": [{"key": "sync:acme", "max": 2}],
    },
    "acknowledged_at": "2025-01-31T12:00:03Z",
    "acknowledged_by": "bob",
    "created_at": "2025-01-31T12:00:00Z",
    "scheduled_at": None,
    "started_at": "2025-01-31T12:00:01.500000Z",
    "updated_at": "2025-01-31T12:00:02+00:00",
    "finished_at": "2025-01-31T12:00:02Z",
    "archived": False,
    "log_count": 4,
}


def test_every_field_of_the_task_json() -> None:
    task = Task.from_json(FULL)
    assert task.id == FULL["id"]
    assert task.state == State.FAILED and task.state == "failed"
    assert task.terminal and not task.succeeded
    assert task.user_id == 7 and task.tenant == "acme" and task.user == "alice"
    assert task.progress == 50.0 and isinstance(task.progress, float)
    assert task.error == ErrorInfo("ValueError", "bad", "Traceback ...\n")
    assert task.created_resources == {"vm": ["100", "101"]}
    assert task.labels == {"env": "prod"}
    assert task.created_at == datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    assert task.started_at == datetime(2025, 1, 31, 12, 0, 1, 500000, tzinfo=UTC)
    assert task.acknowledged_by == "bob" and task.acknowledged_at is not None
    assert task.log_count == 4 and task.max_attempts == 3 and task.priority == 5
    assert task.children == tuple(FULL["children"])
    assert task.reserved_resources == Reservation(
        exclusive=("repository:1",),
        shared=("remote:9", "remote:10"),
        limits=(Limit("sync:acme", 2),),
    )
    # every field the server sends has a field here
    names = set(Task.__dataclass_fields__)
    assert set(FULL) <= names


def test_unknown_fields_and_states_from_a_newer_server() -> None:
    task = Task.from_json({**FULL, "state": "paused", "shiny_new_field": [1, 2]})
    assert task.state == "paused" and not isinstance(task.state, State)
    assert not task.terminal


def test_a_minimal_task_takes_defaults() -> None:
    task = Task.from_json({"id": "x", "type": "noop", "state": "queued"})
    assert task.state is State.QUEUED
    assert task.params == {} and task.labels == {} and task.error is None
    assert task.created_at is None and task.max_attempts == 1
    assert task.children == () and task.reserved_resources is None and not task.archived


def test_wrongly_typed_optional_fields_are_dropped() -> None:
    task = Task.from_json(
        {
            "id": "x",
            "type": "noop",
            "state": "running",
            "progress": "lots",
            "created_at": "yesterday",
            "labels": ["a"],
            "user_id": True,
            "error": "no",
            "children": "x",
            "reserved_resources": ["a"],
            "archived": "yes",
        }
    )
    assert task.progress is None and task.created_at is None
    assert task.labels == {} and task.user_id is None and task.error is None
    assert task.children == () and task.reserved_resources is None and not task.archived
    odd = Task.from_json(
        {
            **FULL,
            "children": ["a", 7, None],
            "reserved_resources": {"shared": "x", "limits": [{"key": "k"}, "no"]},
        }
    )
    assert odd.children == ("a",)
    assert odd.reserved_resources == Reservation(limits=(Limit("k", 0),))


@pytest.mark.parametrize(
    "doc", [{"type": "noop", "state": "queued"}, {"id": "x", "state": "queued"}, [], "x", None]
)
def test_a_task_without_its_essentials_is_an_invalid_response(doc: Any) -> None:
    with pytest.raises(InvalidResponse):
        Task.from_json(doc)


def test_log_page_and_line() -> None:
    page = LogPage.from_json(
        {
            "task_id": "t",
            "start": 1,
            "total": 3,
            "lines": [{"n": 2, "t": "two", "ts": "2025-01-31T12:00:00Z", "level": "warning"}],
        }
    )
    assert page.total == 3 and page.start == 1
    assert page.lines == [LogLine(2, "two", datetime(2025, 1, 31, 12, tzinfo=UTC), "warning")]
    assert page.lines[0].text == "two"
    with pytest.raises(InvalidResponse):
        LogLine.from_json({"t": "no number"})


def test_page() -> None:
    page = Page.from_json({"items": [FULL], "next_cursor": "abc", "extra": 1})
    assert [t.id for t in page.items] == [FULL["id"]] and page.next_cursor == "abc"
    assert Page.from_json({"items": [], "next_cursor": None}).next_cursor is None
    with pytest.raises(InvalidResponse):
        Page.from_json({"tasks": []})


def test_task_event() -> None:
    event = TaskEvent.from_json(
        {
            "id": "t1",
            "type": "add",
            "state": "succeeded",
            "progress": 100,
            "message": None,
            "detailed_state": None,
            "updated_at": "2025-01-31T12:00:00Z",
            "version": 4,
            "new": True,
        },
        event_id="opaque-7",
    )
    assert event.task_id == "t1" and event.terminal and event.version == 4
    assert event.event_id == "opaque-7"


def test_operation() -> None:
    op = Operation.from_json(
        {"name": "add", "parameters": {"type": "object"}, "max_attempts": 3, "isolation": "async"}
    )
    assert op.name == "add" and op.max_attempts == 3 and op.parameters == {"type": "object"}
    assert op.timeout is None and op.retry_on_worker_loss is False
    assert op.exclusive == op.shared == op.limits == ()  # an older server: defaults
    assert op.archive_after is None and op.purge_after is None
    reserving = Operation.from_json(
        {
            "name": "sync",
            "exclusive": ["repository:{repository_id}"],
            "shared": ["remote:{remote_id}"],
            "limits": [{"name": "sync", "max": 2, "per": "{tenant}"}, {"max": 1, "per": None}],
            "archive_after": 3600,
            "purge_after": None,
        }
    )
    assert reserving.exclusive == ("repository:{repository_id}",)
    assert reserving.shared == ("remote:{remote_id}",)
    assert reserving.limits == (ConcurrencyLimit("sync", 2, "{tenant}"), ConcurrencyLimit("", 1))
    assert reserving.archive_after == 3600.0 and reserving.purge_after is None  # for ever


GROUP: dict[str, Any] = {
    "id": "01a20766-f93b-701c-9069-1f52aa0e4659",
    "total": 5,
    "ended": False,
    "states": {
        "queued": 1,
        "scheduled": 0,
        "suspended": 1,
        "running": 1,
        "canceling": 0,
        "succeeded": 1,
        "failed": 1,
        "canceled": 0,
        "timed_out": 0,
    },
    "tasks": "/v1/tasks?group_id=01a20766-f93b-701c-9069-1f52aa0e4659&archived=any",
}


def test_group() -> None:
    group = Group.from_json({**GROUP, "new": 1})
    assert (group.id, group.total, group.ended) == (GROUP["id"], 5, False)
    assert group.states == GROUP["states"] and group.tasks == GROUP["tasks"]
    assert group.finished == 2 and group.count("suspended") == 1 and group.count("paused") == 0
    assert set(GROUP) <= set(Group.__dataclass_fields__)
    # a server that sends less: the total and whether it ended come from the states
    done = Group.from_json({"id": "g", "states": {"succeeded": 2, "failed": "x"}})
    assert (done.total, done.ended, done.states) == (2, True, {"succeeded": 2, "failed": 0})
    with pytest.raises(InvalidResponse):
        Group.from_json({"total": 1})


def test_submitted_group() -> None:
    submitted = SubmittedGroup.from_json(
        {"id": "g", "tasks": [FULL], "group": "/v1/groups/g", "new": 1}
    )
    assert [t.id for t in submitted.tasks] == [FULL["id"]] and submitted.group == "/v1/groups/g"
    for doc in ({"id": "g"}, {"tasks": []}, []):
        with pytest.raises(InvalidResponse):
            SubmittedGroup.from_json(doc)


SCHEDULE: dict[str, Any] = {
    "id": "01a20766-f93b-701c-9069-1f52aa0e4659",
    "name": "nightly",
    "tenant": "acme",
    "user": "alice",
    "type": "vzdump",
    "params": {"vmid": 100},
    "options": {"priority": 7, "labels": {"team": "ops"}},
    "recurrence": "0 3 * * *",
    "timezone": "Europe/Paris",
    "enabled": True,
    "overlap": "queue",
    "failure_threshold": 3,
    "schedule_threshold": 60,
    "consecutive_failures": 1,
    "total_run_count": 4,
    "remaining_runs": None,
    "first_run": "2025-01-31T02:00:00Z",
    "next_run": "2025-02-04T02:00:00Z",
    "last_run_at": "2025-02-03T02:00:00.250000Z",
    "last_task_id": "01a20766-f93d-74a8-b5d5-f359feddb598",
    "pending_run": None,
    "disabled_reason": None,
    "created_at": "2025-01-30T12:00:00Z",
    "updated_at": "2025-02-03T02:00:01+00:00",
    "version": 9,
}


def test_every_field_of_the_schedule_json() -> None:
    schedule = Schedule.from_json(SCHEDULE)
    assert (schedule.id, schedule.name, schedule.type) == (
        SCHEDULE["id"],
        "nightly",
        "vzdump",
    )
    assert schedule.params == {"vmid": 100} and schedule.options["priority"] == 7
    assert schedule.enabled and schedule.overlap == "queue"
    assert schedule.failure_threshold == 3 and schedule.schedule_threshold == 60.0
    assert isinstance(schedule.schedule_threshold, float)
    assert (schedule.consecutive_failures, schedule.total_run_count) == (1, 4)
    assert schedule.next_run == datetime(2025, 2, 4, 2, tzinfo=UTC)
    assert schedule.last_run_at == datetime(2025, 2, 3, 2, 0, 0, 250000, tzinfo=UTC)
    assert schedule.updated_at is not None and schedule.updated_at.tzinfo is not None
    assert schedule.remaining_runs is None and schedule.version == 9
    assert set(SCHEDULE) <= set(Schedule.__dataclass_fields__)


def test_a_minimal_schedule_takes_defaults_and_needs_its_essentials() -> None:
    schedule = Schedule.from_json({"id": "s", "name": "n", "type": "noop", "new": 1})
    assert schedule.enabled and schedule.timezone == "UTC" and schedule.overlap == "skip"
    assert schedule.params == {} and schedule.next_run is None
    paused = Schedule.from_json({**SCHEDULE, "enabled": False, "next_run": "soon"})
    assert not paused.enabled and paused.next_run is None
    for doc in ({"name": "n", "type": "t"}, {"id": "s", "type": "t"}, {"id": "s", "name": "n"}):
        with pytest.raises(InvalidResponse):
            Schedule.from_json(doc)


def test_schedule_page() -> None:
    page = SchedulePage.from_json({"items": [SCHEDULE], "next_after": SCHEDULE["id"]})
    assert [s.name for s in page.items] == ["nightly"] and page.next_after == SCHEDULE["id"]
    assert SchedulePage.from_json({"items": [], "next_after": None}).next_after is None
    with pytest.raises(InvalidResponse):
        SchedulePage.from_json({"schedules": []})


def test_records_are_frozen() -> None:
    task = Task.from_json(FULL)
    with pytest.raises(AttributeError):
        task.state = "queued"  # type: ignore[misc]


def test_the_sdk_imports_nothing_of_the_server() -> None:
    """`taskgate.client` knows only the HTTP API: no module of it imports other
    taskgate modules (checked on the source, as imports inside functions count too)."""
    package = Path(taskgate.client.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            for name in names:
                if name.split(".")[0] == "taskgate" and not name.startswith("taskgate.client"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
