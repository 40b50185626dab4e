"""Command-line flags that feed `taskgate.settings.Settings`.

Each flag is the highest-priority source of one setting; an unset flag leaves the TOML
file and ``TASKGATE_*`` environment variables in charge. `settings_from` merges them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from taskgate.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

_LEVELS = ["debug", "info", "warning", "error"]


def _option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.option(*decls, default=None, **attrs)


CONFIG = _option(
    "--config",
    type=click.Path(dir_okay=False),
    help="TOML settings file [default: $TASKGATE_CONFIG, else ./taskgate.toml if present].",
)
DATABASE = _option(
    "--db",
    "--database",
    "database",
    metavar="URL",
    help="Task store: sqlite:///file.db (relative), sqlite:////abs/file.db,"
    " postgresql://user@host:5432/dbname (several machines), memory:// (one process)"
    " [default: sqlite:///taskgate.db].",
)
POOL_SIZE = _option(
    "--pool-size",
    type=click.IntRange(min=1),
    help="PostgreSQL: most connections this process opens for statements [default: 10].",
)
POOL_TIMEOUT = _option(
    "--pool-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="PostgreSQL: seconds a request waits for a free connection before failing"
    " with 503 [default: 5].",
)
SYNCHRONOUS = _option(
    "--synchronous",
    type=click.Choice(["OFF", "NORMAL", "FULL", "EXTRA"], case_sensitive=False),
    help="SQLite durability; FULL means a 202 is on disk [default: FULL].",
)
HOST = _option("--host", help="Address the HTTP API listens on [default: 127.0.0.1].")
PORT = _option("--port", type=int, help="Port of the HTTP API; 0 picks a free one [default: 8006].")
WORKERS = _option(
    "--workers", type=int, help="Worker processes to start; 0 for none [default: one per core]."
)
NO_WORKERS = click.option(
    "--no-workers",
    is_flag=True,
    default=False,
    help="Serve the API only, starting no worker (the same as --workers 0): workers run"
    " elsewhere, as `taskgate worker`, on a shared PostgreSQL database.",
)
CONCURRENCY = _option(
    "--concurrency", type=int, help="Tasks one worker process runs at once [default: 64]."
)
LEASE = _option(
    "--lease",
    type=float,
    help="Seconds a worker holds a task without renewing it; a dead worker's tasks are"
    " recovered after this [default: 15].",
)
SHUTDOWN_GRACE = _option(
    "--shutdown-grace",
    type=float,
    help="Seconds running tasks get to finish on SIGTERM/SIGINT [default: 20].",
)
LOG_LEVEL = _option(
    "--log-level", type=click.Choice(_LEVELS, case_sensitive=False), help="[default: info]"
)
AUTH = click.option(
    "--auth/--no-auth",
    default=None,
    help="Require an API key on every request; --no-auth lets anyone who can reach the"
    " port act as admin of every tenant [default: --auth].",
)
LOG_JSON = click.option(
    "--log-json/--log-text",
    default=None,
    help="Log one JSON object per line instead of text [default: text].",
)
METRICS_PUBLIC = click.option(
    "--metrics-public/--metrics-private",
    default=None,
    help="GET /metrics without an API key (for a Prometheus on a trusted network)"
    " [default: --metrics-private: an admin key, sent as a Bearer token].",
)
METRICS_PORT = _option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve this worker's own Prometheus metrics on this port, at /metrics, on the"
    " `host` setting's address [default: not served].",
)
TRACING = click.option(
    "--tracing/--no-tracing",
    default=None,
    help="OpenTelemetry spans for requests and task runs (needs taskgate[otel]; the"
    " exporter is set by the OTEL_* variables) [default: --no-tracing].",
)
DIALECT = click.option(
    "--dialect",
    "dialects",
    multiple=True,
    metavar="NAME",
    help="Also serve another system's task API (repeatable): proxmox, gcore, cloudcoin,"
    " rediscloud, pulp [default: none; $TASKGATE_DIALECTS].",
)
TLS_CERT = _option(
    "--tls-cert", "tls_certfile", metavar="FILE", help="Serve HTTPS with this PEM certificate."
)
TLS_KEY = _option("--tls-key", "tls_keyfile", metavar="FILE", help="The certificate's key (PEM).")
TLS_SELF_SIGNED = click.option(
    "--tls-self-signed",
    "tls_self_signed",
    is_flag=True,
    default=None,
    help="Serve HTTPS with a certificate signed by a local CA made beside the database;"
    " the banner prints the CA's path for clients to trust.",
)


def apply(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply several option decorators, in the order given (as --help lists them)."""

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def settings_from(flags: dict[str, Any], *, app: str | None = None) -> Settings:
    """Settings from the given flag values (None: not given) over the other sources."""
    values = dict(flags)
    config = values.pop("config", None)
    if not values.get("dialects", True):  # a repeatable flag not given is (), not None
        values.pop("dialects")
    if app is not None:
        values["app"] = app
    if isinstance(values.get("log_level"), str):
        values["log_level"] = values["log_level"].lower()
    if isinstance(values.get("synchronous"), str):
        values["synchronous"] = values["synchronous"].upper()
    return load_settings(values, config=config)
