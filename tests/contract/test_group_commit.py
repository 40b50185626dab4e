"""Group commit on PostgreSQL (`taskgate.storage.group_commit`): concurrent writes share
one transaction yet each gets its own rows and its own error; queued notifications are
merged, and none is lost, not even on close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from taskgate.errors import StorageError, StorageUnavailable
from taskgate.storage.connector import CHANNEL_CHANGED, CHANNEL_DUE, Step
from taskgate.storage.postgres import PostgresConnector

from .helpers import eventually

pytestmark = pytest.mark.postgres

Heard = list[tuple[str, str]]


def key(key_id: str) -> dict[str, Any]:
    return {
        "id": key_id, "tenant": "t", "user_name": "u", "user_id": None, "role": "read",
        "secret_hash": "h", "description": None, "created_at": 1.0, "expires_at": None,
    }  # fmt: skip


async def xmins(url: str) -> dict[str, str]:
    """The transaction that wrote each API key, by key id."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT id, xmin::text FROM api_keys")
        return {row[0]: row[1] for row in await cur.fetchall()}


async def test_concurrent_writes_share_one_transaction_and_get_their_own_rows(
    postgres_database: str,
) -> None:
    connector = PostgresConnector(postgres_database)
    await connector.open()
    try:
        ids = [f"k{i}" for i in range(50)]
        results = await asyncio.gather(*(connector.execute("insert_key", key(i)) for i in ids))
        assert [rows[0]["id"] for rows in results] == ids
        # a batch of several steps (one of them many) in the same group as single writes
        batch, single = await asyncio.gather(
            connector.execute_batch(
                [Step("insert_key", many=[key("b1"), key("b2")]), Step("get_key", {"id": "b1"})]
            ),
            connector.execute("insert_key", key("s1")),
        )
    finally:
        await connector.close()
    assert [[row["id"] for row in rows] for rows in batch] == [["b1", "b2"], ["b1"]]
    assert [row["id"] for row in single] == ["s1"]
    written = await xmins(postgres_database)
    assert len({written[i] for i in ids}) == 1  # one commit for the fifty
    assert written["b1"] == written["b2"] == written["s1"]


async def test_a_failing_write_fails_alone(postgres_database: str) -> None:
    connector = PostgresConnector(postgres_database)
    await connector.open()
    try:
        await connector.execute("insert_key", key("taken"))
        incomplete = {k: v for k, v in key("d").items() if k != "role"}
        writes = [key("a"), key("b"), key("taken"), incomplete, key("c")]
        # refused by the server (a duplicate id), and by the client (a missing parameter)
        results = await asyncio.gather(
            *(connector.execute("insert_key", w) for w in writes), return_exceptions=True
        )
        for failed in (results[2], results[3]):
            assert isinstance(failed, StorageError) and not isinstance(failed, StorageUnavailable)
        assert [rows[0]["id"] for rows in results if isinstance(rows, list)] == ["a", "b", "c"]
        assert sorted(await xmins(postgres_database)) == ["a", "b", "c", "taken"]
    finally:
        await connector.close()


@pytest.fixture
async def talk(postgres_database: str) -> AsyncIterator[tuple[PostgresConnector, Heard]]:
    """A connector that sends, and what another one, listening, has heard so far."""
    sender, listener = PostgresConnector(postgres_database), PostgresConnector(postgres_database)
    await sender.open()
    await listener.open()
    heard: Heard = []
    listener.add_listener(lambda channel, payload: heard.append((channel, payload)))
    try:
        yield sender, heard
    finally:
        await sender.close()
        await listener.close()


async def test_queued_notifications_are_merged_and_none_is_lost(
    talk: tuple[PostgresConnector, Heard],
) -> None:
    sender, heard = talk
    ids = [f"{i:08d}-0000-7000-8000-000000000000" for i in range(300)]
    for task_id in ids:  # queued, not awaited one by one: they go together
        await sender.notify(CHANNEL_CHANGED, task_id)
    await sender.notify(CHANNEL_DUE)
    await sender.notify(CHANNEL_DUE)
    await eventually(lambda: (CHANNEL_DUE, "") in heard)
    changed = [p for c, p in heard if c == CHANNEL_CHANGED]
    assert sorted(i for p in changed for i in p.split(",")) == ids
    assert len(changed) < len(ids)  # merged, as few payloads as fit
    assert heard.count((CHANNEL_DUE, "")) == 1
    # queued just before closing: sent by close, not dropped
    await sender.notify(CHANNEL_CHANGED, ids[0])
    await sender.close()
    await eventually(lambda: heard[-1] == (CHANNEL_CHANGED, ids[0]))


async def test_a_writes_own_notification_is_heard_only_when_it_commits(
    talk: tuple[PostgresConnector, Heard],
) -> None:
    sender, heard = talk
    # alone, then in a group with a failing write and a queued notification
    rows = await sender.execute("insert_key", key("alone"), notify=CHANNEL_DUE)
    assert rows[0]["id"] == "alone"
    await eventually(lambda: heard == [(CHANNEL_DUE, "")])
    heard.clear()
    await sender.notify(CHANNEL_CHANGED, "queued")
    results = await asyncio.gather(
        sender.execute("insert_key", key("alone"), notify=CHANNEL_DUE),  # a duplicate
        sender.execute_batch([Step("insert_key", many=[key("x"), key("y")])]),
        return_exceptions=True,
    )
    assert isinstance(results[0], StorageError)
    assert not isinstance(results[1], BaseException), results[1]
    assert [row["id"] for row in results[1][0]] == ["x", "y"]
    await eventually(lambda: (CHANNEL_CHANGED, "queued") in heard)
    await asyncio.sleep(0.1)
    assert (CHANNEL_DUE, "") not in heard  # its write failed: no notification


async def test_a_group_is_one_transaction_without_begin(postgres_database: str) -> None:
    """Writes of several statements each share one transaction; when one of them fails,
    nothing of it is left (its first statement is undone too) and the others commit."""
    connector = PostgresConnector(postgres_database)
    await connector.open()

    def pair(n: int) -> list[Step]:
        return [Step("insert_key", key(f"a{n}")), Step("insert_key", key(f"b{n}"))]

    try:
        await asyncio.gather(*(connector.execute_batch(pair(i)) for i in range(10)))
        together = await xmins(postgres_database)
        assert len(together) == 20 and len(set(together.values())) == 1
        failing = [Step("insert_key", key("half")), Step("insert_key", key("a0"))]
        results = await asyncio.gather(
            *(connector.execute_batch(pair(i)) for i in range(10, 15)),
            connector.execute_batch(failing),
            return_exceptions=True,
        )
    finally:
        await connector.close()
    assert isinstance(results[-1], StorageError)
    written = await xmins(postgres_database)
    assert "half" not in written
    assert sorted(written) == sorted(f"{c}{i}" for i in range(15) for c in "ab")
