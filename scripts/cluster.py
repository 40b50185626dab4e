"""``make cluster``: the multi-node setup of docs/deploying.md, on this machine.

Runs what several machines would run against one shared database: API processes
(``taskgate serve --no-workers``, on ports 8006 and 8007 by default) and worker processes
(``taskgate worker``), each a separate ``python -m taskgate`` process, exactly as an
operator starts them. Before that it creates the PostgreSQL database if it is missing,
applies the migrations (``taskgate migrate``) and makes an admin key (``taskgate keys
create``), which it prints with both URLs. Every process's output is streamed with its
name in front (``api1 |``, ``worker2 |``). Ctrl+C or SIGTERM stops them all gracefully
(a second one kills them); a process that dies is reported and the others keep running,
so ``kill -9`` of a worker shows the recovery.

    make cluster                                      # postgresql://root@127.0.0.1:5432/taskgate_cluster
    make cluster DB=postgresql://me@dbhost/tg CLUSTER_ARGS="--workers 5 --ports 9000,9001"
    .venv/bin/python -m scripts.cluster --help

`Cluster` is also what ``tests/cluster`` runs, so the tests start the same thing users do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgresql://root@127.0.0.1:5432/taskgate_cluster"
DEFAULT_APP = "taskgate.example:app"
DEFAULT_PORTS = (8006, 8007)
DEFAULT_WORKERS = 3
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0
"""Seconds the processes get to stop on SIGTERM (a worker's shutdown grace, 20 s by
default, and its cancel grace fit in it) before they are killed."""

_API = re.compile(r"API:\s+(https?://\S+?)/v1\b")
_WORKER = re.compile(r"worker (\S+) started:")


class ClusterError(Exception):
    """The cluster could not be started; the message says why."""


@dataclass
class Node:
    """One process of the cluster."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    url: str | None = None
    """An API node's base URL (from its banner), once it has printed it."""
    worker_id: str | None = None
    """A worker's id (from its log), once it has started."""
    started: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def shown(url: str) -> str:
    """``url`` with its password, if any, masked (for printing)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names if it does not exist; True if made.

    Other URLs (SQLite) are left alone: their file is made when first opened.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return False
    name = parts.path.lstrip("/")
    if not name:
        raise ClusterError(f"{shown(url)} names no database")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is not None:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.errors.DuplicateDatabase:
        return False  # made meanwhile by someone else: as good
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot create database {name!r} on {shown(url)}: {first}") from None


class Cluster:
    """API and worker processes of one app on one database, started and stopped together.

    ``env`` adds to (or overrides) the environment of every process (``TASKGATE_*``
    settings, say); ``out`` receives their prefixed output.
    """

    def __init__(
        self,
        database: str,
        *,
        app: str = DEFAULT_APP,
        host: str = "127.0.0.1",
        ports: Sequence[int] = DEFAULT_PORTS,
        workers: int = DEFAULT_WORKERS,
        env: Mapping[str, str] | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        if not ports:
            raise ClusterError("a cluster needs at least one API port")
        if database.lower().startswith("memory:"):
            raise ClusterError("memory:// lives inside one process: give a shared database")
        self.env = {**os.environ, **(env or {})}
        if self.env.get("TASKGATE_LOG_LEVEL", "info").lower() not in ("debug", "info"):
            raise ClusterError(
                "the workers' start is read from their info log: unset TASKGATE_LOG_LEVEL"
                " or make it info or debug"
            )
        self.database = database
        self.app = app
        self.out = out
        self.key = ""
        """The admin key made for this run."""
        base = [sys.executable, "-m", "taskgate"]
        serve = [*base, "serve", app, "--db", database, "--host", host, "--no-workers"]
        self.apis = [
            Node(f"api{i}", [*serve, "--port", str(port)]) for i, port in enumerate(ports, 1)
        ]
        self.workers = [
            Node(f"worker{i}", [*base, "worker", app, "--db", database])
            for i in range(1, workers + 1)
        ]
        self._width = max(len(n.name) for n in self.nodes)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        """Set to give up starting (a signal, in the command)."""
        self._hurry = threading.Event()

    @property
    def nodes(self) -> list[Node]:
        return [*self.apis, *self.workers]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.apis if n.url is not None]

    # -- output -------------------------------------------------------------------------

    def say(self, name: str, text: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self._width}} | {text}\n")
            self.out.flush()

    def _follow(self, node: Node) -> None:
        assert node.proc is not None and node.proc.stdout is not None
        for raw in node.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if node.url is None and (m := _API.search(line)):
                node.url = m.group(1)
                node.started.set()
            elif node.worker_id is None and (m := _WORKER.search(line)):
                node.worker_id = m.group(1)
                node.started.set()
            self.say(node.name, line)
        node.proc.stdout.close()

    # -- start --------------------------------------------------------------------------

    def _command(self, name: str, args: Sequence[str]) -> str:
        """Run ``taskgate ARGS`` to its end; its stdout (stderr is shown)."""
        done = subprocess.run(
            [sys.executable, "-m", "taskgate", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        for line in done.stderr.decode("utf-8", "replace").splitlines():
            self.say(name, line)
        if done.returncode != 0:
            raise ClusterError(f"`taskgate {args[0]}` failed (status {done.returncode})")
        return done.stdout.decode().strip()

    def _spawn(self, node: Node) -> None:
        node.proc = subprocess.Popen(
            node.argv,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl+C reaches the launcher only
        )
        node.reader = threading.Thread(target=self._follow, args=(node,), daemon=True)
        node.reader.start()

    def start(self, timeout: float = START_TIMEOUT) -> Cluster:
        """Prepare the database, start every process, wait until each is up."""
        if ensure_database(self.database):
            self.say("cluster", f"created database {shown(self.database)}")
        for line in self._command("migrate", ["migrate", "--db", self.database]).splitlines():
            self.say("migrate", line)
        admin = ["--user", "admin", "--role", "admin", "--description", "make cluster"]
        self.key = self._command("keys", ["keys", "create", "--db", self.database, *admin])
        for node in self.nodes:
            self._spawn(node)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while not node.started.wait(0.05):
                if not node.alive():
                    raise ClusterError(f"{node.name} exited while starting (see its output)")
                if self.stopping.is_set():
                    raise ClusterError("stopped while starting")
                if time.monotonic() > deadline:
                    raise ClusterError(f"{node.name} did not start within {timeout:g} s")
        return self

    # -- stop ---------------------------------------------------------------------------

    def hurry(self) -> None:
        """Stop waiting for a graceful stop: kill whatever still runs."""
        self._hurry.set()

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """SIGTERM every process, wait for them (SIGKILL after ``timeout`` s or `hurry`);
        each one's exit status."""
        running = [n for n in self.nodes if n.alive()]
        for node in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(n.alive() for n in running):
            if self._hurry.is_set() or time.monotonic() > deadline:
                for node in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(node.pid, signal.SIGKILL)  # its task children too
            time.sleep(0.05)
        statuses: dict[str, int] = {}
        for node in self.nodes:
            if node.proc is not None:
                statuses[node.name] = node.proc.wait()
            if node.reader is not None:
                node.reader.join(5)
        return statuses

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the command --------------------------------------------------------------------

    def banner(self) -> str:
        key, api = self.key, self.apis[0].url
        pids = ", ".join(str(n.pid) for n in self.workers)
        lines = [f"taskgate cluster: {self.app} on {shown(self.database)}"]
        lines += [f"  {n.name + ':':<11}{n.url}/v1  (pid {n.pid})" for n in self.apis]
        lines += [
            f"  {'Workers:':<11}{len(self.workers)} process(es)"
            + (f"  (pids {pids})" if pids else ""),
            f"  {'Admin key:':<11}{key}",
            f'  {"Try:":<11}curl -H "Authorization: Bearer {key}" {api}/v1/tasks',
            "Press Ctrl+C to stop them all.",
        ]
        return "\n".join(lines)


def _ports(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text!r}") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make cluster",
        description="Run API and worker processes of one app on one database, locally.",
    )
    parser.add_argument("--db", default=DEFAULT_DB, help=f"[default: {DEFAULT_DB}]")
    parser.add_argument("--app", default=DEFAULT_APP, help=f"[default: {DEFAULT_APP}]")
    parser.add_argument("--host", default="127.0.0.1", help="[default: 127.0.0.1]")
    parser.add_argument(
        "--ports",
        type=_ports,
        default=list(DEFAULT_PORTS),
        help="API processes, one per port [default: 8006,8007]",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="worker processes [default: 3]"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cluster = Cluster(
            args.db, app=args.app, host=args.host, ports=args.ports, workers=args.workers
        )
    except ClusterError as exc:
        print(f"make cluster: error: {exc}", file=sys.stderr)
        return 2
    stopping = cluster.stopping

    def on_signal(signum: int, frame: object) -> None:
        if stopping.is_set():
            cluster.hurry()
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cluster.start()
    except ClusterError as exc:
        cluster.stop()
        print(f"make cluster: error: {exc}", file=sys.stderr)
        return 1
    cluster.say("cluster", "")
    for line in cluster.banner().splitlines():
        cluster.say("cluster", line)
    reported: set[str] = set()
    while not stopping.wait(0.2):
        for node in cluster.nodes:
            if not node.alive() and node.name not in reported:
                reported.add(node.name)
                assert node.proc is not None
                cluster.say("cluster", f"{node.name} exited with status {node.proc.returncode}")
        if len(reported) == len(cluster.nodes):
            break
    cluster.say("cluster", "stopping every process")
    statuses = cluster.stop()
    cluster.say("cluster", "stopped: " + ", ".join(f"{k} {v}" for k, v in statuses.items()))
    return 1 if reported else 0  # a process that ended by itself is worth a status


if __name__ == "__main__":
    sys.exit(main())
