"""The PostgreSQL connector when the server ends its sessions (as a restart does): a
connection the server closed is never handed to a statement, and listeners are told to
look again once the LISTEN connection is back. (A whole restart under load, with a
server of the test's own: tests/acceptance/test_postgres_outage.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from taskgate.storage.postgres import CHANNELS, PostgresConnector

from .helpers import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
async def connector(postgres_database: str) -> AsyncIterator[PostgresConnector]:
    connector = PostgresConnector(postgres_database, pool_size=4)
    await connector.open()
    try:
        yield connector
    finally:
        await connector.close()


async def end_sessions(url: str) -> None:
    """What a restart does to each session of the database: end it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        sessions = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await admin.execute(f"SELECT pg_terminate_backend(pid) {sessions}".encode())
        while True:  # until every one has gone (under the test's timeout)
            cur = await admin.execute(f"SELECT count(*) {sessions}".encode())
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                return
            await asyncio.sleep(0.01)


async def test_a_connection_the_server_closed_is_never_used(
    connector: PostgresConnector, postgres_database: str
) -> None:
    # several idle connections in the pool, then every session ended
    await asyncio.gather(*(connector.fetch_one("next_due_at", {"now": 0.0}) for _ in range(4)))
    await end_sessions(postgres_database)
    for _ in range(8):  # each would fail if it got one of the closed connections
        assert await connector.fetch_one("next_due_at", {"now": 0.0}) == {
            "due_at": None,
            "reserved_due_at": None,
        }


async def test_listeners_look_again_once_listen_is_back(
    connector: PostgresConnector, postgres_database: str
) -> None:
    heard: list[tuple[str, str]] = []
    connector.add_listener(lambda channel, payload: heard.append((channel, payload)))
    await end_sessions(postgres_database)
    # "anything may have changed", on every channel: waiters and workers read the store
    await eventually(lambda: {(channel, "") for channel in CHANNELS} <= set(heard))
    heard.clear()
    await connector.notify("changed", "t1")  # and notifications flow again
    await eventually(lambda: heard == [("changed", "t1")])
