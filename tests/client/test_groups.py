"""Groups, suspend and resume, reservations, children and history through `AsyncClient`
and `Client`, against the real ASGI app and a worker in process: a group submitted as
one, followed to its end and changed as one; the list filters that go with them; and the
problems each can answer."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import timedelta

import pytest

from taskgate.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Group,
    GroupTask,
    GroupWaitTimeout,
    Limit,
    NotFound,
    Reservation,
    State,
    SubmittedGroup,
    UnprocessableEntity,
)
from taskgate.retention import RetentionService

from .conftest import LoopThread, Stack

LATER: GroupTask = {"type": "sleep", "params": {"seconds": 60}, "delay": timedelta(hours=1)}
"""A task that waits an hour before it may start: it stays scheduled through a test."""


# -- AsyncClient -----------------------------------------------------------------------


async def test_a_group_is_submitted_followed_to_its_end_and_listed(aclient: AsyncClient) -> None:
    submitted = await aclient.submit_group(
        [
            {"type": "add", "params": {"a": 1, "b": 2}},
            {"type": "noop", "priority": 3, "labels": {"k": "v"}},
        ]
    )
    assert isinstance(submitted, SubmittedGroup)
    assert submitted.group == f"/v1/groups/{submitted.id}"
    assert [t.type for t in submitted.tasks] == ["add", "noop"]
    assert {t.group_id for t in submitted.tasks} == {submitted.id}
    assert submitted.tasks[1].priority == 3 and submitted.tasks[1].labels == {"k": "v"}

    done = await aclient.wait_group(submitted, timeout=30)
    assert isinstance(done, Group) and done.id == submitted.id
    assert done.ended and done.total == done.finished == 2
    assert done.count("succeeded") == 2 and done.count("queued") == 0
    assert set(done.states) >= {s.value for s in State}  # every state, 0 for most
    assert done.tasks is not None and f"group_id={submitted.id}" in done.tasks
    assert await aclient.get_group(submitted.id) == done
    listed = {t.id async for t in aclient.list(group_id=submitted, archived="any")}
    assert listed == {t.id for t in submitted.tasks}
    page = await aclient.list_page(group_id=done)
    assert {t.id for t in page.items} == listed


async def test_watch_group_shows_each_change_until_every_task_ended(
    aclient: AsyncClient,
) -> None:
    submitted = await aclient.submit_group([{"type": "talk", "params": {"pause": 0.05}}] * 2)
    seen = [g async for g in aclient.watch_group(submitted.id, poll=0.05)]
    assert seen[-1].ended and seen[-1].count("succeeded") == 2
    assert all(not g.ended for g in seen[:-1])
    assert all(a != b for a, b in itertools.pairwise(seen))  # changes only


async def test_wait_group_times_out_with_the_summary_as_last_seen(aclient: AsyncClient) -> None:
    submitted = await aclient.submit_group([LATER, {"type": "noop"}])
    with pytest.raises(GroupWaitTimeout) as caught:
        await aclient.wait_group(submitted, timeout=0.3, poll=0.05)
    assert caught.value.group.id == submitted.id and not caught.value.group.ended
    assert caught.value.group.count("scheduled") == 1 and caught.value.timeout == 0.3
    assert f"group {submitted.id}: 1 of 2 tasks still going" in str(caught.value)
    with pytest.raises(GroupWaitTimeout):  # timeout=0: one look, no waiting
        await aclient.wait_group(submitted, timeout=0)
    await aclient.cancel_group(submitted)


async def test_a_group_is_suspended_resumed_and_canceled_as_one(aclient: AsyncClient) -> None:
    submitted = await aclient.submit_group([LATER, LATER])
    suspended = await aclient.suspend_group(submitted)
    assert suspended.count("suspended") == 2 and not suspended.ended
    in_list = {t.id async for t in aclient.list(state="suspended", group_id=submitted.id)}
    assert in_list == {t.id for t in submitted.tasks}
    resumed = await aclient.resume_group(submitted.id)
    assert resumed.count("scheduled") == 2 and resumed.count("suspended") == 0
    canceled = await aclient.cancel_group(resumed)
    assert canceled.count("canceled") == 2 and canceled.ended


async def test_a_task_is_suspended_and_resumed(aclient: AsyncClient) -> None:
    task = await aclient.submit("noop", delay=3600)
    suspended = await aclient.suspend(task)
    assert suspended.state is State.SUSPENDED and not suspended.terminal
    with pytest.raises(Conflict):
        await aclient.suspend(task)  # not queued or scheduled
    assert [t.id async for t in aclient.list(state="suspended")] == [task.id]
    resumed = await aclient.resume(task.id)
    assert resumed.state is State.SCHEDULED
    with pytest.raises(Conflict):
        await aclient.resume(task)  # not suspended
    await aclient.cancel(task)
    with pytest.raises(Conflict):
        await aclient.suspend(task)  # ended


async def test_submit_options_reserve_resources_and_join_a_group(aclient: AsyncClient) -> None:
    task = await aclient.submit(
        "noop",
        delay=3600,
        group_id="nightly",
        exclusive_resources=["repository:1", "repository:2"],
        shared_resources="remote:9",  # one name, or several
    )
    assert task.group_id == "nightly"
    assert task.reserved_resources == Reservation(("repository:1", "repository:2"), ("remote:9",))
    plain = await aclient.submit_and_wait("noop", group_id="nightly")
    assert plain.reserved_resources is None and plain.children == ()
    assert [t.id async for t in aclient.list(resource="remote:9")] == [task.id]
    nightly = {t.id async for t in aclient.list(group_id="nightly")}
    assert nightly == {task.id, plain.id}
    assert (await aclient.get_group("nightly")).total == 2
    await aclient.cancel_group("nightly")


async def test_children_and_the_operations_reservations(aclient: AsyncClient) -> None:
    parent = await aclient.submit_and_wait("fan_out", name="a", parts=2)
    assert parent.result == 2 and len(parent.children) == 2
    assert parent.reserved_resources == Reservation(
        exclusive=("fan:a",), limits=(Limit("fan_out:default", 2),)
    )
    children = [t async for t in aclient.list(parent_id=parent)]
    assert sorted(t.id for t in children) == sorted(parent.children)
    assert {(t.type, t.parent_id, t.state) for t in children} == {
        ("noop", parent.id, State.SUCCEEDED)
    }
    assert [t.id async for t in aclient.list(resource="fan:a")] == [parent.id]

    ops = {op.name: op for op in await aclient.operations()}
    fan = ops["fan_out"]
    assert fan.exclusive == ("fan:{name}",) and fan.shared == ()
    assert [(lim.max, lim.per) for lim in fan.limits] == [(2, "{tenant}")]
    assert fan.archive_after == 86400 and fan.purge_after == 30 * 86400
    assert ops["noop"].limits == ()


async def test_history_is_listed_only_when_asked_for(aclient: AsyncClient, stack: Stack) -> None:
    old = await aclient.submit_and_wait("noop")
    await RetentionService(stack.service, archive_after=0, purge_after=math.inf).run()
    live = await aclient.submit("noop", delay=3600)
    assert [t.id async for t in aclient.list()] == [live.id]
    assert [t.id async for t in aclient.list(archived=False)] == [live.id]
    archived = [t async for t in aclient.list(archived=True)]
    assert [t.id for t in archived] == [old.id] and archived[0].archived
    assert [t.id async for t in aclient.list(archived="any")] == [live.id, old.id]
    assert (await aclient.get(old)).archived and not live.archived
    await aclient.cancel(live)


async def test_group_problems_become_typed_errors(aclient: AsyncClient) -> None:
    with pytest.raises(UnprocessableEntity) as invalid:
        await aclient.submit_group([{"type": "noop"}, {"type": "add", "params": {"b": 1}}])
    assert [e.field for e in invalid.value.errors] == ["tasks.1.params.a"]
    with pytest.raises(UnprocessableEntity) as own_group:
        await aclient.submit_group([{"type": "noop", "group_id": "mine"}])
    assert [e.field for e in own_group.value.errors] == ["tasks.0.group_id"]
    assert [t async for t in aclient.list()] == []  # all or nothing

    for call in (
        aclient.get_group("no-such-group"),
        aclient.cancel_group(str(uuid.uuid4())),
        aclient.suspend_group("no-such-group"),
        aclient.resume_group("no-such-group"),
        aclient.wait_group("no-such-group"),
    ):
        with pytest.raises(NotFound) as missing:
            await call
        assert missing.value.type.endswith("/group-not-found")
    with pytest.raises(BadRequest):
        await aclient.get_group("bad id")
    with pytest.raises(UnprocessableEntity) as bad_option:
        await aclient.submit("noop", group_id="a b", exclusive_resources=[""])
    assert {e.field for e in bad_option.value.errors} == {"group_id", "exclusive_resource"}
    with pytest.raises(BadRequest):
        [t async for t in aclient.list(parent_id="not-a-task-id")]


async def test_bad_arguments_are_refused_before_anything_is_sent(aclient: AsyncClient) -> None:
    with pytest.raises(ValueError, match="at least one task"):
        await aclient.submit_group([])
    with pytest.raises(TypeError, match="list of task bodies"):
        await aclient.submit_group({"type": "noop"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"tasks\[1\] needs a 'type'"):
        await aclient.submit_group([{"type": "noop"}, {"params": {}}])  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match=r"tasks\[0\] must be a mapping"):
        await aclient.submit_group(["noop"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="archived"):
        aclient.list(archived="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot be filtered by colour"):
        aclient.list(colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        await aclient.get_group(" ")
    with pytest.raises(ValueError):
        await aclient.wait_group("g", timeout=-1)
    with pytest.raises(ValueError):
        await aclient.wait_group("g", poll=0)


# -- Client ----------------------------------------------------------------------------


def test_sync_client_groups(client: Client, loop_thread: LoopThread) -> None:
    submitted = client.submit_group(
        [{"type": "add", "params": {"a": 2}, "timeout": timedelta(seconds=30)}, LATER]
    )
    assert submitted.tasks[0].timeout == 30 and submitted.tasks[1].state is State.SCHEDULED
    assert client.get_group(submitted).total == 2
    suspended = client.suspend_group(submitted)
    assert suspended.count("suspended") == 1
    assert client.resume_group(submitted).count("scheduled") == 1
    with pytest.raises(GroupWaitTimeout) as caught:
        client.wait_group(submitted, timeout=0.3, poll=0.05)
    assert caught.value.group.count("succeeded") == 1
    assert client.cancel_group(submitted.id).count("canceled") == 1
    done = client.wait_group(submitted)
    assert done.ended and done.finished == 2
    watched = list(client.watch_group(submitted))
    assert watched == [done]  # already ended: one look
    assert {t.id for t in client.list(group_id=submitted)} == {t.id for t in submitted.tasks}

    task = client.submit("noop", delay=3600, shared_resources=["disk"], group_id="g1")
    assert client.suspend(task).state is State.SUSPENDED
    assert client.resume(task).state is State.SCHEDULED
    assert [t.id for t in client.list(resource="disk", group_id="g1")] == [task.id]
    assert [t.id for t in client.list_page(archived="any", resource="disk").items] == [task.id]
    client.cancel(task)
    with pytest.raises(NotFound):
        client.get_group("nope")
