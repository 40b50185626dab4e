"""Two actors, one task: exactly one of them wins, on every backend.

``peer`` is a second process on the same store where the backend has one (SQLite: a
second connector on the file, with its own writer and connections).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from taskgate.errors import Conflict
from taskgate.model import State, Task
from taskgate.service import TaskService

from .helpers import LEASE, Clock, running

ROUNDS = 8


async def test_concurrent_claims_never_share_a_task(
    service: TaskService, peer: TaskService
) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(60)])
    batches = await asyncio.gather(
        *((service if i % 2 else peer).claim(f"w{i}", 5, LEASE) for i in range(16))
    )
    owners = Counter(t.id for batch in batches for t in batch)
    assert set(owners) == {t.id for t in tasks}
    assert max(owners.values()) == 1
    for i, batch in enumerate(batches):
        for task in batch:
            stored = await service.get(task.id)
            assert (stored.worker, stored.attempt, stored.state) == (f"w{i}", 1, State.RUNNING)


async def test_two_processes_draining_one_store(service: TaskService, peer: TaskService) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(80)])

    async def drain(svc: TaskService, worker: str) -> list[str]:
        got: list[str] = []
        while batch := await svc.claim(worker, 3, LEASE):
            got += [t.id for t in batch]
        return got

    results = await asyncio.gather(
        drain(service, "a"), drain(peer, "b"), drain(service, "c"), drain(peer, "d")
    )
    claimed = [task_id for got in results for task_id in got]
    assert sorted(claimed) == sorted(t.id for t in tasks)  # each exactly once


async def test_cancel_racing_a_claim(service: TaskService, peer: TaskService) -> None:
    for i in range(ROUNDS):
        task = await service.submit("noop", {})
        cancel = service.cancel(task.id)
        claim = peer.claim("w", 1, LEASE)
        if i % 2:
            canceled, claimed = await asyncio.gather(cancel, claim)
        else:
            claimed, canceled = await asyncio.gather(claim, cancel)
        if claimed:  # the claim won: the cancel found it running
            assert canceled.state is State.CANCELING
        else:
            assert canceled.state is State.CANCELED
        assert (await service.get(task.id)).state is canceled.state


async def test_cancel_racing_the_end_has_one_outcome(
    service: TaskService, peer: TaskService
) -> None:
    for i in range(ROUNDS):
        task = await running(service)
        cancel = asyncio.ensure_future(_cancel(peer, task))
        done = await service.finish(task, State.SUCCEEDED, result=i)
        outcome = await cancel
        assert done is not None  # the handler's ending stands, from running or canceling
        final = await service.get(task.id)
        assert final.state is State.SUCCEEDED and final.result == i
        if outcome is None:  # the cancel came too late
            assert final.cancel_attempts == 0
        else:
            assert outcome.state is State.CANCELING and final.cancel_attempts == 1


async def _cancel(service: TaskService, task: Task) -> Task | None:
    try:
        return await service.cancel(task.id)
    except Conflict:
        return None


@pytest.mark.parametrize("first", [State.CANCELED, State.SUCCEEDED])
async def test_two_endings_of_one_attempt_one_wins(
    service: TaskService, peer: TaskService, first: State
) -> None:
    for _ in range(ROUNDS):
        task = await running(service)
        await service.cancel(task.id)
        second = State.SUCCEEDED if first is State.CANCELED else State.CANCELED
        results = await asyncio.gather(service.finish(task, first), peer.finish(task, second))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert (await service.get(task.id)).state is winners[0].state


async def test_recovery_racing_the_end(
    service: TaskService, peer: TaskService, clock: Clock
) -> None:
    for _ in range(ROUNDS):
        task = await running(service)
        clock.advance(LEASE + 1)
        recovered, done = await asyncio.gather(
            peer.recover_lost(), service.finish(task, State.SUCCEEDED)
        )
        final = await service.get(task.id)
        if done is not None:
            assert recovered == [] and final.state is State.SUCCEEDED
        else:
            assert [t.id for t in recovered] == [task.id] and final.state is State.FAILED


async def test_a_lost_attempt_cannot_end_its_successor(
    service: TaskService, peer: TaskService, clock: Clock
) -> None:
    first = await running(service, "flaky")
    clock.advance(LEASE + 1)
    await service.recover_lost()
    (second,) = await peer.claim("worker-2", 1, LEASE)
    results = await asyncio.gather(
        service.finish(first, State.FAILED), peer.finish(second, State.SUCCEEDED)
    )
    assert results[0] is None
    assert results[1] is not None and results[1].state is State.SUCCEEDED
