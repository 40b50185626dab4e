"""Prometheus metrics on the memory store: what submits, workers and HTTP requests
record, the gauges read from the store at scrape time, and who may read /metrics.

The process's metrics are shared by every test of the session, so each test compares
values before and after what it does."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from taskgate import App, Context
from taskgate.auth import KeyService
from taskgate.http import create_app
from taskgate.metrics import Requests, exposition
from taskgate.model import State
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

BASE = "http://testserver"
WAIT = 60.0
"""Only ends a hung test: nothing here asserts on timing."""

RELEASE = threading.Event()


def make_app() -> App:
    app = App("metrics-tests")

    @app.operation("m_noop")
    def noop(ctx: Context) -> None:
        return None

    @app.operation("m_boom", max_attempts=2, retry_backoff=0.01, retry_backoff_max=0.01)
    def boom(ctx: Context) -> None:
        raise RuntimeError("boom")

    @app.operation("m_locked", exclusive=["disk:{disk}"])
    def locked(ctx: Context, disk: str) -> None:
        RELEASE.wait(WAIT)

    return app


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": "memory://",
        "concurrency": 4,
        "poll_interval": 0.2,
        "heartbeat_interval": 0.2,
        "leader_interval": 0.05,
        "flush_interval": 0.02,
        "auth": False,
    }
    values.update(overrides)
    return Settings(**values)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by (name, labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape() -> str:
    return exposition().decode()


@pytest.fixture
async def service() -> AsyncIterator[TaskService]:
    svc = TaskService(connect("memory://"), make_app())
    await svc.open()
    yield svc
    await svc.close()


@contextlib.asynccontextmanager
async def running(service: TaskService) -> AsyncIterator[Worker]:
    worker = Worker(service, settings(), worker_id="metrics-w1")
    job = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), WAIT)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(job, WAIT)


async def ended(service: TaskService, task_id: str) -> State:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        task = await service.get(task_id)
        if task.terminal:
            return task.state
        assert loop.time() < deadline, f"task {task_id} stayed {task.state}"
        await service.wait(task_id, 0.2, seen_version=task.version)


async def test_a_task_is_counted_from_its_submit_to_its_end(service: TaskService) -> None:
    before = scrape()
    async with running(service):
        ok = [await service.submit("m_noop") for _ in range(2)]
        bad = await service.submit("m_boom")
        assert [await ended(service, t.id) for t in ok] == [State.SUCCEEDED] * 2
        assert await ended(service, bad.id) is State.FAILED
    later = await service.submit("m_noop", delay=3600)
    await service.cancel(later.id)
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("taskgate_tasks_submitted_total", type="m_noop") == 3
    assert delta("taskgate_tasks_submitted_total", type="m_boom") == 1
    assert delta("taskgate_tasks_finished_total", type="m_noop", outcome="succeeded") == 2
    assert delta("taskgate_tasks_finished_total", type="m_noop", outcome="canceled") == 1
    assert delta("taskgate_tasks_finished_total", type="m_boom", outcome="failed") == 1
    assert delta("taskgate_task_retries_total", type="m_boom") == 1
    # every attempt's run time; the queue wait of first attempts only
    assert delta("taskgate_task_run_seconds_count", type="m_noop") == 2
    assert delta("taskgate_task_run_seconds_count", type="m_boom") == 2
    assert delta("taskgate_task_queue_wait_seconds_count", type="m_noop") == 2
    assert delta("taskgate_task_queue_wait_seconds_count", type="m_boom") == 1
    assert bad.id not in after and ok[0].id not in after


async def test_an_idempotent_replay_is_not_counted_again(service: TaskService) -> None:
    before = value(scrape(), "taskgate_tasks_submitted_total", type="m_noop")
    first = await service.submit("m_noop", idempotency_key="same")
    again = await service.submit("m_noop", idempotency_key="same")
    assert first.id == again.id
    assert value(scrape(), "taskgate_tasks_submitted_total", type="m_noop") == before + 1


async def test_tasks_that_wait_for_a_lock_are_timed(service: TaskService) -> None:
    before = scrape()
    RELEASE.clear()
    async with running(service):
        first = await service.submit("m_locked", {"disk": "d1"})
        second = await service.submit("m_locked", {"disk": "d1"})
        while (await service.get(first.id)).state is not State.RUNNING:
            await service.wait(first.id, 0.2)
        assert (await service.get(second.id)).state is State.QUEUED
        RELEASE.set()
        assert await ended(service, second.id) is State.SUCCEEDED
    after = scrape()
    name = "taskgate_task_lock_wait_seconds_count"
    assert value(after, name, type="m_locked") - value(before, name, type="m_locked") == 2


@pytest.fixture
async def client(service: TaskService) -> AsyncIterator[httpx.AsyncClient]:
    api = create_app(service, settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        yield c


async def test_the_store_gauges_are_read_at_scrape_time(
    service: TaskService, client: httpx.AsyncClient
) -> None:
    for _ in range(3):
        await service.submit("m_noop")
    await service.submit("m_noop", delay=3600)
    await service.submit("m_locked", {"disk": "d9"})
    await service.register_worker("gauge-w1", pid=4242, concurrency=8)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert value(text, "taskgate_tasks", type="m_noop", state="queued") == 3
    assert value(text, "taskgate_tasks", type="m_noop", state="scheduled") == 1
    assert value(text, "taskgate_tasks_waiting", type="m_noop") == 3
    assert value(text, "taskgate_tasks_waiting_reserved", type="m_noop") == 0
    assert value(text, "taskgate_tasks_waiting_reserved", type="m_locked") == 1
    assert value(text, "taskgate_oldest_waiting_seconds", type="m_noop") >= 0
    assert value(text, "taskgate_workers", node=service.node) == 1
    assert value(text, "taskgate_worker_heartbeat_age_seconds", worker="gauge-w1") >= 0


async def test_http_requests_are_counted_by_route_template(
    service: TaskService, client: httpx.AsyncClient
) -> None:
    task = await service.submit("m_noop")
    before = scrape()
    for _ in range(2):
        assert (await client.get(f"/v1/tasks/{task.id}")).status_code == 200
    assert (await client.get(f"/no/such/{task.id}")).status_code == 404
    assert (await client.request("BREW", "/v1/tasks")).status_code == 405
    after = (await client.get("/metrics")).text
    name = "taskgate_http_requests_total"
    route = {"method": "GET", "route": "/v1/tasks/{id}", "status": "200"}
    assert value(after, name, **route) - value(before, name, **route) == 2
    assert value(after, "taskgate_http_request_duration_seconds_count", **route) >= 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 1
    # a method no route knows is not a label of its own
    assert value(after, name, method="other", route="unmatched", status="405") >= 1
    assert task.id not in after and "BREW" not in after


async def test_a_dialect_request_is_counted_under_the_dialect_name(
    service: TaskService,
) -> None:
    task = await service.submit("m_noop")
    api = create_app(service, settings(dialects=("cloudcoin",)))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        before = (await c.get("/metrics")).text
        assert (await c.get(f"/api/v1/tasks/{task.id}")).status_code == 200
        after = (await c.get("/metrics")).text
    name = "taskgate_http_requests_total"
    labels = {"method": "GET", "route": "dialect:cloudcoin", "status": "200"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


@pytest.fixture
def keys(service: TaskService) -> Iterator[KeyService]:
    key_service = KeyService(service.connector, hash_cost=2**4)
    yield key_service
    key_service.close()


@pytest.mark.parametrize("public", [False, True])
async def test_metrics_need_an_admin_key_unless_public(
    service: TaskService, keys: KeyService, public: bool
) -> None:
    admin = (await keys.create(tenant="default", user="ops", role="admin")).token
    writer = (await keys.create(tenant="default", user="app", role="write")).token
    api = create_app(service, settings(auth=True, metrics_public=public))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        nobody = await c.get("/metrics")
        write = await c.get("/metrics", headers={"Authorization": f"Bearer {writer}"})
        ops = await c.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        document = (await c.get("/openapi.json")).json()
    assert ops.status_code == 200
    if public:
        assert nobody.status_code == write.status_code == 200
    else:
        assert (nobody.status_code, write.status_code) == (401, 403)
    declared = document["paths"]["/metrics"]["get"]["responses"]
    assert "text/plain" in declared["200"]["content"]
    assert ("401" in declared) is not public


def test_request_latencies_fall_in_cumulative_buckets() -> None:
    requests = Requests(buckets=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 3.0):
        requests.record("GET", "/healthz", 200, seconds)
    text = generate_latest(_Only(requests)).decode()
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    name = "taskgate_http_request_duration_seconds"
    assert value(text, f"{name}_bucket", le="0.01", **labels) == 2  # le: at most
    assert value(text, f"{name}_bucket", le="0.1", **labels) == 3
    assert value(text, f"{name}_bucket", le="+Inf", **labels) == 4
    assert value(text, f"{name}_count", **labels) == 4
    assert value(text, f"{name}_sum", **labels) == pytest.approx(3.065)
    assert value(text, "taskgate_http_requests_total", **labels) == 4


class _Only:
    def __init__(self, requests: Requests) -> None:
        self.requests = requests

    def collect(self) -> Any:
        return self.requests.collect()
