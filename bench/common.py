"""What the benchmarks share: a real server subprocess, a lean HTTP client, wrk, stats."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx

from taskgate.storage import connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def store_url(db: Path | str) -> str:
    """The database URL of ``db``: a SQLite file's path, or a URL as it is."""
    return f"sqlite:///{db}" if isinstance(db, Path) else db


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {pct(ms, 50):.2f} ms, p90 {pct(ms, 90):.2f} ms, p99 {pct(ms, 99):.2f} ms, "
        f"mean {statistics.fmean(ms):.2f} ms (n={len(ms)})"
    )


@contextlib.contextmanager
def serve(
    db: Path | str,
    *,
    workers: int,
    app: str = "bench.app:app",
    extra: Sequence[str] = (),
    pids: list[int] | None = None,
) -> Iterator[str]:
    """Run `taskgate serve` as a user would, on ``db`` (a SQLite file, or a database
    URL); yield its base URL. ``pids``, if given, receives the server's process id (to
    read its memory, say). What the server writes to stderr is shown after it stops,
    less its warning that authentication is off (which the benchmarks want)."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TASKGATE_LOG_LEVEL="warning")
    cmd = [
        sys.executable,
        "-m",
        "taskgate",
        "serve",
        app,
        "--db",
        store_url(db),
        "--port",
        str(port),
        "--workers",
        str(workers),
        # The benchmarks measure the task paths, not API keys: a checked key is served
        # from an in-process cache (one SHA-256 per request), so auth is off here.
        "--no-auth",
        *extra,
    ]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        if pids is not None:
            pids.append(proc.pid)
        try:
            base = _ready(proc, f"http://127.0.0.1:{port}")
            asyncio.run(_workers_registered(store_url(db), workers))
            yield base
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            told = _told(stderr)
            if told:
                print(textwrap.indent(told, "  serve: "), flush=True)


def _ready(proc: subprocess.Popen[bytes], base: str) -> str:
    """``base`` once the server answers /readyz (its stderr is shown after, on failure)."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"taskgate serve exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("taskgate serve did not become ready in 30 s")
        time.sleep(0.1)
    return base


async def _workers_registered(url: str, workers: int, timeout: float = 60.0) -> None:
    """Return once ``workers`` worker processes have registered in the store: a worker
    process takes a second or so to start, which no throughput figure should include."""
    connector = connect(url, apply_migrations=False)
    await connector.open()
    try:
        deadline = time.monotonic() + timeout
        while len(await connector.fetch_all("list_workers", {})) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} worker(s) did not register in {timeout:g} s")
            await asyncio.sleep(0.05)
    finally:
        await connector.close()


_NO_AUTH_BANNER = re.compile(
    r"^\*{20,}\n.*?^\*{20,}\n|^.*authentication is off \(--no-auth\)\n",
    re.MULTILINE | re.DOTALL,
)


def _told(stderr: IO[bytes]) -> str:
    """What the server wrote to ``stderr``, without the warning about --no-auth."""
    stderr.seek(0)
    text = stderr.read().decode(errors="replace")
    return _NO_AUTH_BANNER.sub("", text).strip()


class RawClient:
    """A minimal HTTP/1.1 keep-alive client, so the load generator costs little CPU."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("  installing wrk (Debian package) for the HTTP load ...", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is needed for W3: apt-get install wrk")
    return path


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_LAT = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


def wrk(
    url: str, *, connections: int, seconds: int, threads: int = 1, headers: Sequence[str] = ()
) -> dict[str, float]:
    """Run wrk against ``url`` (with ``headers``, ``"name: value"`` each); return
    requests/s and latency percentiles in ms."""
    extra = [arg for h in headers for arg in ("-H", h)]
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = _WRK_RPS.search(out)
    if m is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    result = {"rps": float(m.group(1))}
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for p, value, unit in _WRK_LAT.findall(out):
        result[f"p{p}"] = float(value) * scale[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return result
