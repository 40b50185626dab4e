"""What only the PostgreSQL connector has: its SQL against the real schema, migrations
under an advisory lock, NOTIFY across connectors, driver errors translated."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import psycopg
import pytest

from postgres import Databases
from taskgate.errors import StorageError, StorageUnavailable
from taskgate.storage import connect, migrations
from taskgate.storage.connector import CHANNEL_CHANGED, CHANNEL_DUE, Step
from taskgate.storage.group_commit import MAX_PAYLOAD, split_payload
from taskgate.storage.postgres import PostgresConnector
from taskgate.storage.queries import load

pytestmark = pytest.mark.postgres

NUMBERS = {
    "now", "limit", "count", "i", "start", "attempt", "lease_expires_at", "due_at", "ts",
    "created_at", "scheduled_at", "progress", "warnings", "pid", "concurrency",
    "max_attempts", "timeout", "priority", "retry_on_worker_loss", "after_ts",
    "acknowledged", "user_id", "expires_at", "stale_before", "enabled", "version",
    "failure_threshold", "schedule_threshold", "consecutive_failures", "remaining_runs",
    "first_run", "next_run", "pending_run", "log_count", "n", "finished_before",
    "capacity", "parent_attempt", "top", "starved_before", "window_start", "window_end",
    "bucket_seconds",
}  # fmt: skip
JSON = {"states": '["queued"]', "types": '["noop"]', "labels": '{"a": "b"}', "ids": '["x"]'}


def dummy(name: str) -> Any:
    if name in NUMBERS:
        return 1
    return JSON.get(name, "x")


async def test_every_statement_is_planned_on_the_migrated_schema(
    postgres_database: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_database) as conn:
        checked = 0
        for name, query in load("postgres").items():
            for fragments in {(), tuple(sorted(query.fragments))}:
                sql = query.compose(fragments)
                params = {p: dummy(p) for p in re.findall(r"%\((\w+)\)s", sql)}
                try:
                    await conn.execute(("EXPLAIN " + sql).encode(), params)
                except psycopg.Error as exc:
                    pytest.fail(f"{name} {fragments}: {exc}")
                checked += 1
        assert checked > len(load("postgres"))


async def test_connect_gives_a_postgres_connector(postgres_database: str) -> None:
    connector = connect(postgres_database)
    assert isinstance(connector, PostgresConnector)
    await connector.open()
    try:
        assert await connector.schema_version() == migrations.latest("postgres")
        assert migrations.latest("postgres") == migrations.latest("sqlite")
        assert await connector.migrate() == []
    finally:
        await connector.close()


async def test_concurrent_starters_migrate_an_empty_database_once(
    postgres_databases: Databases,
) -> None:
    url = postgres_databases.create(empty=True)
    try:
        connectors = [PostgresConnector(url, apply_migrations=False) for _ in range(4)]
        for connector in connectors:
            await connector.open()
        try:
            assert await connectors[0].schema_version() == 0
            applied = await asyncio.gather(*(c.migrate() for c in connectors))
            every = len(migrations.available("postgres"))
            assert sorted(len(names) for names in applied) == [0, 0, 0, every]
            assert await connectors[1].schema_version() == migrations.latest("postgres")
        finally:
            for connector in connectors:
                await connector.close()
    finally:
        postgres_databases.drop(url)


async def test_notifications_reach_every_connector_in_order(postgres_database: str) -> None:
    first, second = PostgresConnector(postgres_database), PostgresConnector(postgres_database)
    await first.open()
    await second.open()
    heard: dict[str, list[tuple[str, str]]] = {"first": [], "second": []}
    done = {"first": asyncio.Event(), "second": asyncio.Event()}
    ids = ",".join(f"{i:08d}-0000-7000-8000-000000000000" for i in range(1000))

    def listener(who: str) -> Any:
        def on(channel: str, payload: str) -> None:
            heard[who].append((channel, payload))
            if channel == CHANNEL_DUE:
                done[who].set()

        return on

    first.add_listener(listener("first"))
    second.add_listener(listener("second"))
    try:
        await first.notify(CHANNEL_CHANGED, ids)
        await first.notify(CHANNEL_DUE)
        # each connector hears through its own LISTEN connection, at its own pace
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 10)
        for who in ("first", "second"):
            assert heard[who][-1] == (CHANNEL_DUE, "")
            changed = [p for c, p in heard[who] if c == CHANNEL_CHANGED]
            assert len(changed) > 1  # longer than one NOTIFY carries
            assert ",".join(changed) == ids
    finally:
        await first.close()
        await second.close()


def test_split_payload_cuts_at_commas_within_the_limit() -> None:
    assert split_payload("") == [""]
    assert split_payload("a,b") == ["a,b"]
    assert split_payload("aa,bb,cc,dd", limit=5) == ["aa,bb", "cc,dd"]
    assert split_payload("aaaaaa,b", limit=5) == ["aaaaaa", "b"]  # an id is never cut
    big = ",".join(["x" * 36] * 1000)
    pieces = split_payload(big)
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in pieces)
    assert ",".join(pieces) == big


async def test_driver_errors_are_translated(postgres_database: str) -> None:
    connector = PostgresConnector(postgres_database)
    await connector.open()
    key = {
        "id": "k1", "tenant": "t", "user_name": "u", "user_id": None, "role": "read",
        "secret_hash": "h", "description": None, "created_at": 1.0, "expires_at": None,
    }  # fmt: skip
    try:
        assert (await connector.execute("insert_key", key))[0]["id"] == "k1"
        with pytest.raises(StorageError) as caught:
            await connector.execute("insert_key", key)  # the same id again
        assert not isinstance(caught.value, StorageUnavailable)
        # a failing step undoes the whole batch
        with pytest.raises(StorageError):
            await connector.execute_batch(
                [Step("revoke_key", {"id": "k1", "now": 2.0}), Step("insert_key", key)]
            )
        row = await connector.fetch_one("get_key", {"id": "k1"})
        assert row is not None and row["revoked_at"] is None
    finally:
        await connector.close()
    with pytest.raises(StorageUnavailable):
        await connector.fetch_one("get_key", {"id": "k1"})  # closed


async def test_an_unreachable_server_is_unavailable() -> None:
    connector = PostgresConnector("postgresql://root@127.0.0.1:1/nothing", connect_timeout=1.0)
    with pytest.raises(StorageUnavailable):
        await connector.open()
