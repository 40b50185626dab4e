"""Reports are coalesced: a tight loop of progress calls costs a few store writes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from taskgate.model import State, Task
from taskgate.runtime import Report, ReportBuffer
from taskgate.service import NewLogLine, TaskService
from taskgate.settings import Settings

from .conftest import CountingConnector, log_texts, running, wait_state


async def test_a_tight_progress_loop_makes_few_writes(
    service: TaskService, settings: Settings
) -> None:
    counter = service.connector
    assert isinstance(counter, CountingConnector)
    task = await service.submit("tight_progress", {"n": 100_000})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result == 100_000
    # at most one write per flush interval while the loop runs, never one per call
    assert 1 <= counter.count("update_progress") < 1000
    assert await log_texts(service, task.id) == ["done"]


async def test_an_async_tight_loop_is_coalesced_too(
    service: TaskService, settings: Settings
) -> None:
    counter = service.connector
    assert isinstance(counter, CountingConnector)
    task = await service.submit("tight_async", {"n": 100_000})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert counter.count("update_progress") < 100
    lines = await log_texts(service, task.id)
    assert lines == [f"line {i}" for i in range(0, 100_000, 10_000)]


def _task() -> Task:
    now = datetime.now(UTC)
    return Task(
        id="t",
        upid="u",
        type="x",
        state=State.RUNNING,
        params={},
        created_at=now,
        updated_at=now,
        created_resources={"volumes": ["old"]},
    )


def test_buffer_keeps_the_latest_values_counts_warnings_and_queues_lines() -> None:
    dirty: list[ReportBuffer] = []
    buffer = ReportBuffer(_task(), clock=lambda: 1.0, on_dirty=dirty.append)
    assert buffer.take() is None
    buffer.progress(10, "a", None)
    buffer.progress(20, None, {"step": 1})
    buffer.log("one", "info")
    buffer.warn("careful")
    buffer.detailed_state("copying")
    buffer.created_resource("volumes", "new")
    buffer.created_resource("volumes", "new")
    assert dirty == [buffer]  # told once, however many calls
    report = buffer.take()
    assert report is not None
    assert (report.progress, report.message, report.progress_detail) == (20, "a", {"step": 1})
    assert report.detailed_state == "copying"
    assert report.warnings == 1
    assert report.created_resources == {"volumes": ["old", "new"]}
    assert report.lines == [
        NewLogLine("one", "info", 1.0),
        NewLogLine("WARN: careful", "warning", 1.0),
    ]
    assert buffer.take() is None
    buffer.progress(30, None, None)
    assert dirty == [buffer, buffer]
    assert buffer.take() == Report(progress=30)


def test_buffer_restore_keeps_newer_values_and_line_order() -> None:
    buffer = ReportBuffer(_task())
    buffer.progress(10, "old", None)
    buffer.log("first", "info")
    failed = buffer.take()
    assert failed is not None
    buffer.progress(20, None, None)
    buffer.log("second", "info")
    buffer.restore(failed)
    report = buffer.take()
    assert report is not None
    assert report.progress == 20
    assert report.message == "old"
    assert [line.text for line in report.lines] == ["first", "second"]


def test_a_closed_buffer_ignores_reports_but_takes_worker_notes() -> None:
    buffer = ReportBuffer(_task())
    buffer.log("before", "info")
    buffer.close()
    buffer.log("after", "info")
    buffer.progress(50, None, None)
    buffer.note("from the worker", "warning")
    report = buffer.take()
    assert report is not None
    assert report.progress is None
    assert [line.text for line in report.lines] == ["before", "from the worker"]


def test_buffer_refuses_a_detail_that_is_not_json() -> None:
    import pytest

    buffer = ReportBuffer(_task())
    with pytest.raises(TypeError, match="JSON-serializable"):
        buffer.progress(None, None, {"x": object()})


def test_buffer_is_thread_safe() -> None:
    buffer = ReportBuffer(_task())

    def hammer(name: str) -> None:
        for i in range(2000):
            buffer.log(f"{name} {i}", "info")
            buffer.progress(i / 20, None, None)

    threads = [threading.Thread(target=hammer, args=(str(n),)) for n in range(4)]
    for t in threads:
        t.start()
    taken = 0
    while any(t.is_alive() for t in threads):
        report = buffer.take()
        taken += len(report.lines) if report else 0
    for t in threads:
        t.join()
    report = buffer.take()
    taken += len(report.lines) if report else 0
    assert taken == 8000
