"""What the dashboard asks of the store: the task search (TaskFilter.q), the workers
with their running tasks, and the overview (states, the queue, endings over time)."""

from __future__ import annotations

import math

import pytest

from taskgate.errors import Conflict, InvalidFilter, InvalidRequest
from taskgate.model import State, TaskFilter
from taskgate.overview import ENDINGS, window
from taskgate.retention import RetentionService
from taskgate.service import Submission, TaskService

from .helpers import LEASE, WORKER, Clock, running

DAY = 86400.0


async def found(service: TaskService, q: str, **filters: object) -> list[str]:
    """Every id the search selects (newest first), following cursors with a small page."""
    flt = TaskFilter(q=q, **filters)  # type: ignore[arg-type]
    ids: list[str] = []
    cursor = None
    while True:
        page = await service.list(flt, cursor=cursor, limit=2)
        ids += [t.id for t in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


async def archive_all(service: TaskService, clock: Clock) -> None:
    clock.advance(DAY + 1)
    await RetentionService(service, archive_after=DAY, purge_after=30 * DAY).run()


# -- search ---------------------------------------------------------------------------


async def test_search_finds_by_id_object_id_label_value_and_label(service: TaskService) -> None:
    a = await service.submit("vzdump", {"vmid": 101}, labels={"env": "prod", "team": "db"})
    b = await service.submit("vzdump", {"vmid": 102}, labels={"env": "prod"})
    c = await service.submit("noop", {}, object_id="db", labels={"host": "101"})
    d = await service.submit("noop", {}, labels={"note": "a=b"})

    assert await found(service, a.id) == [a.id]
    assert await found(service, a.id.replace("-", "").upper()) == [a.id]
    assert await found(service, "101") == [c.id, a.id]  # c's label value, a's object
    assert await found(service, "prod") == [b.id, a.id]
    assert await found(service, "db") == [c.id, a.id]  # c's object, a's label value
    assert await found(service, "env=prod") == [b.id, a.id]
    assert await found(service, "team=db") == [a.id]
    assert await found(service, "env=db") == []
    assert await found(service, "a=b") == [d.id]  # a label's value holding '='
    assert await found(service, "pro") == []  # exact matches only
    assert await found(service, "=prod") == []  # no key: only the value "=prod" counts
    unknown = "01900000-0000-7000-8000-000000000000"
    assert await found(service, unknown) == []


async def test_search_combines_with_the_other_filters(service: TaskService) -> None:
    busy = await running(service, "noop", object_id="7", tenant="acme")
    first = await service.submit("vzdump", {"vmid": 7}, tenant="acme")
    other = await service.submit("vzdump", {"vmid": 7}, tenant="other")
    labelled = await service.submit("noop", {}, tenant="acme", labels={"vm": "7"})

    assert await found(service, "7") == [labelled.id, other.id, first.id, busy.id]
    assert await found(service, "7", tenant="acme") == [labelled.id, first.id, busy.id]
    assert await found(service, "7", states=(State.RUNNING,)) == [busy.id]
    assert await found(service, "7", types=("vzdump",), tenant="other") == [other.id]
    assert await found(service, "vm=7", labels=(("vm", "7"),)) == [labelled.id]
    assert await found(service, first.id, tenant="other") == []
    page = await service.list(TaskFilter(q="7"), limit=3)
    rest = await service.list(TaskFilter(q="7"), cursor=page.next_cursor, limit=3)
    assert [t.id for t in rest.items] == [busy.id] and rest.next_cursor is None


async def test_search_reaches_history_and_forgets_deleted_tasks(
    service: TaskService, clock: Clock
) -> None:
    old = await running(service, "noop", labels={"ticket": "T-1"})
    assert await service.finish(old, State.FAILED) is not None
    await archive_all(service, clock)
    new = await service.submit("noop", {}, labels={"ticket": "T-1"})

    assert await found(service, "T-1") == [new.id]  # the hot table, by default
    assert await found(service, "T-1", archived=True) == [old.id]
    assert await found(service, "ticket=T-1", archived=None) == [new.id, old.id]
    assert await found(service, old.id, archived=None) == [old.id]

    await service.delete(old.id)
    assert await found(service, "T-1", archived=None) == [new.id]
    await service.cancel(new.id)
    assert await service.purge(states=(State.CANCELED,)) == 1
    assert await found(service, "T-1", archived=None) == []


async def test_a_search_is_checked(service: TaskService) -> None:
    with pytest.raises(InvalidFilter):
        await service.list(TaskFilter(q=""))
    with pytest.raises(InvalidFilter):
        await service.list(TaskFilter(q="x" * 1001))


# -- workers --------------------------------------------------------------------------


async def test_workers_show_their_running_tasks_and_whether_they_are_alive(
    service: TaskService, clock: Clock
) -> None:
    await service.heartbeat("b-w1", lease=LEASE, pid=11, concurrency=4, task_ids=())
    await service.heartbeat(WORKER, lease=LEASE, pid=10, concurrency=8, task_ids=())
    first = await running(service, "noop")
    second = await running(service, "noop")
    await running(service, "noop", worker="b-w1")
    await service.cancel(second.id)  # canceling: its handler still runs
    assert await service.finish(first, State.SUCCEEDED) is not None
    await service.submit("noop", {})  # waiting: nobody's
    clock.advance(LEASE / 2)
    await service.heartbeat("b-w1", lease=LEASE, pid=11, concurrency=4, task_ids=())
    clock.advance(LEASE / 2 + 1)

    workers = await service.worker_statuses(lease=LEASE)
    assert [(w.id, w.pid, w.concurrency, w.running, w.alive) for w in workers] == [
        ("b-w1", 11, 4, 1, True),
        (WORKER, 10, 8, 1, False),
    ]
    assert workers[0].heartbeat_age == pytest.approx(LEASE / 2 + 1)
    assert workers[1].heartbeat_age == pytest.approx(LEASE + 1)
    assert workers[1].heartbeat_at.timestamp() == pytest.approx(clock.now - LEASE - 1)


# -- the overview ---------------------------------------------------------------------


async def test_stats_count_states_and_the_queue(service: TaskService, clock: Clock) -> None:
    empty = await service.stats()
    assert dict(empty.states) == dict.fromkeys(State, 0)
    assert (empty.queue_depth, empty.oldest_waiting) == (0, None)

    first = await service.submit("noop", {}, tenant="acme")
    clock.advance(5)
    await service.submit("noop", {}, tenant="acme")
    soon = await service.submit("noop", {}, tenant="acme", delay=10)
    await service.submit("noop", {}, tenant="other", delay=100)
    await running(service, "noop", tenant="other")
    suspended = await service.submit("noop", {}, tenant="acme")
    await service.suspend(suspended.id)
    # the claim took every queued task: submit the waiting ones again
    waiting = await service.submit("noop", {}, tenant="acme")
    clock.advance(20)  # soon is due now (for 10 s); the other scheduled one is not
    later = await service.submit("noop", {}, tenant="other")

    stats = await service.stats()
    assert stats.states[State.RUNNING] == 3  # first, the second and the claim's own
    assert stats.states[State.SCHEDULED] == 2
    assert stats.states[State.QUEUED] == 2
    assert stats.states[State.SUSPENDED] == 1
    assert sum(stats.states.values()) == 8
    assert stats.queue_depth == 3  # waiting, later, and soon whose time came
    assert stats.oldest_waiting is not None
    assert stats.oldest_waiting.id == waiting.id  # due 20 s ago; soon 10 s ago
    assert stats.oldest_waiting.type == "noop"
    assert stats.oldest_waiting.wait_seconds == pytest.approx(20)
    assert stats.oldest_waiting.due_at.timestamp() == pytest.approx(clock.now - 20)
    assert stats.oldest_waiting.created_at == waiting.created_at

    acme = await service.stats(tenant="acme")
    assert acme.queue_depth == 2 and acme.oldest_waiting is not None
    assert acme.oldest_waiting.id == waiting.id
    assert acme.states[State.RUNNING] == 2 and acme.states[State.SCHEDULED] == 1
    assert acme.states[State.QUEUED] == 1 and acme.states[State.SUSPENDED] == 1
    other = await service.stats(tenant="other")
    assert other.queue_depth == 1 and other.oldest_waiting is not None
    assert other.oldest_waiting.id == later.id
    assert other.oldest_waiting.wait_seconds == pytest.approx(0)
    assert soon.state is State.SCHEDULED and first.state is State.QUEUED


async def test_stats_count_endings_per_bucket_in_both_tables(
    service: TaskService, clock: Clock
) -> None:
    clock.now = math.floor(clock.now / 60) * 60 + 1  # 1 s into a minute

    async def end(state: State, tenant: str = "acme") -> None:
        task = await running(service, "noop", tenant=tenant)
        if state is State.CANCELED:
            task = await service.cancel(task.id)
        assert await service.finish(task, state) is not None

    await end(State.SUCCEEDED)  # will be archived, 2 days before the window's end
    await archive_all(service, clock)  # now: a day and a second later
    clock.now = math.floor(clock.now / 60) * 60 + 1
    await end(State.SUCCEEDED)
    await end(State.FAILED, tenant="other")
    await archive_all(service, clock)  # both to history
    clock.now = math.floor(clock.now / 60) * 60 + 1
    await end(State.TIMED_OUT)
    clock.advance(120)  # two buckets later
    await end(State.CANCELED)
    await end(State.SUCCEEDED)

    stats = await service.stats(seconds=600, buckets=10)
    assert stats.bucket_seconds == 60
    assert len(stats.series) == 10
    assert stats.window_end.timestamp() == math.floor(clock.now / 60) * 60 + 60
    assert stats.window_start.timestamp() == stats.window_end.timestamp() - 600
    assert [b.start.timestamp() for b in stats.series] == [
        stats.window_start.timestamp() + 60 * i for i in range(10)
    ]
    last, two_before = stats.series[-1].counts, stats.series[-3].counts
    assert list(last) == list(ENDINGS)
    assert dict(last) == {**dict.fromkeys(ENDINGS, 0), State.CANCELED: 1, State.SUCCEEDED: 1}
    assert dict(two_before) == {**dict.fromkeys(ENDINGS, 0), State.TIMED_OUT: 1}
    assert sum(sum(b.counts.values()) for b in stats.series) == 3

    # a day's window reaches the two archived a day ago, not the one archived before
    day = await service.stats(seconds=int(DAY) + 600, buckets=200)
    assert sum(sum(b.counts.values()) for b in day.series) == 5
    assert sum(b.counts[State.FAILED] for b in day.series) == 1
    acme = await service.stats(tenant="acme", seconds=int(DAY) + 600, buckets=200)
    assert sum(sum(b.counts.values()) for b in acme.series) == 4
    assert sum(b.counts[State.FAILED] for b in acme.series) == 0
    hot = {State.SUCCEEDED: 1, State.CANCELED: 1, State.TIMED_OUT: 1}
    assert dict(day.states) == {**dict.fromkeys(State, 0), **hot}  # history not counted


def test_windows_are_aligned_buckets() -> None:
    assert window(1000.5, 3600, 60) == (-2580, 1020, 60)
    assert window(1000.5, 100, 200) == (901, 1001, 1)  # at least a second a bucket
    assert window(1000.5, 7 * 86400, 200) == (3024 - 604800, 3024, 3024)
    assert window(10_000.0, 1000, 7) == (9009, 10010, 143)  # 7 buckets of 143 s
    for bad in (0, 7 * 86400 + 1):
        with pytest.raises(InvalidRequest):
            window(0, bad, 10)
    for bad in (0, 201):
        with pytest.raises(InvalidRequest):
            window(0, 60, bad)


# -- a rerun --------------------------------------------------------------------------


async def test_a_task_that_ended_badly_runs_again_as_a_new_task(
    service: TaskService, clock: Clock
) -> None:
    task = await running(service, "noop", object_id="vm-1", priority=7, labels={"a": "b"})
    assert await service.finish(task, State.TIMED_OUT) is not None
    options = Submission(tenant="default", user="ops", user_id=3, request_id="r-1")
    again = await service.rerun(task.id, options)
    assert again.id != task.id and again.state is State.QUEUED
    assert (again.type, again.params, again.object_id, again.priority) == (
        "noop",
        task.params,
        "vm-1",
        7,
    )
    assert again.labels == {"a": "b", "retry_of": task.id}
    assert (again.user, again.user_id, again.request_id) == ("ops", 3, "r-1")
    assert await found(service, f"retry_of={task.id}") == [again.id]

    await archive_all(service, clock)  # the ended one moves to history; it still runs again
    third = await service.rerun(task.id, options)
    assert third.labels["retry_of"] == task.id

    with pytest.raises(Conflict):
        await service.rerun(again.id, options)  # still waiting
    done = await running(service, "noop")
    assert await service.finish(done, State.SUCCEEDED) is not None
    with pytest.raises(Conflict):
        await service.rerun(done.id, options)
