"""A real ``taskgate serve`` subprocess, and how a test follows tasks through it.

`Server` starts ``python -m taskgate serve tests.acceptance.app:app`` on a free port
(``--port 0``; the port is read from the banner serve prints) on a SQLite file or a
PostgreSQL URL, with two workers and short lease, heartbeat and reaper intervals so that
recovery is quick. Its output goes to a log file that is printed when a test fails.

Auth is on, as for a user: on a new database serve prints an admin key in its banner,
which `Server` reads (as a user would copy it) and keeps in its log folder for later
starts on the same database; `Server.client` sends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
APP = "tests.acceptance.app:app"
LEASE = 2.0
"""Seconds: a dead or frozen worker's tasks are recovered within about this."""
TERMINAL = {"succeeded", "failed", "canceled", "timed_out"}
_API = re.compile(r"API:\s+(http://\S+?)/v1\b")
_KEY = re.compile(r"Admin key:\s+(tgk_\S+)")

SETTINGS_ENV = {
    "TASKGATE_LEASE": str(LEASE),
    "TASKGATE_HEARTBEAT_INTERVAL": "0.5",
    "TASKGATE_REAPER_INTERVAL": "0.5",
    "TASKGATE_POLL_INTERVAL": "0.5",
    "TASKGATE_CANCEL_GRACE": "1",
    "TASKGATE_SHUTDOWN_GRACE": "3",
    "TASKGATE_MAX_BODY_SIZE": "65536",
    "TASKGATE_LOG_LEVEL": "info",
}


class Server:
    """One ``taskgate serve`` process tree, started and stopped by a test."""

    def __init__(
        self,
        database: Path | str,
        log_dir: Path,
        *,
        workers: int = 2,
        args: tuple[str, ...] = (),
        app: str = APP,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database = database
        self.env = dict(env or {})
        """More ``TASKGATE_*`` settings for this server (over `SETTINGS_ENV`)."""
        """A SQLite file, or a database URL (``postgresql://...``)."""
        self.app = app
        """The ``module:attribute`` serve runs (default: the acceptance app)."""
        self.log_dir = log_dir
        self.workers = workers
        self.args = args
        """More ``serve`` arguments (e.g. ``--no-auth``)."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.key: str | None = None
        """The admin key serve printed on its first start on this database."""
        self.log_path = log_dir / "serve-0.log"
        self._runs = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Server:
        self.log_path = self.log_dir / f"serve-{self._runs}.log"
        self._runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
        env.update(SETTINGS_ENV)
        env.update(self.env)
        argv = [
            sys.executable,
            "-m",
            "taskgate",
            "serve",
            self.app,
            "--port",
            "0",
            "--db",
            self.db_url,
            "--workers",
            str(self.workers),
            *self.args,
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (m := _API.search(self.log_text())):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{self.log_text()}")
            time.sleep(0.05)
        self.url = m.group(1)
        self.key = self._admin_key()
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while client.get("/readyz").status_code != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve never got ready:\n{self.log_text()}")
                time.sleep(0.05)
        return self

    def _admin_key(self) -> str | None:
        """The key in this start's banner, else the one an earlier start printed."""
        saved = self.log_dir / "admin-key"
        m = _KEY.search(self.log_text())
        if m is not None:
            saved.write_text(m.group(1))
            return m.group(1)
        return saved.read_text() if saved.exists() else None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as an init system would; SIGKILL everything if it does not end."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.crash()
                raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log_text()}") from None
        return self.proc.returncode

    def crash(self) -> None:
        """``kill -9`` of serve and every process under it, all frozen first so that none
        of them notices the others dying (as in a power cut)."""
        assert self.proc is not None
        tree = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in tree):
            assert time.monotonic() < deadline, "processes survived SIGKILL"
            time.sleep(0.02)

    # -- looking at it ----------------------------------------------------------------

    @property
    def db_url(self) -> str:
        """The ``--db`` serve is given."""
        if isinstance(self.database, Path):
            return f"sqlite:///{self.database}"
        return self.database

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def worker_pids(self) -> list[int]:
        """The worker processes serve runs now (its direct children)."""
        assert self.proc is not None
        return sorted(children(self.proc.pid))

    @property
    def headers(self) -> dict[str, str]:
        """What a client sends: the admin key, if serve printed one."""
        return {} if self.key is None else {"Authorization": f"Bearer {self.key}"}

    def make_key(
        self,
        role: str,
        *,
        tenant: str = "default",
        user: str | None = None,
        user_id: int | None = None,
        expires: str = "never",
    ) -> str:
        """A new API key, made as an operator would (``taskgate keys create``); the key
        it prints. The user is ``<role>-user`` unless given."""
        argv = [sys.executable, "-m", "taskgate", "keys", "create", "--db", self.db_url]
        argv += ["--tenant", tenant, "--user", user or f"{role}-user", "--role", role]
        argv += ["--expires", expires, "--json"]
        if user_id is not None:
            argv += ["--user-id", str(user_id)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
        out = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=60
        )
        return str(json.loads(out.stdout)["key"])

    def client(self, key: str | None = None) -> httpx.Client:
        """A client sending ``key``, else the admin key."""
        headers = self.headers if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)


# -- processes ----------------------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is already dead
        return None
    return int(fields[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    result: list[int] = []
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            result.append(child)
            todo.append(child)
    return result


def alive(pid: int) -> bool:
    return _parent_of(pid) is not None


def worker_pid(task: dict[str, Any]) -> int:
    """The pid in a task's ``worker`` field: serve names its workers ``<node>-w<n>-<pid>``."""
    worker = task["worker"]
    assert isinstance(worker, str), task
    return int(worker.rsplit("-", 1)[1])


# -- following tasks ----------------------------------------------------------------


def submit(client: httpx.Client, operation: str, params: Any = None, **query: Any) -> str:
    response = client.post(f"/v1/operations/{operation}", json=params or {}, params=query)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def wait_until(
    client: httpx.Client, task_id: str, states: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    """Follow the task with ``?wait=`` long polls until it is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/tasks/{task_id}", params={"wait": 5})
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["state"] in states:
            return task
        if task["state"] in TERMINAL:
            raise AssertionError(f"task ended {task['state']}, not {states}: {task}")
        if time.monotonic() > deadline:
            raise AssertionError(f"task still {task['state']} after {timeout} s: {task}")


def wait_ended(client: httpx.Client, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_until(client, task_id, TERMINAL, timeout)


def log_lines(client: httpx.Client, task_id: str) -> list[str]:
    response = client.get(f"/v1/tasks/{task_id}/log", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [line["t"] for line in response.json()["lines"]]


def active_tasks(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"state": "running,canceling", "limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
