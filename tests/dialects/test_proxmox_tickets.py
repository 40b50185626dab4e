"""Proxmox tickets across API nodes: signed with the store's shared secret, so a ticket
one API process issued works on another process of the same store, and on no other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from postgres import postgres_database, postgres_databases
from taskgate.auth import KeyService
from taskgate.auth.secrets import shared_secret
from taskgate.http import Application, create_app
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect

from .conftest import CHEAP_HASH, ApiNodes

__all__ = ["postgres_database", "postgres_databases"]  # fixtures

BASE = "http://testserver"
P = "/api2/json"


@pytest.fixture
async def nodes(api_nodes: ApiNodes) -> AsyncIterator[list[Application]]:
    """Two API nodes on one SQLite file."""
    async with api_nodes(None, None) as apps:
        yield apps


async def login(api: Application, key: str) -> tuple[str, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        r = await c.post(f"{P}/access/ticket", data={"username": "root@pam", "password": key})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        return data["ticket"], data["CSRFPreventionToken"]


async def submit_with(api: Application, ticket: str, csrf: str) -> int:
    headers = {"Cookie": f"PVEAuthCookie={ticket}", "CSRFPreventionToken": csrf}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        node = api.service.node
        r = await c.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "100"}, headers=headers)
        return r.status_code


async def test_a_ticket_from_one_node_works_on_another(nodes: list[Application]) -> None:
    first, second = nodes
    keys = KeyService(first.service.connector, hash_cost=CHEAP_HASH)
    key = (await keys.create(tenant="acme", user="root@pam", role="write")).token
    keys.close()
    ticket, csrf = await login(first, key)
    assert await submit_with(second, ticket, csrf) == 200
    renewed, renewed_csrf = await login(second, ticket)  # a ticket as password renews it
    assert await submit_with(first, renewed, renewed_csrf) == 200


async def test_a_ticket_from_another_store_is_refused(
    nodes: list[Application], service: TaskService, keys: KeyService
) -> None:
    elsewhere = create_app(service, Settings(dialects=("proxmox",)))
    key = (await keys.create(tenant="acme", user="root@pam", role="write")).token
    ticket, csrf = await login(elsewhere, key)
    assert await submit_with(elsewhere, ticket, csrf) == 200
    assert await submit_with(nodes[0], ticket, csrf) == 401


async def race_for_the_secret(url: str) -> None:
    connectors = [connect(url, pool_size=2) for _ in range(4)]
    for connector in connectors:
        await connector.open()
    try:
        made = await asyncio.gather(*(shared_secret(c, "s") for c in connectors * 3))
        assert len(set(made)) == 1 and len(made[0]) == 32
        assert await shared_secret(connectors[0], "other") != made[0]
    finally:
        for connector in connectors:
            await connector.close()


async def test_processes_racing_to_make_the_secret_agree(tmp_path: Path) -> None:
    await race_for_the_secret(f"sqlite:///{tmp_path / 'race.db'}")


@pytest.mark.postgres
async def test_processes_racing_to_make_the_secret_agree_on_postgres(
    postgres_database: str,
) -> None:
    await race_for_the_secret(postgres_database)
