"""W4: ten thousand clients waiting on ten thousand running tasks, on one API process.

One ``taskgate serve --workers 0`` process on SQLite. This process makes the tasks
``running`` itself (it claims them through `TaskService.claim` with a long lease, so
nothing else touches them), then opens the clients on raw sockets:

- half long-poll ``GET /v1/tasks/{id}?wait=30``;
- a quarter stream ``GET /v1/events?task_id={id}`` (answered by the event whose state
  is terminal);
- a quarter stream ``GET /v1/tasks/{id}/log?follow=true`` (answered by ``event: end``).

Once every client is connected (streams: their headers arrived; long polls: sent, then a
pause for the server to take them), it ends every task (`TaskService.finish`, all at
once) and measures, for each client, the delay from its task's recorded end
(``finished_at`` / ``updated_at`` in the answer) to the moment its answer was complete.
It also reads the server's peak resident memory (``VmHWM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from bench.app import app
from bench.common import pct, serve
from taskgate.model import State, Task
from taskgate.service import TaskService
from taskgate.storage import connect

CONNECT_CONCURRENCY = 256
"""Connections opened at once: stays under the server's listen backlog."""
SETTLE = 3.0
"""Seconds after the last long poll is sent, for the server to take them all in."""
ANSWER_TIMEOUT = 120.0


class Answer:
    """What one client saw: when its answer was complete, or what went wrong."""

    __slots__ = ("answered", "error", "kind", "task_id")

    def __init__(self, kind: str, task_id: str) -> None:
        self.kind = kind
        self.task_id = task_id
        self.answered: float | None = None
        self.error: str | None = None


async def _open(
    host: str, port: int, path: str, gate: asyncio.Semaphore
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
    return reader, writer


async def _headers(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    status = int((await reader.readline()).split()[1])
    headers: dict[bytes, bytes] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            return status, headers
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()


async def long_poll(
    host: str, port: int, task_id: str, gate: asyncio.Semaphore, sent: Callable[[], None]
) -> Answer:
    answer = Answer("long poll", task_id)
    reader, writer = await _open(host, port, f"/v1/tasks/{task_id}?wait=30", gate)
    sent()
    try:
        status, headers = await _headers(reader)
        body = await reader.readexactly(int(headers[b"content-length"]))
        done = time.time()
        task = orjson.loads(body)
        if status != 200 or task["finished_at"] is None:
            answer.error = f"{status}: {task.get('state', body[:100])}"
        else:
            answer.answered = done
    finally:
        writer.close()
    return answer


async def stream(
    host: str,
    port: int,
    task_id: str,
    kind: str,
    gate: asyncio.Semaphore,
    connected: Callable[[], None],
) -> Answer:
    """Read a chunked SSE response until the event that says the task has ended."""
    answer = Answer(kind, task_id)
    if kind == "events":
        path = f"/v1/events?task_id={task_id}"
    else:
        path = f"/v1/tasks/{task_id}/log?follow=true"
    reader, writer = await _open(host, port, path, gate)
    try:
        status, headers = await _headers(reader)
        connected()
        if status != 200 or headers.get(b"transfer-encoding") != b"chunked":
            answer.error = f"status {status}"
            return answer
        buffer = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                answer.error = "the stream ended without the end"
                return answer
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if _ended(event, kind):
                    answer.answered = time.time()
                    return answer
    finally:
        writer.close()


def _ended(event: bytes, kind: str) -> bool:
    """Whether ``event`` says the task has ended."""
    if kind == "log follow":
        return event.startswith(b"event: end\n")
    if not event.startswith(b"id: "):
        return False
    data = orjson.loads(event.split(b"data: ", 1)[1])
    return data["state"] in ("succeeded", "failed", "canceled", "timed_out")


async def make_running(db: Path, count: int) -> tuple[TaskService, list[Task]]:
    """``count`` tasks, claimed by this process with a long lease: running, untouched."""
    service = TaskService(connect(f"sqlite:///{db}"), app)
    await service.open()
    for start in range(0, count, 1000):
        await service.submit_many([("noop", {}) for _ in range(min(1000, count - start))])
    tasks: list[Task] = []
    while len(tasks) < count:
        tasks += await service.claim("bench-w4", 1000, 3600.0)
    return service, tasks


async def end_tasks(db: Path, ids: list[str]) -> dict[str, float]:
    """End every task of ``ids`` at once; note when each end was committed (and its
    notification sent): when `TaskService.finish` returned."""
    service = TaskService(connect(f"sqlite:///{db}"), app)
    await service.open()
    tasks = [t for i in range(0, len(ids), 500) for t in await service.get_many(ids[i : i + 500])]
    ended_at: dict[str, float] = {}

    async def end(task: Task) -> None:
        assert await service.finish(task, State.SUCCEEDED) is not None
        ended_at[task.id] = time.time()

    await asyncio.gather(*(end(t) for t in tasks))
    await service.close()  # sends the notifications of the last loop turn
    return ended_at


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Countdown:
    """Set once ``count`` things are done."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.event = asyncio.Event()
        if count <= 0:
            self.event.set()

    def done(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


Delay = tuple[str, float | None, str | None]
"""(kind of client, seconds from its task's end to its answer, or None and the error)."""


async def _clients(base: str, db: Path, count: int, server_pid: int) -> tuple[list[Delay], float]:
    host, port_text = base.removeprefix("http://").split(":")
    port = int(port_text)
    service, tasks = await make_running(db, count)
    idle = _memory_mb(server_pid, "VmRSS")
    print(f"  {len(tasks):,} tasks running; API process resident: {idle:.0f} MB")
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    half = count // 2
    quarter = half // 2
    streams_up, polls_sent = Countdown(half), Countdown(count - half)
    jobs: list[Awaitable[Answer]] = []
    for task in tasks[:quarter]:
        jobs.append(stream(host, port, task.id, "events", gate, streams_up.done))
    for task in tasks[quarter:half]:
        jobs.append(stream(host, port, task.id, "log follow", gate, streams_up.done))
    started = time.monotonic()
    running = [asyncio.ensure_future(asyncio.wait_for(job, ANSWER_TIMEOUT)) for job in jobs]
    await asyncio.wait_for(streams_up.wait(), ANSWER_TIMEOUT)  # streams first: no timeout
    running += [
        asyncio.ensure_future(
            asyncio.wait_for(long_poll(host, port, t.id, gate, polls_sent.done), ANSWER_TIMEOUT)
        )
        for t in tasks[half:]
    ]
    await asyncio.wait_for(polls_sent.wait(), ANSWER_TIMEOUT)
    connect_time = time.monotonic() - started
    print(f"  {count:,} clients connected in {connect_time:.1f} s")
    await asyncio.sleep(SETTLE)
    held = _memory_mb(server_pid, "VmRSS") - idle
    print(f"  their connections hold {held:.0f} MB: {held * 2**20 / count / 1024:.1f} KiB each")
    early = sum(r.done() for r in running)
    if early:
        print(f"  warning: {early} client(s) answered before their task ended")
    # Another process ends the tasks, so that this one only reads answers: its clock
    # readings are then not held up by the work of ending ten thousand tasks.
    await service.close()
    ids_file, ends_file = db.with_suffix(".ids.json"), db.with_suffix(".ends.json")
    _save(ids_file, [t.id for t in tasks])
    cpu0 = _cpu_seconds(server_pid)
    ender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.waiters", str(db), str(ids_file), str(ends_file)
    )
    assert await ender.wait() == 0, "the process ending the tasks failed"
    ended_at = _load(ends_file)
    finish_time = max(ended_at.values()) - min(ended_at.values())
    print(f"  {count:,} tasks ended within {finish_time:.2f} s")
    gathered = await asyncio.gather(*running, return_exceptions=True)
    cpu = _cpu_seconds(server_pid) - cpu0
    print(f"  server CPU time from the first end to the last answer: {cpu:.2f} s")
    delays: list[Delay] = []
    for r in gathered:
        if isinstance(r, BaseException):
            delays.append(("?", None, repr(r)))
        elif r.answered is None:
            delays.append((r.kind, None, r.error))
        else:
            delays.append((r.kind, r.answered - ended_at[r.task_id], None))
    return delays, finish_time


def _memory_mb(pid: int, field: str = "VmHWM") -> float:
    """``VmHWM`` (peak resident set) or ``VmRSS`` (now) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise RuntimeError(f"W4 needs {needed} open files; the limit is {soft} (ulimit -n)")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop
    return None


def run(workdir: Path, clients: int = 10_000) -> dict[str, float]:
    # Both processes hold a socket per client: the server inherits this limit.
    _raise_file_limit(clients + 1000)
    db = workdir / "w4.db"
    pids: list[int] = []
    with serve(db, workers=0, pids=pids) as base:
        gc.collect()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            answers, finish_time = runner.run(_clients(base, db, clients, pids[0]))
        peak = _memory_mb(pids[0])
    failed = [a for a in answers if a[1] is None]
    delays = [a[1] for a in answers if a[1] is not None]
    for kind in ("long poll", "events", "log follow"):
        mine = [d * 1000 for k, d, _ in answers if k == kind and d is not None]
        if mine:
            print(
                f"  W4 {kind:<10} n={len(mine):,}: p50 {pct(mine, 50):.0f} ms,"
                f" p99 {pct(mine, 99):.0f} ms, max {max(mine):.0f} ms"
            )
    if failed:
        print(f"  W4 {len(failed)} client(s) got no answer, e.g. {failed[0][2]}")
    ms = [d * 1000 for d in delays]
    result = {
        "answered": float(len(delays)),
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "max_ms": max(ms) if ms and not failed else float("inf"),
        "rss_mb": peak,
        "finish_s": finish_time,
    }
    print(
        f"  W4 all {len(delays):,}/{len(answers):,} answered: p50 {result['p50_ms']:.0f} ms,"
        f" p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms;"
        f" API process peak RSS {peak:.0f} MB (pid {pids[0]}, {os.cpu_count()} cores)"
    )
    return result


def _ender(db: Path, ids_file: Path, ends_file: Path) -> None:
    """The process that ends the tasks (see `end_tasks`)."""
    ids = orjson.loads(ids_file.read_bytes())
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        ends_file.write_bytes(orjson.dumps(runner.run(end_tasks(db, ids))))


def _save(path: Path, value: object) -> None:
    path.write_bytes(orjson.dumps(value))


def _load(path: Path) -> dict[str, float]:
    result: dict[str, float] = orjson.loads(path.read_bytes())
    return result


if __name__ == "__main__":
    _ender(*(Path(arg) for arg in sys.argv[1:4]))
