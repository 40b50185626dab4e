"""Storage backends, chosen by URL: ``sqlite:///path/file.db`` (default), ``memory://``,
and ``postgresql://user@host:port/dbname`` (libpq's URL, as psycopg takes it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from taskgate.errors import ConfigurationError
from taskgate.settings import Settings
from taskgate.storage.connector import Connector


def connect_settings(settings: Settings, *, apply_migrations: bool = True) -> Connector:
    """A connector for ``settings.database``, with the settings of its backend."""
    return connect(
        settings.database,
        apply_migrations=apply_migrations,
        synchronous=settings.synchronous,
        pool_size=settings.pool_size,
        pool_timeout=settings.pool_timeout,
    )


def connect(
    url: str,
    *,
    apply_migrations: bool = True,
    synchronous: str = "FULL",
    pool_size: int = 10,
    pool_timeout: float = 5.0,
) -> Connector:
    """A connector for ``url`` (not yet opened). ``synchronous`` is SQLite's;
    ``pool_size`` and ``pool_timeout`` PostgreSQL's (see `taskgate.settings.Settings`)."""
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

        return PostgresConnector(
            url, apply_migrations=apply_migrations, pool_size=pool_size, pool_timeout=pool_timeout
        )
    raise ConfigurationError(f"unknown database URL scheme {scheme!r} in {url!r}")
