"""The ending rules, one by one (`taskgate.runtime.ending.decide`), and the handler
threads."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from taskgate.model import ErrorInfo, State, Task
from taskgate.runtime.buffer import ReportBuffer
from taskgate.runtime.ending import WORKER_SHUTDOWN, decide
from taskgate.runtime.execution import Execution, Outcome, StopReason, forced, raised, returned
from taskgate.runtime.threads import HandlerThreads

from . import handlers


def _execution(
    loop: asyncio.AbstractEventLoop,
    *,
    reason: StopReason | None = None,
    attempt: int = 1,
    max_attempts: int = 1,
    retry_on_worker_loss: bool = False,
    timeout: float | None = None,
) -> Execution:
    now = datetime.now(UTC)
    task = Task(
        id="t",
        upid="u",
        type="flaky",
        state=State.RUNNING,
        params={},
        created_at=now,
        updated_at=now,
        attempt=attempt,
        max_attempts=max_attempts,
        retry_on_worker_loss=retry_on_worker_loss,
        timeout=timeout,
        worker="w",
    )
    execution = Execution(task, handlers.app.operations["flaky"], ReportBuffer(task), loop)
    execution.stop_reason = reason
    return execution


async def test_a_result_succeeds_even_after_a_stop_request() -> None:
    loop = asyncio.get_running_loop()
    assert decide(_execution(loop), returned({"a": 1})).state is State.SUCCEEDED
    for reason in ("canceled", "timed_out", "shutdown"):
        ending = decide(_execution(loop, reason=reason), returned("done"))  # type: ignore[arg-type]
        assert ending.state is State.SUCCEEDED
        assert ending.result == "done"


async def test_none_after_a_stop_request_ends_as_the_request_says() -> None:
    loop = asyncio.get_running_loop()
    assert decide(_execution(loop, reason="canceled"), returned(None)).state is State.CANCELED
    ending = decide(_execution(loop, reason="timed_out", timeout=3), returned(None))
    assert ending.state is State.TIMED_OUT
    assert ending.error == ErrorInfo("TimeoutError", "task exceeded its timeout of 3 s")
    ending = decide(_execution(loop, reason="shutdown"), returned(None))
    assert ending.state is State.FAILED
    assert ending.error is not None and ending.error.type == WORKER_SHUTDOWN
    assert decide(_execution(loop, reason="lost"), returned(None)).action == "none"


async def test_shutdown_requeues_when_the_task_allows_it() -> None:
    loop = asyncio.get_running_loop()
    execution = _execution(loop, reason="shutdown", max_attempts=2, retry_on_worker_loss=True)
    ending = decide(execution, forced("killed"))
    assert (ending.action, ending.delay) == ("retry", 0.0)
    last = _execution(loop, reason="shutdown", attempt=2, max_attempts=2, retry_on_worker_loss=True)
    assert decide(last, forced("killed")).state is State.FAILED


async def test_errors_retry_while_attempts_remain() -> None:
    loop = asyncio.get_running_loop()
    ending = decide(_execution(loop, max_attempts=3), raised(ValueError("x")))
    assert ending.action == "retry"
    assert 0 < ending.delay <= 0.05  # flaky's backoff
    assert ending.lines[0][0].startswith("attempt 1 of 3 failed: ValueError: x; retrying in")
    ending = decide(_execution(loop, attempt=3, max_attempts=3), raised(ValueError("x")))
    assert ending.state is State.FAILED
    assert ending.error is not None and ending.error.traceback is not None


async def test_errors_a_retry_cannot_fix_are_not_retried() -> None:
    loop = asyncio.get_running_loop()
    ending = decide(_execution(loop, max_attempts=3), returned(object()))
    assert ending.state is State.FAILED
    assert ending.error is not None and ending.error.type == "TypeError"
    assert "not retried" in ending.lines[0][0]


async def test_interrupts() -> None:
    from taskgate import TaskCanceled, TaskTimedOut

    loop = asyncio.get_running_loop()
    assert decide(_execution(loop), raised(TaskCanceled())).state is State.CANCELED
    assert decide(_execution(loop), raised(TaskTimedOut())).state is State.TIMED_OUT
    # a cancel request honoured by raising anything ends canceled, not failed or retried
    execution = _execution(loop, reason="canceled", max_attempts=3)
    assert decide(execution, raised(RuntimeError("interrupted"))).state is State.CANCELED
    assert decide(_execution(loop, reason="canceled"), forced("killed")).state is State.CANCELED
    timed = _execution(loop, reason="timed_out", timeout=1)
    assert decide(timed, raised(TaskCanceled())).state is State.TIMED_OUT


async def test_first_settle_wins() -> None:
    execution = _execution(asyncio.get_running_loop())
    execution.settle(returned(1))
    execution.settle(Outcome("forced"))
    assert (await execution.outcome).value == 1


def test_handler_threads_grow_past_a_stuck_thread() -> None:
    threads = HandlerThreads(keep=1, idle_timeout=60)
    stuck = threading.Event()
    release = threading.Event()
    done = threading.Event()

    def stick() -> None:
        stuck.set()
        release.wait(60)

    try:
        threads.submit(stick)
        assert stuck.wait(60)
        threads.submit(done.set)  # does not queue behind the stuck thread
        assert done.wait(60)
        assert threads.size == 2
    finally:
        release.set()
        threads.shutdown()


def test_handler_threads_refuse_work_after_shutdown() -> None:
    threads = HandlerThreads()
    threads.shutdown()
    with pytest.raises(RuntimeError):
        threads.submit(lambda: None)
