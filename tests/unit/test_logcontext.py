"""Log records name the task or the request they are about: the worker's lines and a
handler's own (in a thread and on the loop), and lines logged while answering a
request, in JSON and in text."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from taskgate import App, Context
from taskgate.cli.logs import JsonFormatter, TextFormatter
from taskgate.http import create_app
from taskgate.logcontext import ContextFilter
from taskgate.model import State
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

WAIT = 60.0
app_log = logging.getLogger("tests.handlers")


def make_app() -> App:
    app = App("log-tests")

    @app.operation("l_thread")
    def in_thread(ctx: Context) -> None:
        app_log.info("working in a thread")
        raise RuntimeError("it broke")

    @app.operation("l_async")
    async def on_loop(ctx: Context) -> None:
        await asyncio.sleep(0)
        app_log.info("working on the loop")

    return app


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes as JSON meanwhile, as configure_logging sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_worker_and_the_handlers_log_with_the_task(lines: io.StringIO) -> None:
    settings = Settings(database="memory://", poll_interval=0.2, flush_interval=0.02)
    service = TaskService(connect("memory://"), make_app())
    await service.open()
    try:
        failing = await service.submit("l_thread", request_id="req-thread", tenant="acme")
        fine = await service.submit("l_async", request_id="req-async")
        worker = Worker(service, settings, worker_id="log-w1")
        job = asyncio.create_task(worker.run())
        for task in (failing, fine):
            current = await service.get(task.id)
            while not current.terminal:
                await service.wait(task.id, 0.2, seen_version=current.version)
                current = await service.get(task.id)
        assert (await service.get(failing.id)).state is State.FAILED
        worker.request_stop()
        await asyncio.wait_for(job, WAIT)
    finally:
        await service.close()
    found = entries(lines)
    thread = next(e for e in found if e["message"] == "working in a thread")
    assert thread | {"task_id": failing.id, "task_type": "l_thread"} == thread
    assert (thread["tenant"], thread["request_id"]) == ("acme", "req-thread")
    loop = next(e for e in found if e["message"] == "working on the loop")
    assert (loop["task_id"], loop["request_id"]) == (fine.id, "req-async")
    ended = next(
        e for e in found if e["message"].startswith(f"task {failing.id} (l_thread): failed")
    )
    assert ended["request_id"] == "req-thread" and ended["task_id"] == failing.id
    started = next(e for e in found if e["message"].startswith("worker log-w1 started"))
    assert "task_id" not in started and "request_id" not in started


async def test_lines_logged_while_answering_a_request_carry_its_id(lines: io.StringIO) -> None:
    service = TaskService(connect("memory://"), make_app())
    await service.open()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store fell over")

    service.connector.fetch_one = broken  # type: ignore[method-assign]
    api = create_app(service, Settings(auth=False))
    transport = httpx.ASGITransport(app=api)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/v1/tasks/01890000-0000-7000-8000-000000000000",
                headers={"X-Request-ID": "req-http-1"},
            )
    finally:
        await service.close()
    assert response.status_code == 500
    failed = next(e for e in entries(lines) if "failed (request" in e["message"])
    assert failed["request_id"] == "req-http-1" and "task_id" not in failed


def test_text_lines_end_with_the_fields() -> None:
    record = logging.LogRecord("taskgate.worker", logging.INFO, __file__, 1, "done", (), None)
    record.task_id, record.task_type, record.request_id = "t-1", "backup", "r-9"
    assert TextFormatter().format(record).endswith("done [task=t-1 type=backup request=r-9]")
    plain = logging.LogRecord("taskgate.worker", logging.INFO, __file__, 1, "idle", (), None)
    assert TextFormatter().format(plain).endswith("] idle")
