"""`Client` (blocking) against the real ASGI app and a real worker, in process: the app
runs on a loop in a background thread (`LoopThread`), the test in the main thread."""

from __future__ import annotations

import uuid

import pytest

from taskgate.client import (
    BadRequest,
    Client,
    Conflict,
    NotFound,
    State,
    Task,
    TaskCanceled,
    TaskFailed,
    TaskTimedOut,
    UnprocessableEntity,
    WaitTimeout,
)

from .conftest import LoopThread


def running(client: Client, task: Task) -> Task:
    changes = client.watch(task)
    try:
        for seen in changes:
            if seen.state == State.RUNNING and seen.progress:
                return seen
    finally:
        changes.close()
    raise AssertionError(f"task {task.id} ended before it was seen running")


def test_submit_then_wait(client: Client) -> None:
    task = client.submit("add", a=20, b=22)
    assert task.params == {"a": 20, "b": 22} and task.object_id == "20"
    done = client.wait(task)
    assert done.state is State.SUCCEEDED and done.result == 42
    assert client.submit_and_wait("add", {"a": 1}).result == 1


def test_wait_raises_each_typed_error(client: Client) -> None:
    with pytest.raises(TaskFailed) as failed:
        client.submit_and_wait("fail", message="nope")
    assert failed.value.error_type == "ValueError" and failed.value.error_message == "nope"
    assert failed.value.traceback and "ValueError: nope" in failed.value.traceback

    with pytest.raises(TaskTimedOut):
        client.submit_and_wait("sleep", seconds=60, timeout=0.2)

    sleeper = client.submit("sleep", seconds=60)
    with pytest.raises(WaitTimeout) as waited:
        client.wait(sleeper, timeout=0.2)
    assert waited.value.task.id == sleeper.id
    running(client, sleeper)
    client.cancel(sleeper)
    with pytest.raises(TaskCanceled) as canceled:
        client.wait(sleeper)
    assert canceled.value.task.state is State.CANCELED


def test_watch(client: Client) -> None:
    task = client.submit("talk", lines=2, pause=0.05)
    states = [t.state for t in client.watch(task)]
    assert states[-1] is State.SUCCEEDED and State.SUCCEEDED not in states[:-1]


def test_list_pages(client: Client) -> None:
    ids = [client.submit("noop", labels={"batch": "s1"}).id for _ in range(5)]
    assert [t.id for t in client.list(labels={"batch": "s1"}, page_size=2)] == ids[::-1]
    assert [t.id for t in client.list(labels={"batch": "s1"}, limit=1)] == ids[-1:]
    page = client.list_page(labels={"batch": "s1"}, page_size=4)
    assert len(page.items) == 4 and page.next_cursor is not None


def test_log_and_follow(client: Client) -> None:
    task = client.submit_and_wait("talk", lines=3)
    assert [line.t for line in client.log(task).lines] == ["line 1", "line 2", "line 3"]
    assert [line.n for line in client.log(task, start=1, limit=1).lines] == [2]
    with client.follow_log(task) as stream:
        assert [line.n for line in stream] == [1, 2, 3]
    assert stream.task is not None and stream.task.result == 3


def test_cancel_acknowledge_delete(client: Client, loop_thread: LoopThread) -> None:
    task = client.submit("sleep", seconds=60, delay=3600)
    assert client.cancel(task).state is State.CANCELED
    with pytest.raises(Conflict):
        client.cancel(task)
    assert client.acknowledge(task).acknowledged_at is not None
    client.delete(task)
    with pytest.raises(NotFound):
        client.get(task)


def test_problems(client: Client) -> None:
    with pytest.raises(NotFound):
        client.get(str(uuid.uuid4()))
    with pytest.raises(BadRequest) as bad:
        client.get("42")
    assert bad.value.status == 400
    with pytest.raises(UnprocessableEntity) as invalid:
        client.submit("add")
    assert [e.field for e in invalid.value.errors] == ["a"]


def test_operations(client: Client) -> None:
    assert "talk" in {op.name for op in client.operations()}
