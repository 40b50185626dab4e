"""Leadership: one holder of a role per store, on every backend; a holder that stops
confirming loses the role, and on PostgreSQL one whose connection dies loses it at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from taskgate.errors import ConfigurationError
from taskgate.service import TaskService
from taskgate.storage import connect
from taskgate.storage.connector import Connector
from taskgate.storage.leadership import Candidate, Leadership
from taskgate.storage.postgres import PostgresConnector
from taskgate.work import Leader

from .helpers import Backend

NAME = "scheduler"
WAIT = 60.0
"""Generous: only ends a hung test; nothing here asserts on timing."""


class Candidates:
    """Makes candidates (w1, w2, ...) and releases them all at the end of the test."""

    def __init__(self) -> None:
        self.made: list[Leadership] = []

    def __call__(
        self, connector: Connector, name: str = NAME, *, timeout: float = 30.0
    ) -> Leadership:
        who = Candidate(f"w{len(self.made) + 1}", "node-a", 4000 + len(self.made))
        candidate = connector.leadership(name, who, timeout=timeout)
        self.made.append(candidate)
        return candidate


@pytest.fixture
async def candidates() -> AsyncIterator[Candidates]:
    made = Candidates()
    yield made
    for candidate in made.made:
        await candidate.release()


async def _eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_one_candidate_of_the_store_holds_the_role(
    service: TaskService, peer: TaskService, candidates: Candidates
) -> None:
    first, second = candidates(service.connector), candidates(peer.connector)
    elsewhere = candidates(peer.connector, "another_role")
    assert not await first.confirm()  # not taken yet
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await first.confirm() and not await second.confirm()
    assert await first.try_acquire()  # still its own
    assert await elsewhere.try_acquire()  # roles are independent


async def test_a_release_hands_the_role_on(
    service: TaskService, peer: TaskService, candidates: Candidates
) -> None:
    first, second = candidates(service.connector), candidates(peer.connector)
    assert await first.try_acquire()
    await first.release()
    assert not await first.confirm()
    assert await second.try_acquire()
    assert not await first.try_acquire()
    await first.release()  # not held: nothing happens
    assert await second.confirm()


async def test_closing_the_holders_connector_frees_the_role(
    backend: Backend, url: str, service: TaskService, candidates: Candidates
) -> None:
    """A closed connector is a process gone: its candidates let go."""
    store = connect(url) if backend.shared else service.connector
    await store.open()
    holder, other = candidates(store), candidates(service.connector)
    assert await holder.try_acquire()
    assert not await other.try_acquire()
    await store.close()
    await service.connector.open()  # memory: the same store, open again
    assert not await holder.confirm()
    assert await other.try_acquire()


async def test_a_holder_that_stops_confirming_loses_the_role(
    service: TaskService, peer: TaskService, candidates: Candidates
) -> None:
    """A frozen holder (its socket, if it has one, stays open) loses the role once it
    has not confirmed it for its timeout; it learns so at its next confirmation."""
    holder = candidates(service.connector, timeout=0.3)
    other = candidates(peer.connector, timeout=0.3)
    assert await holder.try_acquire()
    await _eventually(other.try_acquire, "another candidate to take the role")
    assert not await holder.confirm()
    assert not await holder.try_acquire()
    assert [(leader.holder, leader.pid) for leader in await service.leaders()] == [("w2", 4001)]


async def test_the_holders_row_shows_who_leads(
    service: TaskService, peer: TaskService, candidates: Candidates
) -> None:
    assert await service.leaders() == []
    holder, other = candidates(service.connector), candidates(peer.connector)
    assert await holder.try_acquire()
    assert not await other.try_acquire()
    (leader,) = await peer.leaders()
    assert leader == Leader(NAME, "w1", "node-a", 4000, leader.since, leader.renewed_at)
    assert leader.since <= leader.renewed_at
    assert await holder.confirm()
    await holder.release()
    assert await service.leaders() == []
    assert await other.try_acquire()
    assert [leader.holder for leader in await service.leaders()] == ["w2"]


async def test_a_holder_known_to_be_gone_frees_its_role(
    backend: Backend, service: TaskService, peer: TaskService, candidates: Candidates
) -> None:
    """serve saw the worker die: its row goes; a lease (SQLite, memory) is free at once,
    PostgreSQL's lock went with the dead process's connection."""
    holder, other = candidates(service.connector), candidates(peer.connector)
    assert await holder.try_acquire()
    await peer.recover_lost(worker="w1")
    assert await service.leaders() == []
    if backend.name != "postgres":  # here the holder's connection did not die
        assert await other.try_acquire()
        assert not await holder.confirm()


async def test_a_role_name_is_an_identifier(service: TaskService) -> None:
    who = Candidate("w1", "node-a", 1)
    for bad in ("", "Scheduler", "the scheduler", "../x", "x" * 64):
        with pytest.raises(ConfigurationError, match="leadership name"):
            service.connector.leadership(bad, who)


# -- PostgreSQL: the advisory lock -------------------------------------------------------


async def _admin(url: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query.encode())
        return await cur.fetchall()


HOLDER = """
SELECT a.pid, a.state, a.backend_xmin, a.backend_xid FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
"""


@pytest.mark.postgres
async def test_a_holder_whose_connection_is_killed_loses_the_role_at_once(
    postgres_database: str, candidates: Candidates
) -> None:
    """A holder that dies closes its connection: the role is free before any timeout."""
    holder = candidates(PostgresConnector(postgres_database), timeout=3600)
    other = candidates(PostgresConnector(postgres_database), timeout=3600)
    assert await holder.try_acquire()
    assert not await other.try_acquire()
    ((pid, *_),) = await _admin(postgres_database, HOLDER)
    await _admin(postgres_database, f"SELECT pg_terminate_backend({int(pid)})")
    assert not await holder.confirm()
    await _eventually(other.try_acquire, "another candidate to take the role")
    assert not await holder.try_acquire()


@pytest.mark.postgres
async def test_the_holders_session_holds_back_no_vacuum(
    postgres_database: str, candidates: Candidates
) -> None:
    """The holder's session stays in one transaction: it must keep no snapshot (its
    xmin would stop vacuum in the whole database) and no transaction id."""
    holder = candidates(PostgresConnector(postgres_database))
    assert await holder.try_acquire()
    for _ in range(8):  # past psycopg's prepare threshold (5)
        assert await holder.confirm()
    ((_, state, xmin, xid),) = await _admin(postgres_database, HOLDER)
    assert (state, xmin, xid) == ("idle in transaction", None, None)
