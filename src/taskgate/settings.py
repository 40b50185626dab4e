"""One settings object, fed (lowest to highest) by defaults, an optional TOML file,
``TASKGATE_*`` environment variables, and command-line flags.

    # taskgate.toml            # or: TASKGATE_PORT=9000   # or: --port 9000
    port = 9000
    database = "postgresql://..."

The TOML file is ``--config PATH``, else ``TASKGATE_CONFIG``, else ``./taskgate.toml``
when it exists. A key may sit at the top level or under a ``[taskgate]`` table.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from taskgate.durations import parse_duration
from taskgate.errors import ConfigurationError
from taskgate.ids import node_name

ENV_PREFIX = "TASKGATE_"


class Settings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    app: str = "taskgate.example:app"
    """Import path of the `App` whose operations this node runs: ``module:attribute``."""
    database: str = "sqlite:///taskgate.db"
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``memory://``,
    ``postgresql://user@host:port/dbname``."""
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    """SQLite's ``synchronous``: FULL means a 202 is on disk."""
    pool_size: int = pydantic.Field(10, ge=1)
    """PostgreSQL: most connections one process opens for statements (each process also
    holds one for LISTEN, and a worker one for the scheduler lock)."""
    pool_timeout: float = pydantic.Field(5.0, gt=0)
    """PostgreSQL: seconds a request waits for a free connection before it fails as
    unavailable (503). When the server is down, requests fail at once instead."""

    host: str = "127.0.0.1"
    port: int = pydantic.Field(8006, ge=0, le=65535)
    max_body_size: int = pydantic.Field(1024 * 1024, ge=1024)
    """Largest request body accepted, in bytes (larger: 413)."""
    max_wait: float = pydantic.Field(60.0, gt=0)
    """Longest ``?wait=N`` a client may ask for, in seconds."""
    retry_after: int = pydantic.Field(1, ge=0)
    """``Retry-After`` seconds sent with a 202."""
    auth: bool = True
    """Every API request needs an API key (``Authorization: Bearer <key>``). False
    (``serve --no-auth``): everyone is the admin of every tenant, unauthenticated."""

    workers: int | None = pydantic.Field(None, ge=0)
    """Worker processes ``serve`` starts (None: one per core; 0: none)."""
    concurrency: int = pydantic.Field(64, ge=1)
    """Tasks one worker process runs at once."""
    claim_batch: int = pydantic.Field(64, ge=1)
    """Most tasks one claim takes."""
    lease: float = pydantic.Field(15.0, gt=0)
    """Seconds a worker holds a task without renewing; a dead worker's tasks are
    recovered after this."""
    heartbeat_interval: float | None = pydantic.Field(None, gt=0)
    """Seconds between lease renewals (None: a third of ``lease``)."""
    poll_interval: float = pydantic.Field(2.0, gt=0)
    """Safety poll for due tasks; wake-ups normally come from notifications."""
    reaper_interval: float = pydantic.Field(2.0, gt=0)
    """Seconds between the scheduler's looks for tasks whose lease ran out."""
    schedule_interval: float = pydantic.Field(1.0, gt=0)
    """Most seconds between the scheduler's looks at the schedules: how soon it sees a
    new or changed schedule, or a run's end (a run itself is submitted on time, by a
    timer)."""
    leader_interval: float = pydantic.Field(1.0, gt=0)
    """Seconds between a worker's tries to become the scheduler (the one worker of the
    store that runs the reaper) and, once it is, between its checks that it still is.
    On PostgreSQL a scheduler that stops checking (frozen) loses the role after five of
    these (at least 1 s); one that dies loses it at once."""
    archive_after: float = pydantic.Field(86400.0, ge=0)
    """Seconds an ended task stays in the hot table before it moves to history (``7d``,
    ``never``; an operation may say otherwise)."""
    purge_after: float = pydantic.Field(30 * 86400.0, ge=0)
    """Seconds after its end an ended task is deleted, with its log (``90d``,
    ``never``; an operation may say otherwise). Shorter than ``archive_after``: deleted
    from the hot table, never archived."""
    retention_interval: float = pydantic.Field(60.0, gt=0)
    """Seconds between the scheduler's retention passes (archive, then purge), which go
    on at once while a pass finds a full batch."""
    priority_aging: float = pydantic.Field(300.0, gt=0)
    """Seconds a due task may wait behind higher priorities: then it is raised to the
    highest priority waiting, so that low priority never starves (``never``: strict)."""
    cancel_grace: float = pydantic.Field(5.0, ge=0)
    """Seconds a canceled or timed-out handler has to stop before it is ended by force."""
    shutdown_grace: float = pydantic.Field(20.0, ge=0)
    """Seconds running tasks get to finish on SIGTERM/SIGINT before they are ended."""
    flush_interval: float = pydantic.Field(0.1, gt=0)
    """Seconds between flushes of coalesced progress and log writes."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False
    """One JSON object per log line; lines about a task or a request carry its
    ``task_id``, ``task_type``, ``tenant`` and ``request_id``."""
    metrics_public: bool = False
    """``GET /metrics`` answers without an API key (a Prometheus on a trusted network).
    Otherwise it needs an admin key, which Prometheus can send as a Bearer token."""
    metrics_port: int | None = pydantic.Field(None, ge=1, le=65535)
    """``taskgate worker``: serve this process's own metrics on this port at
    ``/metrics`` (None: not served). The workers of ``serve`` need none: the API's
    ``/metrics`` reports theirs."""
    tracing: bool = False
    """OpenTelemetry tracing (``pip install taskgate[otel]``): spans for HTTP requests
    and for each run of a task, linked to its submit. The exporter comes from the
    standard ``OTEL_*`` variables unless the app sets a tracer provider itself."""

    dialects: tuple[str, ...] = ()
    """Other systems' task APIs to serve besides the native one (`taskgate.http.dialects`):
    ``proxmox``, ``gcore``, ``cloudcoin``, ``rediscloud``, ``pulp``. From the environment:
    ``TASKGATE_DIALECTS=proxmox,gcore``."""
    node: str | None = None
    """This process's node name: in the UPIDs of the tasks it submits, its worker ids and
    the Proxmox dialect's paths [default: the host name]. API machines behind one address
    share one name, so that a Proxmox client reaches its tasks through any of them."""
    proxmox_prefix: str = "/api2/json"
    """Where the Proxmox VE dialect is mounted."""
    gcore_prefix: str = ""
    """Where the Gcore Cloud dialect is mounted (its paths start with ``/cloud/v1``)."""
    cloudcoin_prefix: str = ""
    """Where the CloudCoin dialect is mounted (its paths: ``/api/v1/...`` and aliases)."""
    pulp_prefix: str = "/pulp/api"
    """Where the Pulp dialect is mounted: Pulp 1 there and under ``/v1``, Pulp 2 under
    ``/v2``."""
    rediscloud_prefix: str = "/rediscloud/v1"
    """Where the Redis Cloud dialect is mounted (Redis Cloud: ``.../v1``)."""
    rediscloud_task_days: int = pydantic.Field(10, ge=1, le=3650)
    """Days of tasks the Redis Cloud dialect's ``GET /tasks`` lists."""
    cloudcoin_tenant: str | None = None
    """The tenant a CloudCoin request without an API key acts for, with the role write,
    as CloudCoin's local wallet API takes requests without authentication (None: such
    requests are refused). For a trusted network only."""
    tls_certfile: str | None = None
    """Serve HTTPS with this certificate (PEM); needs ``tls_keyfile``."""
    tls_keyfile: str | None = None
    tls_self_signed: bool = False
    """Serve HTTPS with a certificate made on the spot (for trying it; prints the CA)."""

    @pydantic.field_validator(
        "archive_after", "purge_after", "retention_interval", "priority_aging", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value, never=True)
        return value

    @pydantic.field_validator("dialects", mode="before")
    @classmethod
    def _split_dialects(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @pydantic.field_validator("dialects")
    @classmethod
    def _known_dialects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from taskgate.http.dialects import DIALECTS

        unknown = sorted(set(value) - set(DIALECTS))
        if unknown:
            raise ValueError(
                f"unknown dialect(s) {', '.join(unknown)}; known: {', '.join(sorted(DIALECTS))}"
            )
        return value

    @pydantic.field_validator("node")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        if value is not None and node_name(value) != value:
            raise ValueError(
                "a node name is letters, digits and '-' (not first or last), at most 63"
                f" characters, as in a UPID; {node_name(value)!r}, say"
            )
        return value

    @pydantic.field_validator(
        "proxmox_prefix", "gcore_prefix", "cloudcoin_prefix", "rediscloud_prefix", "pulp_prefix"
    )
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("a prefix starts with '/' (or is empty: the root)")
        return value

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval or self.lease / 3


def _env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            nullable = Settings.model_fields[name].default is None
            values[name] = None if nullable and raw.lower() in ("", "none", "null") else raw
    return values


def _toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path}: {exc}") from None
    table = data.get("taskgate", data)
    if not isinstance(table, dict):
        raise ConfigurationError(f"config file {path}: [taskgate] must be a table")
    return dict(table)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources; raise `ConfigurationError` naming the bad setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config or environ.get(ENV_PREFIX + "CONFIG")
    if path is not None:
        values.update(_toml(Path(path)))
    elif Path("taskgate.toml").is_file():
        values.update(_toml(Path("taskgate.toml")))
    values.update(_env(environ))
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    values.pop("config", None)
    try:
        return Settings.model_validate(values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
