"""Fresh PostgreSQL databases for tests, cheaply: one template per session, migrated
once, then ``CREATE DATABASE ... TEMPLATE`` per test (a file copy, no migrations).

The server comes from ``TASKGATE_TEST_POSTGRES_URL`` (default: this machine's,
``postgresql://root@127.0.0.1:5432/test``); that database is only used to create and
drop the others. When the server cannot be reached, PostgreSQL tests are skipped with
the reason, except under CI (``CI=true``), where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
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
    message = (
        f"PostgreSQL is not reachable at {admin_url()} ({reason}); set TASKGATE_TEST_POSTGRES_URL"
    )
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
        connector = PostgresConnector(url, apply_migrations=False, min_size=1, max_size=1)
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
