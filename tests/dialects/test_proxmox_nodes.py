"""The Proxmox node name of several API processes behind one address: PVE clients put
the node of a task's UPID in every path, so each API process must answer for the node
names the others put in UPIDs. The ``node`` setting gives them one."""

from __future__ import annotations

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.settings import Settings

from .conftest import CHEAP_HASH, ApiNodes

BASE = "http://testserver"
P = "/api2/json"


async def token(api: Application) -> dict[str, str]:
    keys = KeyService(api.service.connector, hash_cost=CHEAP_HASH)
    key = (await keys.create(tenant="acme", user="root@pam", role="write")).token
    keys.close()
    return {"Authorization": f"PVEAPIToken=root@pam!ci={key}"}


async def call(api: Application, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        return await c.request(method, P + path, headers=headers, data={"vmid": "100"})


async def test_api_processes_sharing_a_node_name_answer_for_each_others_tasks(
    api_nodes: ApiNodes,
) -> None:
    async with api_nodes("pve-cluster", "pve-cluster") as (first, second):
        auth = await token(first)
        kicked = await call(first, "POST", "/nodes/pve-cluster/vzdump", auth)
        assert kicked.status_code == 200, kicked.text
        upid = kicked.json()["data"]
        assert upid.split(":")[1] == "pve-cluster"
        status = await call(second, "GET", f"/nodes/pve-cluster/tasks/{upid}/status", auth)
        assert status.status_code == 200, status.text
        assert status.json()["data"]["upid"] == upid
        listed = await call(second, "GET", "/nodes/pve-cluster/tasks?source=all", auth)
        assert upid in [t["upid"] for t in listed.json()["data"]]


async def test_with_node_names_of_their_own_each_refuses_the_others(api_nodes: ApiNodes) -> None:
    async with api_nodes("api-1", "api-2") as (first, second):
        auth = await token(first)
        upid = (await call(first, "POST", "/nodes/api-1/vzdump", auth)).json()["data"]
        status = await call(second, "GET", f"/nodes/api-1/tasks/{upid}/status", auth)
        assert status.status_code == 400
        assert "no such cluster node 'api-1'" in status.text


@pytest.mark.parametrize("name", ["pve.example.com", "-pve", "pve_1", "", "x" * 64])
def test_a_node_name_must_be_one_a_upid_can_hold(name: str) -> None:
    with pytest.raises(ValueError, match="a node name is letters, digits"):
        Settings(node=name)
