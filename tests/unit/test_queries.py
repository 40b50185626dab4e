"""Named queries: the loader, every dialect file against the others (names, fragments,
parameters), the memory backend against SQLite's names, and every SQLite statement
against the migrated schema (PostgreSQL's: tests/contract/test_postgres.py)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from taskgate.errors import ConfigurationError, StorageError
from taskgate.storage import migrations
from taskgate.storage.connector import Step
from taskgate.storage.memory import FRAGMENTS, QUERIES, WRITES, MemoryConnector
from taskgate.storage.queries import WHERE_MARK, load, parse, query_names

SAMPLE = """
-- File header, not part of any query.

-- name: get_thing
-- One thing by id.
SELECT * FROM things WHERE id = :id;

-- name: find_things
SELECT * FROM things
WHERE /*where*/
ORDER BY id

-- name: find_things.colour
colour = :colour

-- name: find_things.size
-- a comment inside a fragment
size > :size

-- name: drop_thing
DELETE FROM things WHERE id = :id
"""

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def test_parse_names_bodies_and_fragments() -> None:
    queries = parse(SAMPLE)
    assert set(queries) == {"get_thing", "find_things", "drop_thing"}
    assert queries["get_thing"].sql == "SELECT * FROM things WHERE id = :id"
    assert not queries["get_thing"].write and queries["drop_thing"].write
    assert queries["find_things"].fragments == {
        "colour": "colour = :colour",
        "size": "size > :size",
    }


def test_compose_joins_the_chosen_fragments() -> None:
    find = parse(SAMPLE)["find_things"]
    assert WHERE_MARK in find.sql
    assert "WHERE 1 = 1" in find.compose()
    assert "WHERE (colour = :colour) AND (size > :size)" in find.compose(("colour", "size"))
    with pytest.raises(ConfigurationError, match="no fragment"):
        find.compose(("weight",))
    with pytest.raises(ConfigurationError, match="takes no fragments"):
        parse(SAMPLE)["get_thing"].compose(("colour",))


def test_load_parses_once() -> None:
    assert load("sqlite") is load("sqlite")
    assert query_names("sqlite") == set(load("sqlite"))
    assert "claim_tasks" in query_names("sqlite")


def dialects() -> list[str]:
    folder = resources.files("taskgate.storage").joinpath("sql")
    return sorted(Path(e.name).stem for e in folder.iterdir() if e.name.endswith(".sql"))


def signature(dialect: str) -> dict[str, set[str]]:
    """Each query's name with the names of its fragments."""
    return {name: set(q.fragments) for name, q in load(dialect).items()}


def test_every_dialect_has_the_same_queries() -> None:
    found = dialects()
    assert "sqlite" in found
    for dialect in found:  # postgres.sql, when it exists, must match sqlite.sql
        assert signature(dialect) == signature("sqlite"), dialect
        for name, query in load(dialect).items():
            assert query.write == load("sqlite")[name].write, (dialect, name)
        assert migrations.available(dialect), f"{dialect} has no migrations"


def test_the_memory_backend_implements_every_sqlite_query() -> None:
    assert set(QUERIES) == query_names("sqlite")
    assert {name: set(f) for name, f in FRAGMENTS.items()} == {
        name: fragments for name, fragments in signature("sqlite").items() if fragments
    }
    assert {name for name, q in load("sqlite").items() if q.write} == WRITES


def sql_params(sql: str) -> set[str]:
    return set(_PARAM.findall(re.sub(r"'[^']*'", "''", sql)))


def test_postgres_statements_take_the_parameters_of_sqlite() -> None:
    """Same names, same fragments (above), and each statement reads the same parameters:
    the service passes one mapping to either backend."""
    postgres = load("postgres")
    for name, query in load("sqlite").items():
        chosen = tuple(sorted(query.fragments))
        for fragments in {(), chosen}:
            pg_sql = postgres[name].compose(fragments)
            pg_params = set(re.findall(r"%\((\w+)\)s", pg_sql))
            assert pg_params == sql_params(query.compose(fragments)), (name, fragments)
            # psycopg reads every other % as a placeholder: there must be none
            assert "%" not in re.sub(r"%\(\w+\)s", "", pg_sql), name


def every_statement() -> Iterator[tuple[str, tuple[str, ...], str]]:
    for name, query in load("sqlite").items():
        yield name, (), query.compose()
        if query.fragments:
            chosen = tuple(sorted(query.fragments))
            yield name, chosen, query.compose(chosen)


def test_every_sqlite_statement_compiles_on_the_migrated_schema() -> None:
    conn = sqlite3.connect(":memory:")
    for migration in migrations.available("sqlite"):
        conn.executescript(migration.sql)
    for name, _, sql in every_statement():
        try:
            conn.execute("EXPLAIN " + sql, dict.fromkeys(sql_params(sql)))
        except sqlite3.Error as exc:
            pytest.fail(f"{name}: {exc}")
    conn.close()


class Recording(Mapping[str, Any]):
    """Parameters that remember which of them a statement read."""

    NUMBERS = {
        "now", "limit", "count", "i", "start", "attempt", "lease_expires_at", "due_at", "ts",
        "created_at", "scheduled_at", "progress", "warnings", "pid", "concurrency",
        "max_attempts", "timeout", "priority", "retry_on_worker_loss", "stale_before",
        "window_start", "window_end", "bucket_seconds",
    }  # fmt: skip
    JSON = {"states": '["queued"]', "types": '["noop"]', "labels": '{"a": "b"}'}

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key not in self.names:
            raise KeyError(key)
        self.read.add(key)
        if key in self.NUMBERS:
            return 1
        return self.JSON.get(key, "x")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@pytest.mark.parametrize(
    ("name", "fragments", "sql"), list(every_statement()), ids=lambda v: str(v)[:40]
)
async def test_the_memory_backend_reads_the_parameters_of_the_sql(
    name: str, fragments: tuple[str, ...], sql: str
) -> None:
    memory = MemoryConnector()
    await memory.open()
    params = Recording(sql_params(sql))
    try:
        if name in WRITES:  # a composed write takes its fragments in a Step
            await memory.execute_batch([Step(name, params, fragments=fragments)])
        else:
            await memory.fetch_all(name, params, fragments)
    except StorageError:
        pass  # a constraint may refuse the dummy values; the parameters were read first
    assert params.read == params.names
