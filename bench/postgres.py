"""PostgreSQL for the benchmarks: a database of their own on the machine's server.

The server comes from ``TASKGATE_BENCH_POSTGRES_URL`` (default
``postgresql://root@127.0.0.1:5432/postgres``); that database is only used to create and
drop ``taskgate_bench_<pid>_<n>``, one per run of a workload. The cluster itself is left
as it is: its settings (``synchronous_commit`` on, the server's default) are the ones
measured, and it is never reconfigured or restarted here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/postgres"
_numbers = itertools.count(1)


class Unreachable(Exception):
    """PostgreSQL cannot be used: the PostgreSQL workloads are skipped (the message
    says why)."""


def admin_url() -> str:
    return os.environ.get("TASKGATE_BENCH_POSTGRES_URL", DEFAULT_URL)


def _admin(statement: sql.Composed) -> None:
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)
    except psycopg.OperationalError as exc:
        raise _unreachable(exc) from exc


def server_settings() -> str:
    """The settings that decide what a commit costs, as one line."""
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('server_version', 'synchronous_commit', 'fsync', 'wal_sync_method',"
                " 'commit_delay') ORDER BY name"
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise _unreachable(exc) from exc
    return ", ".join(f"{name}={setting}" for name, setting in rows)


def _unreachable(exc: psycopg.OperationalError) -> Unreachable:
    first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return Unreachable(
        f"PostgreSQL at {admin_url()} is unreachable ({first}); set TASKGATE_BENCH_POSTGRES_URL"
    )


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A new, empty database on the server (taskgate migrates it); its URL. Dropped
    at the end, with whatever connections are still open to it."""
    name = f"taskgate_bench_{os.getpid()}_{next(_numbers)}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url())._replace(path="/" + name))
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
