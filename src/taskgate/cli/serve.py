"""``taskgate serve``: the HTTP API in this process, plus supervised worker processes.

One process serves the API with uvicorn (uvloop and httptools when installed). Workers
run as child processes, ``python -m taskgate worker APP --worker-id ID``: a fresh
interpreter each (no state inherited from the API process: no SQLite connections, no
listening socket, no threads), the same code path as a standalone ``taskgate worker``,
and visible as such in ``ps``. They get the settings this process resolved, passed as
``TASKGATE_*`` environment variables, so flags, the TOML file and the environment mean
the same in both. `taskgate.runtime.supervisor.Supervisor` restarts them if they die.
``--no-workers`` (``--workers 0``) serves the API alone: on PostgreSQL, the workers of
other machines (``taskgate worker``) run its tasks (docs/deploying.md).

SIGTERM or SIGINT: the API stops accepting connections, the workers get SIGTERM and
their own grace period to finish running tasks, then serve exits 0. A second signal
ends the wait: workers still running are killed and their tasks recovered at once.

Every API request needs an API key unless ``--no-auth`` says otherwise (with a warning).
On a store with no key at all, serve makes an admin key and prints it once in its
banner; otherwise the banner says how to make one. Workers need no key: they use the
store directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import click
import uvicorn

import taskgate
from taskgate.app import App
from taskgate.auth.keys import NewKey
from taskgate.cli import options
from taskgate.cli.keys import create_command, first_key
from taskgate.cli.logs import configure_logging
from taskgate.cli.migrate import migrate_database
from taskgate.cli.tls import TlsFiles, tls_files
from taskgate.cli.worker import check_shared_database
from taskgate.errors import ConfigurationError
from taskgate.loader import load_app
from taskgate.metrics import shared_with_children
from taskgate.runtime.supervisor import PID_PLACEHOLDER, Supervisor
from taskgate.service import TaskService
from taskgate.settings import ENV_PREFIX, Settings
from taskgate.storage import connect, connect_settings

log = logging.getLogger("taskgate.serve")

HTTP_SHUTDOWN_TIMEOUT = 5.0
"""Seconds open requests (long polls included) get to finish when serve stops."""
WORKER_STOP_MARGIN = 5.0
"""Seconds beyond a worker's own grace periods before serve kills it on stop."""


def worker_count(settings: Settings) -> int:
    return settings.workers if settings.workers is not None else (os.cpu_count() or 1)


def settings_env(settings: Settings) -> dict[str, str]:
    """``TASKGATE_*`` variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            text = "none"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple | list):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def base_url(host: str, port: int, *, tls: bool = False) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling (serve owns SIGTERM and SIGINT), plus an event
    set when its startup is over, whichever way it went."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.startup_done.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _http_protocol() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


class Serve:
    """One run of ``taskgate serve``."""

    def __init__(
        self,
        settings: Settings,
        app: App,
        *,
        access_log: bool = False,
        config: str | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self.access_log = access_log
        self.config = config
        self.workers = worker_count(settings)
        if self.workers > 0:
            check_shared_database(settings)
        self._stop = asyncio.Event()
        self._signals = 0
        self.supervisor: Supervisor | None = None
        self.server: _Server | None = None
        self.first_key: NewKey | None = None
        self.tls: TlsFiles | None = None
        """The certificate served with (None: plain HTTP)."""
        """The admin key made on a store that had none: printed once, in the banner."""

    # -- signals ----------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("%s received: shutting down", signal.Signals(signum).name)
            self._stop.set()
        else:
            log.warning("second signal: stopping now")
            if self.server is not None:
                self.server.force_exit = True
            if self.supervisor is not None:
                self.supervisor.kill()

    # -- workers ----------------------------------------------------------------------

    def _worker_command(self, worker_id: str) -> list[str]:
        assert self.app.import_path is not None
        return [
            sys.executable,
            "-m",
            "taskgate",
            "worker",
            self.app.import_path,
            "--worker-id",
            worker_id,
            "--supervisor-pid",
            str(os.getpid()),
        ]

    def _worker_env(self) -> dict[str, str]:
        env = {**os.environ, **settings_env(self.settings)}
        env[ENV_PREFIX + "METRICS_PORT"] = "none"  # the API's /metrics shows theirs
        if self.config is not None:  # the same file, though the variables override it all
            env[ENV_PREFIX + "CONFIG"] = str(Path(self.config).resolve())
        return env

    async def _recover(self, worker_id: str) -> None:
        # A connector of its own, opened only when needed: the API's may already be
        # closing, and a worker's death is rare.
        connector = connect(
            self.settings.database, apply_migrations=False, synchronous=self.settings.synchronous
        )
        async with TaskService(connector, self.app, node=self.settings.node) as service:
            tasks = await service.recover_lost(worker=worker_id)
        if tasks:
            log.warning(
                "recovered %d task(s) of worker %s: %s",
                len(tasks),
                worker_id,
                ", ".join(f"{t.id} -> {t.state}" for t in tasks),
            )

    # -- run --------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await self._run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _run(self) -> int:
        settings = self.settings
        if not settings.auth:
            click.echo(NO_AUTH_WARNING, err=True)
            log.warning("authentication is off (--no-auth)")
        self.tls = tls_files(settings)
        report = await migrate_database(settings)
        for name in report.applied:
            log.info("applied migration %s", name)
        sock = bind_socket(settings.host, settings.port)
        port = int(sock.getsockname()[1])

        from taskgate.http import create_app

        service = TaskService(connect_settings(settings), self.app, node=settings.node)
        config = uvicorn.Config(
            create_app(service, settings),
            lifespan="on",
            http=_http_protocol(),
            ws="none",
            log_config=None,
            access_log=self.access_log,
            timeout_graceful_shutdown=int(HTTP_SHUTDOWN_TIMEOUT),
            ssl_certfile=self.tls.certfile if self.tls else None,
            ssl_keyfile=self.tls.keyfile if self.tls else None,
        )
        self.server = server = _Server(config)
        http = asyncio.create_task(_exit_code(server.serve(sockets=[sock])), name="http")
        ready = asyncio.create_task(server.startup_done.wait())
        await asyncio.wait({ready, http}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not server.started:
            sock.close()
            await http
            click.echo(
                "taskgate: error: the HTTP API failed to start (see the log above)", err=True
            )
            return 1

        if settings.auth:  # on the API's own store (which may be memory://)
            self.first_key = await first_key(service.connector)
        node = service.node
        self.supervisor = Supervisor(
            self._worker_command,
            self.workers,
            name=lambda slot, generation: f"{node}-w{slot}-{PID_PLACEHOLDER}",
            env=self._worker_env(),
            on_lost=self._recover,
            stop_timeout=settings.shutdown_grace + settings.cancel_grace + WORKER_STOP_MARGIN,
        )
        await self.supervisor.start()
        self._banner(port, report.version, report.location)

        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({stop, http}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        failed = http.done() and not self._stop.is_set()
        if failed:
            log.error("the HTTP server stopped unexpectedly; stopping the workers")
        server.should_exit = True
        await asyncio.gather(http, self.supervisor.stop())
        click.echo("taskgate stopped")
        return 1 if failed else 0

    def _banner(self, port: int, version: int, location: str) -> None:
        url = base_url(self.settings.host, port, tls=self.tls is not None)
        s = self.settings
        assert self.supervisor is not None
        pids = ", ".join(str(w.pid) for w in self.supervisor.workers)
        lines = [
            f"taskgate {taskgate.__version__} serving {self.app.import_path}"
            f" ({len(self.app.operations)} operations)",
            f"  API:       {url}/v1  (POST /v1/operations/{{type}}, GET /v1/tasks/{{id}})",
            f"  Docs:      {url}/docs  (OpenAPI: {url}/openapi.json)",
            f"  Dashboard: {url}/ui  (sign in with an API key)"
            if s.auth
            else f"  Dashboard: {url}/ui",
            f"  Database:  {location}  (schema version {version}"
            + (f", {s.database})" if s.database != location else ")"),
            f"  Workers:   {self.workers} process(es) x {s.concurrency} concurrent tasks"
            + (f"  (pids {pids})" if pids else "")
            if self.workers
            else f"  Workers:   none (run `taskgate worker {self.app.import_path} ...` elsewhere)",
        ]
        if self.tls is not None:
            lines.append(
                f"  TLS:       {self.tls.certfile}"
                + (f"  (CA: {self.tls.ca})" if self.tls.ca else "")
            )
        for name in s.dialects:
            prefix = getattr(s, f"{name}_prefix", "")
            lines.append(f"  Dialect:   {name} at {url}{prefix}")
        if s.host in ("0.0.0.0", "::", ""):
            lines.append(f"  Listening on all interfaces ({s.host or '*'}:{port})")
        lines.extend(self._auth_lines(url))
        lines.append("Press Ctrl+C to stop.")
        click.echo("\n".join(lines))

    def _auth_lines(self, url: str) -> list[str]:
        if not self.settings.auth:
            return ["  Auth:      OFF (--no-auth): every request acts as admin of every tenant"]
        lines = ["  Auth:      an API key on every request: Authorization: Bearer <key>"]
        new = self.first_key
        if new is None:
            lines.append(f"  New key:   {create_command(self.settings)}")
            return lines
        lines += [
            f"  Admin key: {new.token}",
            f"             (tenant {new.key.tenant}, user {new.key.user}; shown only this once:"
            " store it now)",
            f'  Try:       curl -H "Authorization: Bearer {new.token}" {url}/v1/tasks',
        ]
        return lines


NO_AUTH_WARNING = "\n".join(
    [
        "*" * 84,
        "WARNING: authentication is OFF (--no-auth). Anyone who can reach this server's port",
        "can read, submit, cancel and delete every tenant's tasks. Use it only where nothing",
        "untrusted can connect; leave --no-auth out to require API keys.",
        "*" * 84,
    ]
)


async def _exit_code(coro: Coroutine[Any, Any, None]) -> int:
    """Run uvicorn's serve(); it calls sys.exit() when the app's startup fails."""
    try:
        await coro
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@click.command()
@click.argument("app_path", metavar="[APP]", required=False)
@options.apply(
    options.HOST,
    options.PORT,
    options.DATABASE,
    options.WORKERS,
    options.NO_WORKERS,
    options.CONCURRENCY,
    options.CONFIG,
    options.LEASE,
    options.SHUTDOWN_GRACE,
    options.POOL_SIZE,
    options.POOL_TIMEOUT,
    options.SYNCHRONOUS,
    options.AUTH,
    options.LOG_LEVEL,
    options.LOG_JSON,
    options.METRICS_PUBLIC,
    options.TRACING,
    options.DIALECT,
    options.TLS_CERT,
    options.TLS_KEY,
    options.TLS_SELF_SIGNED,
)
@click.option("--access-log/--no-access-log", default=False, help="Log every HTTP request.")
def serve(app_path: str | None, access_log: bool, no_workers: bool, **flags: Any) -> int:
    """Serve the HTTP task API and run worker processes for APP.

    APP is 'module:attribute' naming a taskgate.App [default: the `app` setting,
    taskgate.example:app]. Migrations are applied first. Workers that die are restarted,
    and their tasks recovered at once. SIGTERM/SIGINT stop everything gracefully.
    With --no-workers it serves the API only, for workers that run elsewhere.
    """
    if no_workers:
        if flags["workers"]:
            raise click.UsageError("--no-workers starts no worker: leave out --workers")
        flags["workers"] = 0
    settings = options.settings_from(flags, app=app_path)
    configure_logging(settings)
    app = load_app(settings.app)
    run = Serve(settings, app, access_log=access_log, config=flags.get("config"))
    # the workers count in files the API's /metrics reads (taskgate.metrics)
    with shared_with_children(), asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run.run())
