"""Submit, idempotency, and reading one task back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from taskgate.errors import (
    IdempotencyConflict,
    InvalidId,
    InvalidParameters,
    InvalidRequest,
    OperationNotFound,
    TaskNotFound,
)
from taskgate.ids import UPID_RE, Upid, uuid7_time
from taskgate.model import State, TaskFilter
from taskgate.service import Submission, TaskService
from taskgate.storage import connect

from .helpers import Backend, Clock, make_app


async def test_submit_stores_a_queued_task(service: TaskService, clock: Clock) -> None:
    task = await service.submit("noop", {"x": "5"}, user="root@pam", request_id="r-1")
    assert task.state is State.QUEUED
    assert task.type == "noop"
    assert task.params == {"x": 5}  # validated, stored in its JSON form
    assert task.created_at == task.updated_at == datetime.fromtimestamp(clock.now, UTC)
    assert task.scheduled_at is None and task.started_at is None and task.finished_at is None
    assert (task.tenant, task.user, task.request_id) == ("default", "root@pam", "r-1")
    assert (task.attempt, task.max_attempts, task.version, task.log_count) == (0, 1, 1, 0)
    assert task.worker is None and task.error is None and task.result is None
    assert task.node == service.node
    assert uuid.UUID(task.id).version == 7
    assert abs(uuid7_time(task.id) - clock.now) < 5
    assert UPID_RE.match(task.upid)
    upid = Upid.decode(task.upid)
    assert (upid.type, upid.user, upid.node) == ("noop", "root@pam", service.node)
    assert await service.get(task.id) == task  # what submit returned is what is stored


async def test_a_delay_schedules_the_task(service: TaskService, clock: Clock) -> None:
    task = await service.submit("noop", {}, delay=30)
    assert task.state is State.SCHEDULED
    assert task.scheduled_at == datetime.fromtimestamp(clock.now + 30, UTC)
    assert (await service.submit("noop", {}, delay=0)).state is State.QUEUED


async def test_scheduled_at_in_the_future_or_past(service: TaskService, clock: Clock) -> None:
    now = datetime.fromtimestamp(clock.now, UTC)
    later = await service.submit("noop", {}, scheduled_at=now + timedelta(hours=1))
    assert later.state is State.SCHEDULED
    assert later.scheduled_at == now + timedelta(hours=1)
    past = await service.submit("noop", {}, scheduled_at=now - timedelta(hours=1))
    assert past.state is State.QUEUED
    assert past.scheduled_at == now - timedelta(hours=1)


@pytest.mark.parametrize(
    "options",
    [
        {"delay": -1},
        {"delay": 5, "scheduled_at": datetime(2030, 1, 1, tzinfo=UTC)},
        {"scheduled_at": datetime(2030, 1, 1)},  # no time zone
        {"timeout": 0},
        {"max_attempts": -1},
        {"max_attempts": 0},
        {"labels": {"bad key!": "v"}},
        {"labels": {"k": 5}},
    ],
)
async def test_bad_options_are_refused_and_nothing_is_stored(
    service: TaskService, options: dict[str, object]
) -> None:
    with pytest.raises(InvalidRequest):
        await service.submit("noop", {}, **options)
    assert (await service.list()).items == []


async def test_defaults_come_from_the_operation(service: TaskService) -> None:
    task = await service.submit("vzdump", {"vmid": 100})
    assert (task.object_id, task.timeout, task.priority) == ("100", 3600, 2)
    assert task.max_attempts == 1 and not task.retry_on_worker_loss
    flaky = await service.submit("flaky", {})
    assert flaky.max_attempts == 3 and flaky.retry_on_worker_loss


async def test_submission_overrides_the_defaults(service: TaskService) -> None:
    task = await service.submit(
        "vzdump",
        {"vmid": 100},
        object_id="vm/100",
        priority=-3,
        timeout=5,
        max_attempts=4,
        tenant="acme",
        group_id="g",
        parent_id="p",
        schedule_id="s",
    )
    assert (task.object_id, task.priority, task.timeout, task.max_attempts) == (
        "vm/100",
        -3,
        5,
        4,
    )
    assert (task.tenant, task.group_id, task.parent_id, task.schedule_id) == (
        "acme",
        "g",
        "p",
        "s",
    )
    assert await service.get(task.id) == task


async def test_labels_are_stored(service: TaskService) -> None:
    labels = {"env": "prod", "team/owner": "ops", "empty": ""}
    task = await service.submit("noop", {}, labels=labels)
    assert task.labels == labels
    assert (await service.get(task.id)).labels == labels
    assert (await service.submit("noop", {})).labels == {}


async def test_unknown_operation_and_bad_parameters(service: TaskService) -> None:
    with pytest.raises(OperationNotFound):
        await service.submit("nope", {})
    with pytest.raises(InvalidParameters) as info:
        await service.submit("vzdump", {"vmid": "not a number"})
    assert info.value.status == 422
    assert [e["field"] for e in info.value.errors] == ["vmid"]
    assert (await service.list()).items == []


async def test_submit_many_stores_every_task(service: TaskService) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(5)])
    assert [t.params["x"] for t in tasks] == list(range(5))
    assert len({t.upid for t in tasks}) == 5
    for task in tasks:
        assert await service.get(task.id) == task
    with pytest.raises(InvalidParameters):
        await service.submit_many([("noop", {}), ("noop", {"x": "bad"})])
    assert len((await service.list()).items) == 5


# -- idempotency -------------------------------------------------------------------


async def test_same_key_same_request_gives_the_same_task(service: TaskService) -> None:
    options = Submission(idempotency_key="k-1")
    first, created = await service.submit_one("vzdump", {"vmid": 1}, options)
    assert created
    again, created_again = await service.submit_one("vzdump", {"vmid": 1}, options)
    assert not created_again
    assert again == first
    assert len((await service.list()).items) == 1


async def test_same_key_other_request_is_a_conflict(service: TaskService) -> None:
    options = Submission(idempotency_key="k-1")
    await service.submit_one("vzdump", {"vmid": 1}, options)
    with pytest.raises(IdempotencyConflict):
        await service.submit_one("vzdump", {"vmid": 2}, options)
    with pytest.raises(IdempotencyConflict):
        await service.submit_one("noop", {}, options)
    assert len((await service.list()).items) == 1


async def test_idempotency_keys_are_per_tenant(service: TaskService) -> None:
    a, _ = await service.submit_one("noop", {}, Submission(idempotency_key="k", tenant="a"))
    b, created = await service.submit_one("noop", {}, Submission(idempotency_key="k", tenant="b"))
    assert created and a.id != b.id


async def test_a_replay_after_the_task_ended_returns_it(service: TaskService) -> None:
    task, _ = await service.submit_one("noop", {}, Submission(idempotency_key="k"))
    await service.cancel(task.id)
    again, created = await service.submit_one("noop", {}, Submission(idempotency_key="k"))
    assert not created and again.id == task.id and again.state is State.CANCELED


async def test_concurrent_submits_with_one_key_store_one_task(service: TaskService) -> None:
    options = Submission(idempotency_key="race")
    results = await asyncio.gather(
        *(service.submit_one("noop", {"x": 1}, options) for _ in range(20))
    )
    assert sum(created for _, created in results) == 1
    assert len({task.id for task, _ in results}) == 1
    assert len((await service.list(TaskFilter())).items) == 1


# -- reading one task ---------------------------------------------------------------


async def test_get_and_get_by_upid(service: TaskService) -> None:
    task = await service.submit("noop", {})
    assert await service.get(task.id) == task
    assert await service.get(task.id.upper()) == task  # any UUID spelling
    assert await service.get_by_upid(task.upid) == task


async def test_unknown_and_malformed_ids(service: TaskService) -> None:
    with pytest.raises(TaskNotFound):
        await service.get(str(uuid.uuid4()))
    with pytest.raises(InvalidId):
        await service.get("not-a-uuid")
    with pytest.raises(TaskNotFound):
        await service.get_by_upid("UPID:node:00000001:00000001:00000001:noop::root@pam:")


async def test_another_tenants_task_is_not_found(service: TaskService) -> None:
    task = await service.submit("noop", {}, tenant="acme")
    assert await service.get(task.id, tenant="acme") == task
    assert await service.get_by_upid(task.upid, tenant="acme") == task
    with pytest.raises(TaskNotFound):
        await service.get(task.id, tenant="other")
    with pytest.raises(TaskNotFound):
        await service.get_by_upid(task.upid, tenant="other")
    with pytest.raises(TaskNotFound):
        await service.log(task.id, tenant="other")
    with pytest.raises(TaskNotFound):
        await service.cancel(task.id, tenant="other")
    with pytest.raises(TaskNotFound):
        await service.delete(task.id, tenant="other")
    with pytest.raises(TaskNotFound):
        await service.wait(task.id, 0, tenant="other")
    assert (await service.get(task.id)).state is State.QUEUED  # untouched


async def test_tasks_outlive_a_restart(
    backend: Backend, url: str, service: TaskService, clock: Clock
) -> None:
    task = await service.submit("vzdump", {"vmid": 1}, labels={"a": "b"})
    await service.close()
    # a memory store lives in its connector object: reopening that object is its restart
    connector = connect(url) if backend.shared else service.connector
    again = TaskService(connector, make_app(), clock=clock)
    await again.open()
    try:
        assert await again.get(task.id) == task
        assert await again.get_by_upid(task.upid) == task
    finally:
        await again.close()
