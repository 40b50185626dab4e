"""OpenTelemetry tracing: the submit request's server span, its trace context stored
with the task, the run's span linked to it; and nothing of opentelemetry loaded when
tracing is off."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from taskgate import App, Context
from taskgate.http import create_app
from taskgate.model import Task
from taskgate.otel import OtelTracing
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

WAIT = 60.0
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def make_app() -> App:
    app = App("tracing-tests")

    @app.operation("t_ok")
    def ok(ctx: Context) -> int:
        return 1

    @app.operation("t_fail")
    async def fail(ctx: Context) -> None:
        raise ValueError("no disk")

    return app


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> OtelTracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracing(provider)


@pytest.fixture
async def service() -> AsyncIterator[TaskService]:
    svc = TaskService(connect("memory://"), make_app())
    await svc.open()
    yield svc
    await svc.close()


async def run_until_ended(service: TaskService, tracing: OtelTracing, *ids: str) -> list[Task]:
    worker = Worker(service, Settings(database="memory://", poll_interval=0.2), tracing=tracing)
    job = asyncio.create_task(worker.run())
    done = []
    for task_id in ids:
        task = await service.get(task_id)
        while not task.terminal:
            await service.wait(task_id, 0.2, seen_version=task.version)
            task = await service.get(task_id)
        done.append(task)
    worker.request_stop()
    await asyncio.wait_for(job, WAIT)
    return done


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_run_is_linked_to_the_request_that_submitted_it(
    service: TaskService, tracing: OtelTracing, exporter: InMemorySpanExporter
) -> None:
    api = create_app(service, Settings(auth=False))
    api.tracing = service.tracing = tracing
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        ok = (await client.post("/v1/operations/t_ok", json={}, headers=headers)).json()
        failing = (await client.post("/v1/tasks", json={"type": "t_fail"})).json()
    ended = await run_until_ended(service, tracing, ok["id"], failing["id"])
    spans = exporter.get_finished_spans()

    (submit,) = named(spans, "POST /v1/operations/{type}")
    assert submit.kind is SpanKind.SERVER
    assert submit.parent is not None and submit.parent.span_id == int(CALLER_SPAN, 16)
    assert submit.context.trace_id == int(CALLER_TRACE, 16)
    assert submit.attributes is not None
    assert submit.attributes["http.route"] == "/v1/operations/{type}"
    assert submit.attributes["http.response.status_code"] == 202
    # the trace context went with the task, through the store
    assert ended[0].traceparent == (f"00-{CALLER_TRACE}-{submit.context.span_id:016x}-01")

    (run,) = named(spans, "run t_ok")
    assert run.kind is SpanKind.CONSUMER
    assert [link.context.span_id for link in run.links] == [submit.context.span_id]
    assert run.attributes is not None
    assert run.attributes["taskgate.task.id"] == ok["id"]
    assert run.attributes["taskgate.task.type"] == "t_ok"
    assert run.attributes["taskgate.task.attempt"] == 1
    assert run.status.status_code is StatusCode.UNSET

    (submit_failing,) = named(spans, "POST /v1/tasks")
    (run_failing,) = named(spans, "run t_fail")
    assert [link.context.span_id for link in run_failing.links] == [submit_failing.context.span_id]
    assert run_failing.status.status_code is StatusCode.ERROR
    assert run_failing.status.description == "no disk"
    assert run_failing.attributes is not None
    assert run_failing.attributes["error.type"] == "ValueError"


async def test_a_task_submitted_without_a_span_runs_unlinked(
    service: TaskService, tracing: OtelTracing, exporter: InMemorySpanExporter
) -> None:
    task = await service.submit("t_ok")
    assert task.traceparent is None
    await run_until_ended(service, tracing, task.id)
    (run,) = named(exporter.get_finished_spans(), "run t_ok")
    assert run.links == ()


def test_without_tracing_nothing_imports_opentelemetry() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from taskgate import App
        from taskgate.cli import main
        from taskgate.http import create_app
        from taskgate.runtime import Worker
        from taskgate.service import TaskService
        from taskgate.settings import Settings
        from taskgate.storage import connect

        async def go():
            service = TaskService(connect("memory://"), App("x"))
            await service.open()
            create_app(service, Settings(auth=False))
            Worker(service, Settings(database="memory://"))
            await service.submit_many([])
            await service.close()

        asyncio.run(go())
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
