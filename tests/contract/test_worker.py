"""The worker side: claims, leases, every transition and its refusal, recovery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from taskgate.errors import Conflict, TaskNotFound
from taskgate.model import TERMINAL, WORKER_LOST, ErrorInfo, State
from taskgate.service import NewLogLine, Progress, TaskService

from .helpers import LEASE, WORKER, Clock, ended, running


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# -- claim ---------------------------------------------------------------------------


async def test_claim_takes_a_batch_and_leases_it(service: TaskService, clock: Clock) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(5)])
    claimed = await service.claim(WORKER, 3, LEASE)
    assert len(claimed) == 3
    assert {t.id for t in claimed} <= {t.id for t in tasks}
    for task in claimed:
        assert task.state is State.RUNNING
        assert (task.worker, task.attempt) == (WORKER, 1)
        assert task.started_at == task.updated_at == at(clock.now)
        assert task.lease_expires_at == at(clock.now + LEASE)
        assert task.version == 2
        assert await service.get(task.id) == task
    rest = await service.claim("worker-2", 10, LEASE)
    assert len(rest) == 2
    assert {t.id for t in claimed} | {t.id for t in rest} == {t.id for t in tasks}
    assert await service.claim("worker-3", 10, LEASE) == []


async def test_claim_order_is_priority_then_due_time(service: TaskService, clock: Clock) -> None:
    low_old = await service.submit("noop", {}, priority=-1)
    clock.advance(1)
    normal_old = await service.submit("noop", {})
    clock.advance(1)
    normal_new = await service.submit("noop", {})
    urgent = await service.submit("urgent", {})
    clock.advance(1)
    order = []
    while batch := await service.claim(WORKER, 1, LEASE):
        order += [t.id for t in batch]
    assert order == [urgent.id, normal_old.id, normal_new.id, low_old.id]


async def test_claim_returns_its_batch_in_priority_order(service: TaskService) -> None:
    await service.submit_many([("noop", {"x": i}) for i in range(3)])
    await service.submit("urgent", {})
    batch = await service.claim(WORKER, 10, LEASE)
    assert batch[0].type == "urgent"
    assert [t.priority for t in batch] == sorted((t.priority for t in batch), reverse=True)


async def test_scheduled_tasks_wait_for_their_time(service: TaskService, clock: Clock) -> None:
    assert await service.next_due_at() is None
    later = await service.submit("noop", {}, delay=60)
    soon = await service.submit("noop", {}, delay=10)
    assert await service.next_due_at() == pytest.approx(clock.now + 10)
    assert await service.claim(WORKER, 10, LEASE) == []
    clock.advance(10)
    assert [t.id for t in await service.claim(WORKER, 10, LEASE)] == [soon.id]
    assert await service.next_due_at() == pytest.approx(clock.now + 50)
    clock.advance(49.5)
    assert await service.claim(WORKER, 10, LEASE) == []
    clock.advance(0.5)
    claimed = await service.claim(WORKER, 10, LEASE)
    assert [t.id for t in claimed] == [later.id]
    assert claimed[0].scheduled_at == later.scheduled_at
    assert await service.next_due_at() is None


async def test_canceled_and_ended_tasks_are_never_claimed(service: TaskService) -> None:
    queued = await service.submit("noop", {})
    scheduled = await service.submit("noop", {}, delay=5)
    await service.cancel(queued.id)
    await service.cancel(scheduled.id)
    await ended(service, State.SUCCEEDED)
    assert await service.claim(WORKER, 10, LEASE) == []


# -- finish ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(TERMINAL))
async def test_finish_a_running_task(service: TaskService, clock: Clock, state: State) -> None:
    task = await running(service)
    clock.advance(2)
    error = ErrorInfo("ValueError", "bad", "Traceback ...") if state is State.FAILED else None
    done = await service.finish(task, state, result={"n": 1}, error=error, message="the end")
    assert done is not None
    assert done.state is state
    assert (done.result, done.error, done.message) == ({"n": 1}, error, "the end")
    assert done.finished_at == done.updated_at == at(clock.now)
    assert done.lease_expires_at is None
    assert done.progress == (100.0 if state is State.SUCCEEDED else None)
    assert done.version == task.version + 1
    assert await service.get(task.id) == done


async def test_finish_a_canceling_task(service: TaskService) -> None:
    task = await running(service)
    await service.cancel(task.id)
    done = await service.finish(task, State.CANCELED)
    assert done is not None and done.state is State.CANCELED
    other = await running(service)
    await service.cancel(other.id)
    late = await service.finish(other, State.SUCCEEDED, result=1)
    assert late is not None and late.state is State.SUCCEEDED and late.result == 1


async def test_finish_is_refused_unless_the_attempt_holds_the_task(
    service: TaskService, clock: Clock
) -> None:
    task = await running(service)
    assert await service.finish(replace(task, worker="someone-else"), State.SUCCEEDED) is None
    assert await service.finish(replace(task, attempt=2), State.SUCCEEDED) is None
    assert (await service.get(task.id)).state is State.RUNNING
    assert await service.finish(task, State.SUCCEEDED) is not None
    assert await service.finish(task, State.FAILED) is None  # already ended
    assert (await service.get(task.id)).state is State.SUCCEEDED
    queued = await service.submit("noop", {})
    assert await service.finish(queued, State.SUCCEEDED) is None
    with pytest.raises(ValueError):
        await service.finish(task, State.RUNNING)


async def test_a_stale_attempt_cannot_finish_the_retry(service: TaskService) -> None:
    first = await running(service, "flaky")
    assert await service.retry(first, delay=0, error=ErrorInfo("E", "boom")) is not None
    (second,) = await service.claim("worker-2", 10, LEASE)
    assert second.attempt == 2 and second.worker == "worker-2"
    assert await service.finish(first, State.SUCCEEDED) is None
    assert await service.finish(second, State.SUCCEEDED) is not None


# -- retry ---------------------------------------------------------------------------


async def test_retry_with_a_delay_schedules_the_task(service: TaskService, clock: Clock) -> None:
    task = await running(service, "flaky")
    error = ErrorInfo("OSError", "disk full")
    again = await service.retry(task, delay=30, error=error)
    assert again is not None
    assert again.state is State.SCHEDULED
    assert again.scheduled_at == at(clock.now + 30)
    assert again.error == error and again.lease_expires_at is None
    assert await service.claim(WORKER, 10, LEASE) == []
    clock.advance(30)
    (retried,) = await service.claim(WORKER, 10, LEASE)
    assert retried.id == task.id and retried.attempt == 2


async def test_retry_at_once_queues_the_task(service: TaskService) -> None:
    task = await running(service, "flaky")
    again = await service.retry(task, delay=0, error=ErrorInfo("E", "x"))
    assert again is not None and again.state is State.QUEUED
    assert [t.id for t in await service.claim(WORKER, 10, LEASE)] == [task.id]


async def test_retry_is_refused_unless_running_in_this_attempt(service: TaskService) -> None:
    task = await running(service, "flaky")
    error = ErrorInfo("E", "x")
    assert await service.retry(replace(task, worker="other"), delay=0, error=error) is None
    await service.cancel(task.id)
    assert await service.retry(task, delay=0, error=error) is None  # canceling: no retry
    assert (await service.get(task.id)).state is State.CANCELING


# -- cancel ----------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [None, 60])
async def test_cancel_a_waiting_task_ends_it(
    service: TaskService, clock: Clock, delay: float | None
) -> None:
    task = await service.submit("noop", {}, delay=delay)
    clock.advance(1)
    canceled = await service.cancel(task.id)
    assert canceled.state is State.CANCELED
    assert canceled.finished_at == canceled.cancel_requested_at == at(clock.now)
    assert canceled.cancel_attempts == 1
    assert await service.get(task.id) == canceled
    clock.advance(120)
    assert await service.claim(WORKER, 10, LEASE) == []


async def test_cancel_a_running_task_asks_it_to_stop(service: TaskService, clock: Clock) -> None:
    task = await running(service)
    first_request = clock.now
    canceling = await service.cancel(task.id)
    assert canceling.state is State.CANCELING
    assert canceling.cancel_requested_at == at(first_request)
    assert canceling.finished_at is None
    assert canceling.worker == WORKER and canceling.cancel_attempts == 1
    clock.advance(5)
    again = await service.cancel(task.id)
    assert again.state is State.CANCELING
    assert again.cancel_attempts == 2
    assert again.cancel_requested_at == at(first_request)  # the first request counts
    assert again.version == canceling.version + 1


@pytest.mark.parametrize("state", sorted(TERMINAL))
async def test_cancel_an_ended_task_is_a_conflict(service: TaskService, state: State) -> None:
    task = await ended(service, state)
    with pytest.raises(Conflict):
        await service.cancel(task.id)
    assert await service.get(task.id) == task


# -- progress ------------------------------------------------------------------------


async def test_report_progress(service: TaskService) -> None:
    task = await running(service)
    await service.report(
        task,
        Progress(
            progress=40,
            progress_detail={"steps": [{"total": 10, "done": 4}]},
            message="copying",
            detailed_state="copy",
            created_resources={"volumes": ["v1"]},
            warnings=1,
        ),
    )
    await service.report(task, Progress(progress=50.5, warnings=2))
    stored = await service.get(task.id)
    assert (stored.progress, stored.message, stored.detailed_state) == (50.5, "copying", "copy")
    assert stored.progress_detail == {"steps": [{"total": 10, "done": 4}]}
    assert stored.created_resources == {"volumes": ["v1"]}
    assert stored.warnings == 3
    assert stored.version == task.version + 2


async def test_reports_of_an_ended_or_foreign_attempt_are_ignored(service: TaskService) -> None:
    task = await running(service)
    await service.report(replace(task, worker="other"), Progress(progress=10))
    done = await service.finish(task, State.FAILED)
    await service.report(task, Progress(progress=90, message="late"))
    stored = await service.get(task.id)
    assert stored == done and stored.progress is None


# -- delete ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(TERMINAL))
async def test_delete_an_ended_task_and_its_log(service: TaskService, state: State) -> None:
    task = await ended(service, state)
    await service.append_log(task.id, [NewLogLine("a"), NewLogLine("b")])
    await service.delete(task.id)
    with pytest.raises(TaskNotFound):
        await service.get(task.id)
    with pytest.raises(TaskNotFound):
        await service.delete(task.id)
    assert (
        await service.connector.fetch_all("get_log", {"task_id": task.id, "start": 0, "limit": 10})
        == []
    )


async def test_delete_a_task_still_going_is_a_conflict(service: TaskService) -> None:
    queued = await service.submit("noop", {})
    scheduled = await service.submit("noop", {}, delay=60)
    active = await running(service, "flaky")
    canceling = await running(service, "flaky")
    await service.cancel(canceling.id)
    await service.append_log(active.id, [NewLogLine("kept")])
    for task in (queued, scheduled, active, canceling):
        with pytest.raises(Conflict):
            await service.delete(task.id)
        await service.get(task.id)
    assert (await service.log(active.id)).total == 1


# -- leases ----------------------------------------------------------------------------


async def test_a_lost_task_fails(service: TaskService, clock: Clock) -> None:
    task = await running(service)
    clock.advance(LEASE - 1)
    assert await service.recover_lost() == []
    clock.advance(2)
    (lost,) = await service.recover_lost()
    assert lost.id == task.id and lost.state is State.FAILED
    assert lost.error is not None and lost.error.type == WORKER_LOST
    assert lost.finished_at == at(clock.now) and lost.lease_expires_at is None
    stored = await service.get(task.id)
    assert stored.state is State.FAILED and stored.log_count == 1
    assert "worker lost" in (await service.log(task.id)).lines[0].t
    assert await service.recover_lost() == []
    assert await service.finish(task, State.SUCCEEDED) is None


async def test_a_lost_task_is_queued_again_when_the_operation_allows(
    service: TaskService, clock: Clock
) -> None:
    task = await running(service, "flaky")  # 3 attempts, safe to retry
    for attempt in (1, 2):
        clock.advance(LEASE + 1)
        (lost,) = await service.recover_lost()
        assert lost.state is State.QUEUED and lost.error is None and lost.finished_at is None
        (task,) = await service.claim(WORKER, 10, LEASE)
        assert task.attempt == attempt + 1
    clock.advance(LEASE + 1)
    (last,) = await service.recover_lost()  # no attempt left
    assert last.state is State.FAILED and last.error is not None
    assert last.error.type == WORKER_LOST


async def test_a_lost_canceling_task_is_canceled(service: TaskService, clock: Clock) -> None:
    task = await running(service, "flaky")
    await service.cancel(task.id)
    clock.advance(LEASE + 1)
    (lost,) = await service.recover_lost()
    assert lost.state is State.CANCELED and lost.error is None
    assert lost.finished_at == at(clock.now)


async def test_a_worker_known_gone_loses_its_tasks_at_once(service: TaskService) -> None:
    await service.register_worker(WORKER, pid=1, concurrency=4)
    await service.register_worker("worker-2", pid=2, concurrency=4)
    mine = await running(service, worker=WORKER)
    theirs = await running(service, worker="worker-2")
    (lost,) = await service.recover_lost(worker=WORKER)
    assert lost.id == mine.id and lost.state is State.FAILED
    assert (await service.get(theirs.id)).state is State.RUNNING
    assert [w["id"] for w in await service.list_workers()] == ["worker-2"]


async def test_heartbeat_renews_the_leases(service: TaskService, clock: Clock) -> None:
    await service.register_worker(WORKER, pid=1, concurrency=4)
    first = await running(service)
    second = await running(service)
    await service.cancel(second.id)
    other = await running(service, worker="worker-2")
    unknown = await running(service)  # claimed for the worker, which never heard of it
    clock.advance(LEASE - 5)
    held = [first.id, second.id, other.id]  # other's is not WORKER's to renew
    await service.heartbeat(WORKER, lease=LEASE, pid=1, concurrency=4, task_ids=held)
    for task in (first, second):
        assert (await service.get(task.id)).lease_expires_at == at(clock.now + LEASE)
    (worker,) = [w for w in await service.list_workers() if w["id"] == WORKER]
    assert worker["heartbeat_at"] == pytest.approx(clock.now)
    clock.advance(10)  # past the first lease, within the renewed one
    assert {t.id for t in await service.recover_lost()} == {other.id, unknown.id}
    clock.advance(LEASE)
    assert {t.id for t in await service.recover_lost()} == {first.id, second.id}


async def test_workers_register_and_leave(service: TaskService, clock: Clock) -> None:
    await service.register_worker("w-a", pid=10, concurrency=2)
    clock.advance(1)
    await service.register_worker("w-b", pid=11, concurrency=8)
    workers = await service.list_workers()
    assert [(w["id"], w["pid"], w["concurrency"]) for w in workers] == [
        ("w-a", 10, 2),
        ("w-b", 11, 8),
    ]
    assert workers[0]["node"] == service.node
    await service.unregister_worker("w-a")
    assert [w["id"] for w in await service.list_workers()] == ["w-b"]
