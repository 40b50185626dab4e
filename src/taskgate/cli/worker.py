"""``taskgate worker``: run one worker process (no HTTP API)."""

from __future__ import annotations

import os
from typing import Any

import click

from taskgate.cli import options
from taskgate.cli.logs import configure_logging
from taskgate.errors import ConfigurationError
from taskgate.loader import load_app
from taskgate.runtime.supervisor import PID_PLACEHOLDER, die_with_parent
from taskgate.settings import Settings

WORKER_OPTIONS = (
    options.DATABASE,
    options.CONFIG,
    options.CONCURRENCY,
    options.LEASE,
    options.SHUTDOWN_GRACE,
    options.POOL_SIZE,
    options.POOL_TIMEOUT,
    options.SYNCHRONOUS,
    options.LOG_LEVEL,
    options.LOG_JSON,
    options.METRICS_PORT,
    options.TRACING,
)


def check_shared_database(settings: Settings) -> None:
    """Workers in other processes cannot see a memory store: refuse it."""
    if settings.database.lower().startswith("memory:"):
        raise ConfigurationError(
            "memory:// lives inside one process; worker processes need a shared database"
            " (e.g. --db sqlite:///taskgate.db)"
        )


@click.command()
@click.argument("app_path", metavar="[APP]", required=False)
@click.option(
    "--worker-id",
    metavar="ID",
    help="This worker's id, shown in its tasks' 'worker' field; '{pid}' in it is replaced"
    " by the process id [default: derived from host and pid].",
)
@click.option("--supervisor-pid", type=int, hidden=True)
@options.apply(*WORKER_OPTIONS)
def worker(
    app_path: str | None, worker_id: str | None, supervisor_pid: int | None, **flags: Any
) -> int:
    """Run a worker: claim due tasks of APP and run their handlers, until SIGTERM/SIGINT.

    APP is 'module:attribute' naming a taskgate.App [default: the `app` setting,
    taskgate.example:app]. On SIGTERM the worker stops claiming, lets running tasks finish
    within the shutdown grace period, then ends the rest with a clear reason.
    """
    settings = options.settings_from(flags, app=app_path)
    configure_logging(settings)
    check_shared_database(settings)
    app = load_app(settings.app)
    if supervisor_pid is not None and not die_with_parent(supervisor_pid):
        return 0  # serve is already gone: nothing to work for
    if worker_id is not None:
        worker_id = worker_id.replace(PID_PLACEHOLDER, str(os.getpid()))
    if settings.metrics_port is not None:
        from taskgate.metrics import serve_worker_metrics

        serve_worker_metrics(settings.metrics_port, settings.host)
    from taskgate.runtime import run_worker

    run_worker(settings, app, worker_id=worker_id)
    return 0
