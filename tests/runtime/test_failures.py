"""Handlers that fail: the error with its traceback, retries with backoff, bad results,
unknown operations, bad configuration."""

from __future__ import annotations

from taskgate import App
from taskgate.model import State
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings

from . import handlers
from .conftest import log_texts, open_service, running, wait_state


async def test_failure_keeps_the_error_and_its_traceback(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("boom", {"message": "it broke"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "ValueError"
    assert done.error.message == "it broke"
    assert done.error.traceback is not None
    assert "raise ValueError(message)" in done.error.traceback
    assert "Traceback (most recent call last)" in done.error.traceback
    # it starts at the handler: the runtime's own frames are left out
    assert "taskgate/runtime" not in done.error.traceback
    page = await service.log(task.id)
    assert [(line.t, line.level) for line in page.lines] == [
        ("about to fail", "info"),
        ("attempt 1 of 1 failed: ValueError: it broke", "error"),
    ]


async def test_retries_until_the_third_attempt_succeeds(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("flaky", {"succeed_on": 3})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.attempt == 3
    assert done.result == {"attempt": 3}
    lines = await log_texts(service, task.id)
    assert len(lines) == 2
    assert lines[0].startswith("attempt 1 of 3 failed: ValueError: attempt 1 fails; retrying in ")
    assert lines[1].startswith("attempt 2 of 3 failed: ValueError: attempt 2 fails; retrying in ")


async def test_fails_when_the_attempts_run_out(service: TaskService, settings: Settings) -> None:
    task = await service.submit("flaky", {"succeed_on": 10})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.attempt == 3
    assert done.error is not None and done.error.message == "attempt 3 fails"
    lines = await log_texts(service, task.id)
    assert [line.split(";")[0] for line in lines] == [
        "attempt 1 of 3 failed: ValueError: attempt 1 fails",
        "attempt 2 of 3 failed: ValueError: attempt 2 fails",
        "attempt 3 of 3 failed: ValueError: attempt 3 fails",
    ]


async def test_max_attempts_given_at_submit_wins(service: TaskService, settings: Settings) -> None:
    task = await service.submit("flaky", {"succeed_on": 10}, max_attempts=2)
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.attempt == 2


async def test_a_result_that_is_not_json_fails_clearly(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("bad_result")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "TypeError"
    assert "not JSON-serializable" in done.error.message


async def test_an_operation_the_worker_does_not_have_fails_clearly(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("noop")
    other = App("other")  # a worker whose app lacks "noop"
    worker_side = await open_service(settings.database, other)
    try:
        async with running(worker_side, settings):
            done = await wait_state(service, task.id)
    finally:
        await worker_side.close()
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "OperationNotFound"
    assert "'noop'" in done.error.message


async def test_a_handler_raising_timed_out_ends_timed_out(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("gives_up")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.TIMED_OUT
    assert done.error is not None and done.error.type == "TimeoutError"
    assert "the remote side took too long" in done.error.message


async def test_process_failure_carries_the_child_traceback(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("proc_boom")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "RuntimeError"
    assert done.error.message == "child failed"
    assert done.error.traceback and 'raise RuntimeError("child failed")' in done.error.traceback
    assert await log_texts(service, task.id) == [
        "about to fail",
        "attempt 1 of 1 failed: RuntimeError: child failed",
    ]


async def test_a_child_that_dies_fails_the_task(service: TaskService, settings: Settings) -> None:
    task = await service.submit("proc_exit")
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "ChildProcessError"
    assert "exit status 3" in done.error.message


async def test_process_isolation_needs_an_import_path(
    service: TaskService, settings: Settings
) -> None:
    task = await service.submit("proc_echo", {"value": "x"})
    saved = handlers.app.import_path
    handlers.app.import_path = None
    try:
        async with running(service, settings):
            done = await wait_state(service, task.id)
    finally:
        handlers.app.import_path = saved
    assert done.state is State.FAILED
    assert done.error is not None
    assert done.error.type == "ConfigurationError"
    assert "import_path" in done.error.message


async def test_async_process_handler(service: TaskService, settings: Settings) -> None:
    task = await service.submit("proc_async", {"value": "v"})
    async with running(service, settings):
        done = await wait_state(service, task.id)
    assert done.state is State.SUCCEEDED
    assert done.result["value"] == "v"
    assert await log_texts(service, task.id) == ["async echo v"]


def test_worker_id_default_names_node_and_pid(service: TaskService, settings: Settings) -> None:
    import os

    worker = Worker(service, settings)
    assert worker.worker_id.startswith(f"{service.node}-{os.getpid()}-")
    assert Worker(service, settings).worker_id != worker.worker_id
