"""Fresh PostgreSQL databases for tests, cheaply: one template per session, migrated
once, then ``CREATE DATABASE ... TEMPLATE`` per test (a file copy, no migrations).

Shared by the contract and the acceptance suites: their conftests import the fixtures
`postgres_databases` (the session's template) and `postgres_database` (a fresh one).

`Cluster` is a PostgreSQL server of a test's own (``initdb`` in a temporary folder, on a
free port), for tests that stop and restart it: the machine's server is never touched.

The server comes from ``TASKGATE_TEST_POSTGRES_URL`` (default: this machine's,
``postgresql://root@127.0.0.1:5432/test``); that database is only used to create and
drop the others. When the server cannot be reached, PostgreSQL tests are skipped with
the reason, except under CI (``CI=true``), where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from taskgate.storage.postgres import PostgresConnector

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("TASKGATE_TEST_POSTGRES_URL", DEFAULT_URL)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def unreachable(reason: str) -> NoReturn:
    """Skip, or fail under CI."""
    cannot(
        f"PostgreSQL is not reachable at {admin_url()} ({reason}); set TASKGATE_TEST_POSTGRES_URL"
    )


def cannot(message: str) -> NoReturn:
    """Skip a PostgreSQL test that cannot run here, with the reason; fail it under CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Databases:
    """Creates and drops this session's databases on one server."""

    def __init__(self, url: str) -> None:
        self.url = url
        # this session's own names: test runs in parallel on one server do not collide
        self.prefix = f"taskgate_{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_template"
        self._numbers = itertools.count(1)

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def create_template(self) -> None:
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        asyncio.run(self._migrate(with_database(self.url, self.template)))

    @staticmethod
    async def _migrate(url: str) -> None:
        connector = PostgresConnector(url, apply_migrations=False, pool_size=1)
        await connector.open()
        try:
            await connector.migrate()
        finally:
            await connector.close()

    def create(self, *, empty: bool = False) -> str:
        """A fresh database, migrated unless ``empty``; its URL."""
        name = f"{self.prefix}_{next(self._numbers)}"
        template = "template0" if empty else self.template
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        return with_database(self.url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_template(self) -> None:
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.template))
        )


def open_databases() -> Databases:
    """This session's databases, with the template made (or skip/fail when unreachable)."""
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        unreachable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    databases = Databases(admin_url())
    databases.create_template()
    return databases


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    """The session's PostgreSQL template (skipped, or failed under CI, when unreachable)."""
    databases = open_databases()
    try:
        yield databases
    finally:
        databases.drop_template()


@pytest.fixture
def postgres_database(postgres_databases: Databases) -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    url = postgres_databases.create()
    try:
        yield url
    finally:
        postgres_databases.drop(url)


class Cluster:
    """A PostgreSQL server of one test's own, started with `start` and stopped (its
    files removed) with `destroy`. Trust authentication, superuser ``postgres``, on
    127.0.0.1 and a free port; ``fsync`` on, as in production."""

    def __init__(self) -> None:
        self.bindir = _binaries()
        # under /tmp, not pytest's folder: the postgres user must reach it
        self.folder = Path(tempfile.mkdtemp(prefix="taskgate-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as postgres
            shutil.chown(self.folder, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Cluster:
        """initdb (the first time), then start the server and wait until it accepts."""
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
            " -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, the server stops within a second."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs (immediately), and remove its files."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return with_database(self.url, name)

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_owner, str(self.bindir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{log}"
            )


def _binaries() -> Path:
    """The newest PostgreSQL server programs installed (Debian's layout, else
    ``pg_config --bindir``)."""
    versions = Path("/usr/lib/postgresql")
    if versions.is_dir():
        found = sorted(
            (p for p in versions.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if found:
            return found[-1] / "bin"
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise RuntimeError(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
        ) from None
    return Path(bindir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def postgres_cluster() -> Iterator[Cluster]:
    """A started PostgreSQL server of this test's own (skipped, or failed under CI, when it
    cannot be made here); stopped and removed afterwards, whatever happens."""
    try:
        cluster = Cluster()
    except (RuntimeError, OSError, LookupError) as exc:
        cannot(f"cannot make a PostgreSQL server of the test's own: {exc}")
    try:
        try:
            cluster.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            cannot(f"cannot start a PostgreSQL server of the test's own: {exc}")
        yield cluster
    finally:
        cluster.destroy()
