"""The dashboard's calls through `AsyncClient` and `Client`, against the real ASGI app and
a worker in process: whoami, workers, stats, the search ``q`` and ``retry_task``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from taskgate.client import AsyncClient, Client, Conflict, State, TaskFailed


async def test_whoami_workers_and_stats(aclient: AsyncClient) -> None:
    me = await aclient.whoami()
    assert (me.tenant, me.user, me.role, me.key_id, me.auth) == (
        "default",
        "anonymous",
        "admin",
        None,
        False,
    )
    (worker,) = await aclient.workers()  # the worker in process
    assert worker.alive and worker.pid > 0 and worker.concurrency == 8
    assert worker.heartbeat_at is not None and worker.running == 0

    await aclient.submit_and_wait("noop")
    with pytest.raises(TaskFailed):
        await aclient.submit_and_wait("fail")
    await aclient.submit("noop", delay=3600)
    stats = await aclient.stats(window=timedelta(minutes=10), buckets=10)
    assert stats.states["succeeded"] == 1 and stats.states["failed"] == 1
    assert stats.states["scheduled"] == 1 and stats.queue_depth == 0
    assert stats.oldest_waiting is None
    assert stats.bucket_seconds == 60 and len(stats.series) == 10
    assert sum(b.counts["succeeded"] for b in stats.series) == 1
    assert sum(b.counts["failed"] for b in stats.series) == 1
    assert stats.window_start is not None and stats.window_end is not None
    assert (await aclient.stats(tenant="nobody")).states["failed"] == 0


async def test_search_and_retry(aclient: AsyncClient) -> None:
    with pytest.raises(TaskFailed) as failed:
        await aclient.submit_and_wait("fail", labels={"ticket": "T-1"})
    first = failed.value.task
    again = await aclient.retry_task(first)
    assert again.labels == {"ticket": "T-1", "retry_of": first.id}
    assert again.type == "fail" and again.id != first.id
    found = [t.id async for t in aclient.list(q="T-1")]
    assert found == [again.id, first.id]
    assert [t.id async for t in aclient.list(q=first.id, state="failed")] == [first.id]
    done = await aclient.submit_and_wait("noop")
    with pytest.raises(Conflict):
        await aclient.retry_task(done)


def test_sync_client(client: Client) -> None:
    assert client.whoami().role == "admin"
    assert len(client.workers()) == 1
    with pytest.raises(TaskFailed) as failed:
        client.submit_and_wait("fail", object_id="vm-7")
    again = client.retry_task(failed.value.task.id)
    assert again.object_id == "vm-7" and again.labels["retry_of"] == failed.value.task.id
    assert [t.id for t in client.list(q="vm-7")][-1] == failed.value.task.id
    page = client.list_page(q="vm-7", page_size=1)
    assert len(page.items) == 1 and page.next_cursor is not None
    stats = client.stats()
    assert stats.bucket_seconds == 60 and len(stats.series) == 60
    assert stats.states[State.FAILED] >= 1
