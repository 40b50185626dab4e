"""Storage backends, chosen by URL: ``sqlite:///path/file.db`` (default), ``memory://``,
and ``postgresql://user@host:port/dbname`` (libpq's URL, as psycopg takes it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from taskgate.errors import ConfigurationError
from taskgate.storage.connector import Connector


def connect(url: str, *, apply_migrations: bool = True, synchronous: str = "FULL") -> Connector:
    """A connector for ``url`` (not yet opened)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        from taskgate.storage.memory import MemoryConnector

        return MemoryConnector()
    if scheme == "sqlite" or not scheme:
        # sqlite:///relative.db, sqlite:////absolute.db, or a plain file path
        rest = url.split("://", 1)[1] if scheme else url
        path = rest.split("?", 1)[0]
        if scheme and path.startswith("/"):
            path = path[1:]
        if not path:
            raise ConfigurationError("a sqlite URL needs a file: sqlite:///taskgate.db")
        sync = parse_qs(parts.query).get("synchronous", [synchronous])[0]
        from taskgate.storage.sqlite import SQLiteConnector

        return SQLiteConnector(Path(path), synchronous=sync, apply_migrations=apply_migrations)
    if scheme in ("postgres", "postgresql"):
        from taskgate.storage.postgres import PostgresConnector

        return PostgresConnector(url, apply_migrations=apply_migrations)
    raise ConfigurationError(f"unknown database URL scheme {scheme!r} in {url!r}")
