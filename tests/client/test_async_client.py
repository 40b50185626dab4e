"""`AsyncClient` against the real ASGI app and a real worker, in process."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import httpx
import pytest

from taskgate.client import (
    AsyncClient,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    State,
    Task,
    TaskCanceled,
    TaskFailed,
    TaskTimedOut,
    UnprocessableEntity,
    WaitTimeout,
)

from .conftest import BASE, FAST_RETRY, Stack


class Counting(httpx.ASGITransport):
    """The ASGI transport, recording each request."""

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)


@pytest.fixture
def counting(stack: Stack) -> Counting:
    return Counting(stack.api)


@pytest.fixture
async def counted(counting: Counting) -> Any:
    # polls shorter than the server's max_wait (10 s), so none is refused
    async with AsyncClient(BASE, transport=counting, retry=FAST_RETRY, long_poll=5) as client:
        yield client


async def running(client: AsyncClient, task: Task) -> Task:
    """The task once a worker runs it."""
    async with contextlib.aclosing(client.watch(task)) as changes:
        async for seen in changes:
            if seen.state == State.RUNNING and seen.progress:
                return seen
    raise AssertionError(f"task {task.id} ended before it was seen running")


# -- submit and wait -------------------------------------------------------------------


async def test_submit_then_wait_returns_the_succeeded_task(aclient: AsyncClient) -> None:
    task = await aclient.submit("add", a=2, b=3)
    assert task.type == "add" and task.params == {"a": 2, "b": 3}
    assert task.state in (State.QUEUED, State.RUNNING) and task.idempotency_key
    done = await aclient.wait(task.id)
    assert done.state is State.SUCCEEDED and done.result == 5 and done.id == task.id
    assert done.finished_at is not None and done.progress == 100  # set on success


async def test_the_task_has_every_field_the_server_sends(stack: Stack) -> None:
    """The SDK's Task keeps up with the server's task JSON (and its events')."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.api), base_url=BASE
    ) as raw:
        submitted = await raw.post("/v1/operations/add", json={"a": 1})
        doc = submitted.json()
    assert set(doc) <= set(Task.__dataclass_fields__), set(doc) - set(Task.__dataclass_fields__)
    parsed = Task.from_json(doc)
    assert {k: getattr(parsed, k) for k in ("id", "upid", "tenant", "user", "params")} == {
        k: doc[k] for k in ("id", "upid", "tenant", "user", "params")
    }


async def test_submit_options_reach_the_task(aclient: AsyncClient) -> None:
    task = await aclient.submit(
        "sleep",
        {"seconds": 0},
        object_id="vm-100",
        priority=7,
        labels={"env": "test"},
        max_attempts=2,
        timeout=30,
        delay=3600,
    )
    assert task.object_id == "vm-100" and task.priority == 7 and task.labels == {"env": "test"}
    assert task.max_attempts == 2 and task.timeout == 30
    assert task.state is State.SCHEDULED and task.scheduled_at is not None
    await aclient.cancel(task)


async def test_submit_and_wait(aclient: AsyncClient) -> None:
    done = await aclient.submit_and_wait("add", {"a": 40}, b=2)
    assert done.result == 42


async def test_an_idempotency_key_returns_the_first_task(aclient: AsyncClient) -> None:
    key = f"order-{uuid.uuid4()}"
    first = await aclient.submit("add", a=1, idempotency_key=key)
    again = await aclient.submit("add", a=1, idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(UnprocessableEntity):  # the same key for another request
        await aclient.submit("add", a=2, idempotency_key=key)


async def test_wait_raises_task_failed_with_the_remote_error(aclient: AsyncClient) -> None:
    task = await aclient.submit("fail", message="disk on fire")
    with pytest.raises(TaskFailed) as caught:
        await aclient.wait(task)
    err = caught.value
    assert err.error_type == "ValueError" and err.error_message == "disk on fire"
    assert err.traceback is not None and "raise ValueError(message)" in err.traceback
    assert err.task.id == task.id and err.task.state is State.FAILED
    assert any("Remote traceback" in note for note in err.__notes__)
    assert str(err) == f"task {task.id} (fail) failed: ValueError: disk on fire"


async def test_wait_raises_task_canceled(aclient: AsyncClient) -> None:
    task = await aclient.submit("sleep", seconds=60)
    await running(aclient, task)
    canceling = await aclient.cancel(task)
    assert canceling.state in (State.CANCELING, State.CANCELED)
    with pytest.raises(TaskCanceled) as caught:
        await aclient.wait(task)
    assert caught.value.task.state is State.CANCELED


async def test_wait_raises_task_timed_out(aclient: AsyncClient) -> None:
    task = await aclient.submit("sleep", seconds=60, timeout=0.2)
    with pytest.raises(TaskTimedOut) as caught:
        await aclient.wait(task)
    assert caught.value.task.state == "timed_out"
    assert "ran past its timeout of 0.2 s" in str(caught.value)


async def test_wait_raises_wait_timeout_with_the_task_as_last_seen(aclient: AsyncClient) -> None:
    task = await aclient.submit("sleep", seconds=60)
    with pytest.raises(WaitTimeout) as caught:
        await aclient.wait(task, timeout=0.3)
    assert caught.value.task.id == task.id and not caught.value.task.terminal
    assert caught.value.timeout == 0.3
    with pytest.raises(WaitTimeout):  # timeout=0: one look, no waiting
        await aclient.wait(task, timeout=0)
    await aclient.cancel(task)


async def test_wait_only_long_polls(counted: AsyncClient, counting: Counting, stack: Stack) -> None:
    """Every request of a wait is a ?wait long poll, and each answer is a change: no
    more requests than the task has versions."""
    task = await counted.submit("talk", lines=3, pause=0.05)
    counting.requests.clear()
    await counted.wait(task)
    assert counting.requests
    assert all("wait" in r.url.params for r in counting.requests)
    assert all("if-none-match" in r.headers for r in counting.requests[1:])
    version = (await stack.service.get(task.id)).version
    assert len(counting.requests) <= version


async def test_polls_adapt_to_a_shorter_server_maximum(stack: Stack, counting: Counting) -> None:
    async with AsyncClient(BASE, transport=counting, long_poll=30) as client:
        task = await client.submit("talk", lines=1, pause=0.05)
        await client.wait(task)
    waits = [r.url.params.get("wait") for r in counting.requests[1:]]
    assert waits[0] == "30.000" and set(waits[1:]) == {"10.000"}  # the server's max_wait


async def test_watch_shows_each_change_until_the_end(aclient: AsyncClient) -> None:
    task = await aclient.submit("talk", lines=2, pause=0.05)
    seen = [t async for t in aclient.watch(task)]
    assert seen[-1].state is State.SUCCEEDED and seen[-1].result == 2
    assert all(not t.terminal for t in seen[:-1])
    with pytest.raises(WaitTimeout):
        sleeper = await aclient.submit("sleep", seconds=60)
        async for _ in aclient.watch(sleeper, timeout=0.2):
            pass
    await aclient.cancel(sleeper)


# -- reading ---------------------------------------------------------------------------


async def test_list_iterates_every_page(counted: AsyncClient, counting: Counting) -> None:
    ids = [(await counted.submit("noop", labels={"batch": "b1"})).id for _ in range(7)]
    counting.requests.clear()
    listed = [t.id async for t in counted.list(labels={"batch": "b1"}, page_size=3)]
    assert listed == ids[::-1]  # newest first, all of them
    assert len(counting.requests) == 3
    assert [t.id async for t in counted.list(labels={"batch": "b1"}, limit=2)] == ids[:-3:-1]
    for t in ids:
        await counted.wait(t)
    done = [t async for t in counted.list(state=["succeeded"], type="noop")]
    assert {t.id for t in done} >= set(ids)
    assert [t async for t in counted.list(state="failed", type="noop")] == []


async def test_list_page_and_cursor(aclient: AsyncClient) -> None:
    ids = [(await aclient.submit("noop", labels={"batch": "b2"})).id for _ in range(3)]
    page = await aclient.list_page(labels={"batch": "b2"}, page_size=2)
    assert [t.id for t in page.items] == ids[:0:-1] and page.next_cursor
    last = await aclient.list_page(labels={"batch": "b2"}, page_size=2, cursor=page.next_cursor)
    assert [t.id for t in last.items] == ids[:1] and last.next_cursor is None


async def test_log_pages_and_all_lines(aclient: AsyncClient) -> None:
    task = await aclient.submit_and_wait("talk", lines=2500)
    some = await aclient.log(task, start=2, limit=2)
    assert [(line.n, line.t, line.level) for line in some.lines] == [
        (3, "line 3", "info"),
        (4, "line 4", "warning"),
    ]
    assert some.total == 2500 and some.start == 2
    everything = await aclient.log(task)  # pages through it
    assert [line.n for line in everything.lines] == list(range(1, 2501))
    rest = await aclient.log(task, start=2400)
    assert [line.n for line in rest.lines] == list(range(2401, 2501))


async def test_follow_log_of_an_ended_task(aclient: AsyncClient) -> None:
    """In process the whole stream comes at once (the task has ended); streaming while
    the task runs is tested against a real server."""
    task = await aclient.submit_and_wait("talk", lines=4)
    async with aclient.follow_log(task, start=1) as lines:
        texts = [line.t async for line in lines]
    assert texts == ["line 2", "line 3", "line 4"]
    assert lines.task is not None and lines.task.state is State.SUCCEEDED


async def test_operations(aclient: AsyncClient) -> None:
    ops = {op.name: op for op in await aclient.operations()}
    assert {"add", "fail", "sleep", "talk", "noop"} <= set(ops)
    assert ops["add"].parameters["required"] == ["a"] and ops["add"].isolation == "async"


# -- changing --------------------------------------------------------------------------


async def test_cancel_delete_and_their_conflicts(aclient: AsyncClient) -> None:
    task = await aclient.submit("sleep", seconds=60)
    with pytest.raises(Conflict):
        await aclient.delete(task)  # still going
    await aclient.cancel(task)
    with pytest.raises(TaskCanceled):
        await aclient.wait(task)
    with pytest.raises(Conflict) as caught:
        await aclient.cancel(task)  # already ended
    assert caught.value.status == 409 and "already ended" in caught.value.detail
    await aclient.delete(task)
    with pytest.raises(NotFound):
        await aclient.get(task)


async def test_acknowledge(aclient: AsyncClient) -> None:
    task = await aclient.submit_and_wait("noop")
    acked = await aclient.acknowledge(task)
    assert acked.acknowledged_at is not None and acked.state is State.SUCCEEDED
    assert task.id in {t.id async for t in aclient.list(acknowledged=True, type="noop")}
    other = await aclient.submit_and_wait("noop")
    assert await aclient.acknowledge_many([other]) == 1
    assert other.id not in {t.id async for t in aclient.list(acknowledged=False, type="noop")}


# -- problems --------------------------------------------------------------------------


async def test_problems_become_typed_errors(aclient: AsyncClient) -> None:
    with pytest.raises(NotFound) as not_found:
        await aclient.get(str(uuid.uuid4()))
    assert not_found.value.type.endswith("/task-not-found") and not_found.value.request_id
    with pytest.raises(BadRequest):
        await aclient.get("not-a-task-id")
    with pytest.raises(NotFound) as no_op:
        await aclient.submit("no.such.operation")
    assert no_op.value.type.endswith("/operation-not-found")
    with pytest.raises(UnprocessableEntity) as invalid:
        await aclient.submit("add", a="one", b=[2])
    assert {e.field for e in invalid.value.errors} == {"a", "b"}
    with pytest.raises(UnprocessableEntity) as option:
        await aclient.submit("add", a=1, max_attempts=0)
    assert [e.field for e in option.value.errors] == ["max_attempts"]
    with pytest.raises(PayloadTooLarge):
        await aclient.submit("talk", {"lines": 1, "pad": "x" * (2 * 1024 * 1024)})
