"""The worker-process supervisor, with tiny Python child processes standing in for workers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from taskgate.runtime.supervisor import (
    PID_PLACEHOLDER,
    Backoff,
    Supervisor,
    describe_exit,
    die_with_parent,
)

# A stand-in worker: writes its argv's id to a file, then sleeps until SIGTERM (exit 0).
GRACEFUL = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
open(sys.argv[2], "a").write(sys.argv[1] + "\\n")
time.sleep(60)
"""
# Ignores SIGTERM: must be killed.
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[2], "a").write(sys.argv[1] + "\\n")
time.sleep(60)
"""
CRASH = "import sys; open(sys.argv[2], 'a').write(sys.argv[1] + '\\n'); sys.exit(3)"


def command(script: str, log: Path) -> Callable[[str], Sequence[str]]:
    def build(worker_id: str) -> Sequence[str]:
        return [sys.executable, "-c", script, worker_id, str(log)]

    return build


def namer(slot: int, generation: int) -> str:
    return f"test-w{slot}.{generation}-{PID_PLACEHOLDER}"


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_starts_workers_and_stops_them_gracefully(tmp_path: Path) -> None:
    log = tmp_path / "started"
    lost: list[str] = []

    async def on_lost(worker_id: str) -> None:
        lost.append(worker_id)

    sup = Supervisor(command(GRACEFUL, log), 2, name=namer, on_lost=on_lost, stop_timeout=10)
    await sup.start()
    workers = sup.workers
    assert [w.slot for w in workers] == [1, 2]
    for w in workers:
        assert w.worker_id == f"test-w{w.slot}.1-{w.pid}"
        assert alive(w.pid)
    await wait_for(lambda: len(lines(log)) == 2)
    # the child got the template; the supervisor knows the expanded id
    assert sorted(lines(log)) == [f"test-w1.1-{PID_PLACEHOLDER}", f"test-w2.1-{PID_PLACEHOLDER}"]
    await sup.stop()
    assert sup.workers == []
    assert lost == []  # exit 0 after SIGTERM: nothing to recover
    assert not any(alive(w.pid) for w in workers)


async def test_restarts_a_worker_that_dies_and_reports_it_lost(tmp_path: Path) -> None:
    log = tmp_path / "started"
    lost: list[str] = []

    async def on_lost(worker_id: str) -> None:
        lost.append(worker_id)

    sup = Supervisor(command(GRACEFUL, log), 1, name=namer, on_lost=on_lost, stop_timeout=10)
    await sup.start()
    await wait_for(lambda: len(lines(log)) == 1)
    first = sup.workers[0]
    os.kill(first.pid, signal.SIGKILL)
    await wait_for(lambda: bool(sup.workers) and sup.workers[0].pid != first.pid)
    second = sup.workers[0]
    assert lost == [first.worker_id]
    assert second.generation == 2
    assert second.worker_id == f"test-w1.2-{second.pid}"
    assert sup.restarts == 1
    await wait_for(lambda: len(lines(log)) == 2)  # its SIGTERM handler is in place
    await sup.stop()
    assert lost == [first.worker_id]


async def test_a_crash_loop_backs_off(tmp_path: Path) -> None:
    log = tmp_path / "started"
    lost: list[str] = []

    async def on_lost(worker_id: str) -> None:
        lost.append(worker_id)

    backoff = Backoff(initial=0.05, maximum=0.2, healthy_after=60)
    sup = Supervisor(
        command(CRASH, log), 1, name=namer, on_lost=on_lost, stop_timeout=5, backoff=backoff
    )
    await sup.start()
    await wait_for(lambda: sup.restarts >= 4)
    await sup.stop()
    assert len(lost) >= 4
    assert len(set(lost)) == len(lost)  # every start has its own id
    assert backoff.delay(0) == 0
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 10)] == [0.05, 0.1, 0.2, 0.2, 0.2]


async def test_stop_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "started"
    lost: list[str] = []

    async def on_lost(worker_id: str) -> None:
        lost.append(worker_id)

    sup = Supervisor(command(STUBBORN, log), 1, name=namer, on_lost=on_lost, stop_timeout=0.5)
    await sup.start()
    await wait_for(lambda: len(lines(log)) == 1)  # its SIGTERM handler is in place
    worker = sup.workers[0]
    await sup.stop()
    assert not alive(worker.pid)
    assert lost == [worker.worker_id]


async def test_kill_cuts_the_stop_short(tmp_path: Path) -> None:
    log = tmp_path / "started"
    sup = Supervisor(command(STUBBORN, log), 2, name=namer, stop_timeout=3600)
    await sup.start()
    await wait_for(lambda: len(lines(log)) == 2)
    pids = [w.pid for w in sup.workers]
    stopping = asyncio.create_task(sup.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    sup.kill()
    await asyncio.wait_for(stopping, 20)
    assert not any(alive(p) for p in pids)


async def test_a_failing_recovery_does_not_stop_supervision(tmp_path: Path) -> None:
    log = tmp_path / "started"

    async def on_lost(worker_id: str) -> None:
        raise RuntimeError("store down")

    sup = Supervisor(command(GRACEFUL, log), 1, name=namer, on_lost=on_lost, stop_timeout=10)
    await sup.start()
    first = sup.workers[0]
    os.kill(first.pid, signal.SIGKILL)
    await wait_for(lambda: bool(sup.workers) and sup.workers[0].pid != first.pid)
    await sup.stop()


async def test_zero_workers_is_fine() -> None:
    sup = Supervisor(lambda wid: ["true"], 0, name=namer)
    await sup.start()
    assert sup.workers == []
    await sup.stop()


def test_describe_exit() -> None:
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_die_with_parent_knows_its_parent() -> None:
    assert die_with_parent(os.getppid() + 1_000_000) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
async def test_die_with_parent_gets_sigterm_when_the_parent_dies(tmp_path: Path) -> None:
    # parent -> middle (dies at once) -> child (asked to die with middle)
    flag = tmp_path / "got-sigterm"
    child = (
        "import os, signal, sys, time\n"
        "from taskgate.runtime.supervisor import die_with_parent\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (open({str(flag)!r}, 'w').close(),"
        " sys.exit(0)))\n"
        "assert die_with_parent(int(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    middle = (
        "import os, subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())],"
        " stdout=subprocess.PIPE)\n"
        "assert p.stdout.readline().strip() == b'ready'\n"
        "os._exit(0)\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", middle)
    assert await proc.wait() == 0
    await wait_for(flag.exists)
