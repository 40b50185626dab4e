"""Resource locks and concurrency limits at claim time: conflicting tasks run one after
another in submit order, others in parallel, a limit is never exceeded; and priority
aging, so that low priority never starves."""

from __future__ import annotations

import pytest

from taskgate.errors import InvalidRequest
from taskgate.model import ErrorInfo, Limit, Reservation, State, Task, TaskFilter
from taskgate.service import TaskService

from .helpers import LEASE, WORKER, Clock


async def claim_reserved(service: TaskService, limit: int = 100) -> list[str]:
    return [t.id for t in await service.claim_reserved(WORKER, limit, LEASE)]


async def sync(
    service: TaskService, repository: int, remote: int | None = None, **kw: object
) -> Task:
    return await service.submit("sync", {"repository": repository, "remote": remote}, **kw)


async def finish(service: TaskService, task_id: str, state: State = State.SUCCEEDED) -> None:
    task = await service.get(task_id)
    assert await service.finish(task, state) is not None


async def test_the_reservation_is_on_the_task(service: TaskService) -> None:
    task = await sync(service, 42, 7, exclusive_resources=["tenant-db"])
    assert task.reservation == Reservation(
        exclusive=("repository:42", "tenant-db"), shared=("remote:7",)
    )
    plain = await sync(service, 43)  # remote None: no remote reserved
    assert plain.reservation == Reservation(exclusive=("repository:43",))
    limited = await service.submit("limited", {}, tenant="acme")
    assert limited.reservation == Reservation(
        limits=(Limit("limited:", 3), Limit("tenants:acme", 2))
    )
    assert (await service.submit("noop", {})).reservation is None
    listed = await service.list(TaskFilter(resource="repository:42"))
    assert [t.id for t in listed.items] == [task.id]
    shared = await service.list(TaskFilter(resource="remote:7"))
    assert [t.id for t in shared.items] == [task.id]


async def test_bad_resource_names_are_refused(service: TaskService) -> None:
    for bad in ([""], ["x" * 256], ["tab\there"], [3]):
        with pytest.raises(InvalidRequest, match="resource"):
            await service.submit("noop", {}, exclusive_resources=bad)
    with pytest.raises(InvalidRequest, match="a list"):
        await service.submit("noop", {}, shared_resources="repository:1")
    with pytest.raises(InvalidRequest, match="at most"):
        await service.submit("noop", {}, exclusive_resources=[f"r{i}" for i in range(40)])


async def test_plain_and_reserved_claims_take_only_their_own(service: TaskService) -> None:
    plain = await service.submit("noop", {})
    reserved = await sync(service, 1)
    assert [t.id for t in await service.claim(WORKER, 10, LEASE)] == [plain.id]
    assert await claim_reserved(service) == [reserved.id]


async def test_an_exclusive_resource_runs_one_task_at_a_time_in_submit_order(
    service: TaskService,
) -> None:
    tasks = [await sync(service, 1) for _ in range(3)]
    other = await sync(service, 2)
    assert await claim_reserved(service) == [tasks[0].id, other.id]
    assert await claim_reserved(service) == []
    await finish(service, tasks[0].id, State.FAILED)
    assert await claim_reserved(service) == [tasks[1].id]
    await finish(service, tasks[1].id)
    assert await claim_reserved(service) == [tasks[2].id]


async def test_shared_holders_run_together_but_not_beside_an_exclusive(
    service: TaskService,
) -> None:
    readers = [await service.submit("noop", {}, shared_resources=["remote:1"]) for _ in range(2)]
    writer = await service.submit("noop", {}, exclusive_resources=["remote:1"])
    late_reader = await service.submit("noop", {}, shared_resources=["remote:1"])
    assert await claim_reserved(service) == [r.id for r in readers]
    assert await claim_reserved(service) == []  # the writer waits; the late reader behind it
    await finish(service, readers[0].id)
    assert await claim_reserved(service) == []
    await finish(service, readers[1].id)
    assert await claim_reserved(service) == [writer.id]
    await finish(service, writer.id)
    assert await claim_reserved(service) == [late_reader.id]


async def test_a_task_not_yet_due_holds_no_place_but_a_running_one_does(
    service: TaskService, clock: Clock
) -> None:
    later = await sync(service, 1, delay=60)
    now = await sync(service, 1)
    assert await claim_reserved(service) == [now.id]  # the earlier one is not due
    clock.advance(61)
    assert await claim_reserved(service) == []  # due now, but the later one runs
    assert await service.next_due_at() is None  # it waits for an end, not a time
    await finish(service, now.id)
    assert await claim_reserved(service) == [later.id]


async def test_suspended_and_canceled_tasks_hold_no_place(service: TaskService) -> None:
    first, second, third = [await sync(service, 1) for _ in range(3)]
    await service.suspend(first.id)
    await service.cancel(second.id)
    assert await claim_reserved(service) == [third.id]
    await finish(service, third.id)
    await service.resume(first.id)
    assert await claim_reserved(service) == [first.id]


async def test_a_lost_worker_releases_what_its_task_held(
    service: TaskService, clock: Clock
) -> None:
    first, second = await sync(service, 1), await sync(service, 1)
    assert await claim_reserved(service) == [first.id]
    clock.advance(LEASE + 1)
    [lost] = await service.recover_lost()
    assert lost.state is State.FAILED
    assert await claim_reserved(service) == [second.id]


async def test_a_limit_is_never_exceeded_and_keeps_submit_order(service: TaskService) -> None:
    tasks = [await service.submit("limited", {}, tenant=t) for t in "aaabbc"]
    # 3 at once in all, 2 per tenant: a, a, then b (the third a waits for its tenant)
    assert await claim_reserved(service) == [tasks[0].id, tasks[1].id, tasks[3].id]
    assert await claim_reserved(service) == []
    await finish(service, tasks[3].id)  # b ends: the waiting a was ahead of the other b
    assert await claim_reserved(service) == [tasks[4].id]
    await finish(service, tasks[0].id)
    assert await claim_reserved(service) == [tasks[2].id]
    await finish(service, tasks[1].id)
    await finish(service, tasks[2].id)
    await finish(service, tasks[4].id)
    assert await claim_reserved(service) == [tasks[5].id]


async def test_a_batch_claim_takes_no_more_than_a_limit_allows(service: TaskService) -> None:
    tasks = [await service.submit("limited", {}, tenant=f"t{i}") for i in range(10)]
    assert await claim_reserved(service, limit=100) == [t.id for t in tasks[:3]]
    running = await service.list(TaskFilter(states=(State.RUNNING,)))
    assert len(running.items) == 3


async def test_a_retry_waiting_its_backoff_holds_nothing(
    service: TaskService, clock: Clock
) -> None:
    first, second = await sync(service, 1), await sync(service, 1)
    [claimed] = await service.claim_reserved(WORKER, 10, LEASE)
    await service.retry(claimed, delay=30, error=ErrorInfo("E", "try again"))
    assert await claim_reserved(service) == [second.id]
    await finish(service, second.id)
    clock.advance(31)
    assert await claim_reserved(service) == [first.id]


async def test_a_task_starved_by_higher_priorities_is_raised(
    service: TaskService, clock: Clock
) -> None:
    low = await service.submit("noop", {})
    clock.advance(200)
    await service.submit("urgent", {})
    assert await service.promote_starved(300) == []
    clock.advance(101)
    assert await service.promote_starved(300) == [low.id]
    raised = await service.get(low.id)
    assert raised.priority == 9
    log = (await service.log(low.id)).lines
    assert "priority raised to 9" in log[-1].t and log[-1].level == "warning"
    newer_urgent = await service.submit("urgent", {})
    order = [t.id for t in await service.claim(WORKER, 1, LEASE)]
    assert order == [low.id]  # top priority now, and due before the other urgent ones
    assert newer_urgent.id not in order
