"""Migrations: the schema they build, re-running them, two migrators at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from taskgate.errors import StorageError
from taskgate.storage import migrations
from taskgate.storage.memory import TABLES, MemoryConnector
from taskgate.storage.sqlite import SQLiteConnector


def schema(path: Path, *, skip: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """Every table, index and trigger of a database, with its SQL."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [row for row in rows if row[2] not in skip]


def from_scripts(path: Path) -> None:
    """The schema built straight from the migration files, without `migrate`."""
    conn = sqlite3.connect(path)
    for migration in migrations.available("sqlite"):
        conn.executescript(migration.sql)
    conn.commit()
    conn.close()


async def test_the_files_are_numbered_from_one() -> None:
    found = migrations.available("sqlite")
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "0001_initial"
    assert migrations.latest("sqlite") == found[-1].version
    assert migrations.pending("sqlite", 0) == found
    assert migrations.pending("sqlite", found[-1].version) == []


async def test_migrate_builds_the_schema_of_the_files(tmp_path: Path) -> None:
    connector = SQLiteConnector(tmp_path / "a.db", apply_migrations=False, bus=False)
    await connector.open()
    try:
        assert await connector.schema_version() == 0
        applied = await connector.migrate()
        assert applied == [m.name for m in migrations.available("sqlite")]
        assert await connector.schema_version() == migrations.latest("sqlite")
    finally:
        await connector.close()
    from_scripts(tmp_path / "b.db")
    assert schema(tmp_path / "a.db", skip=("schema_version",)) == schema(tmp_path / "b.db")
    with sqlite3.connect(tmp_path / "a.db") as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
    conn.close()
    assert versions == [(m.version, m.name) for m in migrations.available("sqlite")]


async def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    connector = SQLiteConnector(path, bus=False)
    await connector.open()  # applies the migrations
    before = schema(path)
    assert await connector.migrate() == []
    await connector.close()
    again = SQLiteConnector(path, bus=False)
    await again.open()
    assert await again.migrate() == []
    assert await again.schema_version() == migrations.latest("sqlite")
    await again.close()
    assert schema(path) == before


async def test_two_connectors_migrating_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    connectors = [SQLiteConnector(path, apply_migrations=False, bus=False) for _ in range(4)]
    await asyncio.gather(*(c.open() for c in connectors))
    try:
        results = await asyncio.gather(*(c.migrate() for c in connectors))
        names = [m.name for m in migrations.available("sqlite")]
        assert sorted(results, key=len) == [[], [], [], names]  # one of them did the work
        for c in connectors:
            assert await c.schema_version() == migrations.latest("sqlite")
    finally:
        await asyncio.gather(*(c.close() for c in connectors))
    from_scripts(tmp_path / "b.db")
    assert schema(path, skip=("schema_version",)) == schema(tmp_path / "b.db")


async def test_opening_at_once_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    connectors = [SQLiteConnector(path, bus=False) for _ in range(3)]
    await asyncio.gather(*(c.open() for c in connectors))
    await asyncio.gather(*(c.close() for c in connectors))
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
    conn.close()
    assert count == len(migrations.available("sqlite"))


async def test_the_memory_backend_reports_the_same_versions() -> None:
    memory = MemoryConnector(apply_migrations=False)
    await memory.open()
    assert await memory.schema_version() == 0
    with pytest.raises(StorageError, match="no such table"):
        await memory.fetch_one("get_task", {"id": "x"})
    assert await memory.migrate() == [m.name for m in migrations.available("sqlite")]
    assert await memory.migrate() == []
    assert await memory.schema_version() == migrations.latest("sqlite")
    assert await memory.fetch_one("get_task", {"id": "x"}) is None
    opened = MemoryConnector()
    await opened.open()
    assert await opened.schema_version() == migrations.latest("sqlite")


def test_the_memory_tables_are_the_migrated_tables(tmp_path: Path) -> None:
    from_scripts(tmp_path / "b.db")
    with sqlite3.connect(tmp_path / "b.db") as conn:
        for table, columns in TABLES.items():
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            real = [(name, kind, bool(notnull), dflt) for _, name, kind, notnull, dflt, _ in info]
            mine = [
                (name, kind, notnull, None if dflt is None else str(dflt))
                for name, kind, notnull, dflt in columns
            ]
            assert mine == real, table
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    conn.close()
    assert sorted(TABLES) == sorted(name for (name,) in tables)


def test_statements_split_whole_statements() -> None:
    script = """
    -- a comment
    CREATE TABLE a (x INTEGER); -- trailing
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 1; UPDATE a SET x = 2;
    END;

    CREATE INDEX i ON a (x)
    """
    found = migrations.statements(script)
    assert len(found) == 3
    assert found[0].startswith("CREATE TABLE a")
    assert "UPDATE a SET x = 2;" in found[1] and found[1].endswith("END;")
    assert found[2] == "CREATE INDEX i ON a (x)"
    for statement in found:  # each runs on its own
        assert sqlite3.complete_statement(statement + ";")
