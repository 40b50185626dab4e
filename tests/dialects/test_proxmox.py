"""The Proxmox VE dialect in-process: translation, filters, log paging, auth, errors.

The ASGI app runs over ``memory://`` with the example app; the test plays the worker
(claim, log, finish) so every state is reached without worker processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from taskgate.auth import KeyService
from taskgate.http import Application, create_app
from taskgate.ids import UPID_RE
from taskgate.model import ErrorInfo, State, Task
from taskgate.service import Submission, TaskService
from taskgate.settings import Settings
from taskgate.work import NewLogLine, Progress

BASE = "http://testserver"
P = "/api2/json"
STATUS_FIELDS = {"upid", "node", "pid", "pstart", "starttime", "type", "id", "user", "status"}


@pytest.fixture
def api(service: TaskService) -> Application:
    return create_app(service, Settings(dialects=("proxmox",)))


@pytest.fixture
async def key(keys: KeyService) -> str:
    return (await keys.create(tenant="acme", user="root@pam", role="write")).token


def token(key: str, user: str = "root@pam") -> dict[str, str]:
    return {"Authorization": f"PVEAPIToken={user}!tok={key}"}


@pytest.fixture
async def client(api: Application, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=token(key)) as c:
        yield c


async def submit(
    service: TaskService, type: str = "vzdump", tenant: str = "acme", **params: Any
) -> Task:
    if type == "vzdump":
        params.setdefault("vmid", 100)
    task, _ = await service.submit_one(type, params, Submission(tenant=tenant, user="root@pam"))
    return task


async def end(
    service: TaskService,
    task: Task,
    state: State,
    *,
    lines: int = 2,
    warnings: int = 0,
    error: str | None = None,
) -> Task:
    """Claim ``task`` (the oldest waiting), log ``lines`` lines and end it in ``state``."""
    # the example's vzdump reserves its guest: claimed as reserved tasks are
    (claimed,) = await service.claim_reserved("w1", 1, 30) or await service.claim("w1", 1, 30)
    assert claimed.id == task.id
    await service.append_log(task.id, [NewLogLine(f"line {i + 1}") for i in range(lines)])
    if warnings:
        await service.report(claimed, Progress(warnings=warnings))
    info = ErrorInfo("RuntimeError", error) if error else None
    assert await service.finish(claimed, state, error=info) is not None
    return await service.get(task.id)


def check_error(response: httpx.Response, status: int, **errors: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert body["message"].endswith("\n")
    if errors:
        assert body["errors"] == errors
    return body


async def test_nodes_and_index(client: httpx.AsyncClient, service: TaskService) -> None:
    r = await client.get(f"{P}/nodes")
    assert r.status_code == 200
    assert r.json() == {
        "data": [
            {"node": service.node, "status": "online", "type": "node", "id": f"node/{service.node}"}
        ]
    }
    r = await client.get(f"{P}/nodes/{service.node}")
    assert {"name": "tasks"} in r.json()["data"] and {"name": "vzdump"} in r.json()["data"]


async def test_status_running_then_stopped(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(service, vmid=101)
    url = f"{P}/nodes/{service.node}/tasks/{task.upid}"
    status = (await client.get(f"{url}/status")).json()["data"]
    assert set(status) == STATUS_FIELDS
    assert status["status"] == "running"  # queued: not ended
    assert (status["type"], status["id"], status["user"]) == ("vzdump", "101", "root@pam")
    assert status["upid"] == task.upid and UPID_RE.match(status["upid"])
    await end(service, task, State.SUCCEEDED)
    status = (await client.get(f"{url}/status")).json()["data"]
    assert (status["status"], status["exitstatus"]) == ("stopped", "OK")
    assert (await client.get(url)).json() == {"data": [{"name": "log"}, {"name": "status"}]}


@pytest.mark.parametrize(
    ("state", "warnings", "error", "exitstatus", "last"),
    [
        (State.SUCCEEDED, 0, None, "OK", "TASK OK"),
        (State.SUCCEEDED, 2, None, "WARNINGS: 2", "TASK WARNINGS: 2"),
        (State.FAILED, 0, "disk\nfull", "disk full", "TASK ERROR: disk full"),
        (
            State.CANCELED,
            0,
            "received interrupt",
            "received interrupt",
            "TASK ERROR: received interrupt",
        ),
    ],
)
async def test_exitstatus_and_last_log_line(
    client: httpx.AsyncClient,
    service: TaskService,
    state: State,
    warnings: int,
    error: str | None,
    exitstatus: str,
    last: str,
) -> None:
    task = await end(service, await submit(service), state, warnings=warnings, error=error)
    url = f"{P}/nodes/{service.node}/tasks/{task.upid}"
    assert (await client.get(f"{url}/status")).json()["data"]["exitstatus"] == exitstatus
    body = (await client.get(f"{url}/log", params={"limit": 0})).json()
    assert body["total"] == 3
    assert body["data"] == [{"n": 1, "t": "line 1"}, {"n": 2, "t": "line 2"}, {"n": 3, "t": last}]


async def test_log_paging_and_download(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await end(service, await submit(service), State.SUCCEEDED, lines=5)
    url = f"{P}/nodes/{service.node}/tasks/{task.upid}/log"
    body = (await client.get(url, params={"start": 2, "limit": 2})).json()
    assert body == {"data": [{"n": 3, "t": "line 3"}, {"n": 4, "t": "line 4"}], "total": 6}
    body = (await client.get(url, params={"start": 5, "limit": 10})).json()
    assert body["data"] == [{"n": 6, "t": "TASK OK"}]
    assert (await client.get(url, params={"start": 9})).json() == {"data": [], "total": 6}
    r = await client.get(url, params={"download": 1})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "attachment" in r.headers["content-disposition"]
    assert r.text.splitlines() == [*(f"line {i}" for i in range(1, 6)), "TASK OK"]
    check_error(await client.get(url, params={"download": 1, "start": 1}), 400)
    empty = await submit(service)
    r = await client.get(f"{P}/nodes/{service.node}/tasks/{empty.upid}/log")
    assert r.json() == {"data": [{"n": 1, "t": "no content"}], "total": 1}


async def test_list_filters(client: httpx.AsyncClient, service: TaskService) -> None:
    ok = await end(service, await submit(service, vmid=100), State.SUCCEEDED)
    warn = await end(service, await submit(service, vmid=200), State.SUCCEEDED, warnings=1)
    bad = await end(service, await submit(service, vmid=300), State.FAILED, error="boom")
    apt = await end(service, await submit(service, "aptupdate"), State.SUCCEEDED)
    running = await submit(service, vmid=400)
    await submit(service, tenant="other")  # never seen
    url = f"{P}/nodes/{service.node}/tasks"

    async def upids(**params: Any) -> list[str]:
        r = await client.get(url, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body.get("total", 0) == (
            len(body["data"]) if "start" not in params else body["total"]
        )
        return [item["upid"] for item in body["data"]]

    assert await upids() == [apt.upid, bad.upid, warn.upid, ok.upid]  # archive, newest first
    assert await upids(source="active") == [running.upid]
    assert await upids(source="all") == [running.upid, apt.upid, bad.upid, warn.upid, ok.upid]
    assert await upids(typefilter="aptupdate") == [apt.upid]
    assert await upids(vmid=200) == [warn.upid]
    assert await upids(userfilter="ROOT") == [apt.upid, bad.upid, warn.upid, ok.upid]
    assert await upids(userfilter="nobody") == []
    assert await upids(errors=1) == [bad.upid, warn.upid]
    assert await upids(statusfilter="ok") == [apt.upid, ok.upid]
    assert await upids(statusfilter="error,warning") == [bad.upid, warn.upid]
    assert await upids(since=ok.upid and int(ok.created_at.timestamp())) == [
        apt.upid,
        bad.upid,
        warn.upid,
        ok.upid,
    ]
    assert await upids(until=int(ok.created_at.timestamp()) - 10) == []
    r = await client.get(url, params={"start": 1, "limit": 2})
    body = r.json()
    assert [i["upid"] for i in body["data"]] == [bad.upid, warn.upid] and body["total"] == 4
    assert "total" not in (await client.get(url, params={"vmid": 999})).json()
    item = (await client.get(url, params={"vmid": 300})).json()["data"][0]
    assert item["status"] == "boom" and item["endtime"] >= item["starttime"]
    item = (await client.get(url, params={"source": "active"})).json()["data"][0]
    assert item["status"] == "RUNNING" and "endtime" not in item


async def test_bad_filters(client: httpx.AsyncClient, service: TaskService) -> None:
    url = f"{P}/nodes/{service.node}/tasks"
    check_error(await client.get(url, params={"start": "x"}), 400)
    check_error(await client.get(url, params={"limit": -1}), 400)
    check_error(await client.get(url, params={"source": "nope"}), 400)
    check_error(await client.get(url, params={"statusfilter": "ok,bad"}), 400)
    check_error(await client.get(url, params={"vmid": "12"}), 400)
    check_error(await client.get(url, params={"errors": "maybe"}), 400)
    check_error(await client.get(url, params={"bogus": 1}), 400)
    check_error(await client.get(url, params={"since": 10**17}), 400)
    check_error(await client.get(url, params={"until": "9" * 18}), 400)
    r = await client.get(url, params={"start": "1", "limit": "2", "_dc": "1"})
    assert r.status_code == 200 and r.json() == {"data": []}


async def test_bad_upids_nodes_and_paths(client: httpx.AsyncClient, service: TaskService) -> None:
    node = service.node
    for bad in (
        "nope",
        "UPID:x:1:2:3:t::u:",
        "UPID:node:0000ABCD:00001234:6B03911C:demo:42:root@pam:done",
    ):
        r = await client.get(f"{P}/nodes/{node}/tasks/{bad}/status")
        check_error(r, 400, upid="unable to parse worker upid")
    unknown = f"UPID:{node}:0000ABCD:00001234:6B03911C:vzdump:42:root@pam:"
    check_error(
        await client.get(f"{P}/nodes/{node}/tasks/{unknown}/status"), 400, upid="no such task"
    )
    check_error(await client.delete(f"{P}/nodes/{node}/tasks/{unknown}"), 400, upid="no such task")
    task = await submit(service)
    check_error(await client.get(f"{P}/nodes/othernode/tasks/{task.upid}/status"), 400)
    check_error(await client.get(f"{P}/nodes/othernode/tasks"), 400)
    check_error(await client.get(f"{P}/nodes/{node}/nothing"), 501)
    check_error(await client.put(f"{P}/nodes/{node}/tasks"), 501)


async def test_other_tenant_is_no_such_task(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    theirs = await submit(service, tenant="other")
    url = f"{P}/nodes/{service.node}/tasks/{theirs.upid}"
    check_error(await client.get(f"{url}/status"), 400, upid="no such task")
    check_error(await client.get(f"{url}/log"), 400, upid="no such task")
    check_error(await client.delete(url), 400, upid="no such task")
    assert (await service.get(theirs.id)).state is State.QUEUED


async def test_stop(client: httpx.AsyncClient, service: TaskService) -> None:
    queued = await submit(service)
    url = f"{P}/nodes/{service.node}/tasks/{queued.upid}"
    r = await client.delete(url)
    assert r.status_code == 200 and r.json() == {"data": None}
    assert (await service.get(queued.id)).state is State.CANCELED
    assert (await client.delete(url)).json() == {"data": None}  # ended: nothing to stop


async def test_kickoff(client: httpx.AsyncClient, service: TaskService) -> None:
    node = service.node
    r = await client.post(
        f"{P}/nodes/{node}/vzdump", data={"vmid": "105", "storage": "pbs", "remove": "1"}
    )
    assert r.status_code == 200, r.text
    upid = r.json()["data"]
    assert UPID_RE.match(upid)
    task = await service.get_by_upid(upid)
    assert (task.type, task.params["vmid"], task.params["storage"]) == ("vzdump", 105, "pbs")
    assert (task.tenant, task.user) == ("acme", "root@pam")
    r = await client.post(f"{P}/nodes/{node}/apt/update", data={"notify": "0", "quiet": "1"})
    assert (await service.get_by_upid(r.json()["data"])).type == "aptupdate"
    check_error(await client.post(f"{P}/nodes/{node}/apt/update", data={"notify": "2"}), 400)
    body = check_error(await client.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "5"}), 400)
    assert "vmid" in body["errors"]
    check_error(await client.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "x"}), 400)
    check_error(await client.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "100", "zz": "1"}), 400)


async def test_token_auth_refusals(
    api: Application, keys: KeyService, key: str, service: TaskService
) -> None:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        url = f"{P}/nodes"
        check_error(await c.get(url), 401)
        check_error(await c.get(url, headers=token(key, user="alice@pam")), 401)
        check_error(await c.get(url, headers=token("tgk_000000000000_nope")), 401)
        check_error(await c.get(url, headers={"Authorization": "PVEAPIToken=garbage"}), 401)
        check_error(await c.get(url, headers={"Authorization": f"Bearer {key}"}), 401)
        reader = (await keys.create(tenant="acme", user="ro", role="read")).token
        ro = token(reader, user="ro@taskgate")
        assert (await c.get(url, headers=ro)).status_code == 200
        task = await submit(service)
        r = await c.delete(f"{P}/nodes/{service.node}/tasks/{task.upid}", headers=ro)
        check_error(r, 403)
        check_error(
            await c.post(f"{P}/nodes/{service.node}/vzdump", data={"vmid": 100}, headers=ro), 403
        )


async def test_ticket_login_csrf_and_renewal(
    api: Application, key: str, service: TaskService
) -> None:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        r = await c.post(f"{P}/access/ticket", data={"username": "root@pam", "password": "nope"})
        assert r.status_code == 401 and r.json()["data"] is None
        r = await c.post(f"{P}/access/ticket", data={"username": "bob@pam", "password": key})
        assert r.status_code == 401
        r = await c.post(f"{P}/access/ticket", data={"username": "root@pam", "password": key})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        ticket, csrf = data["ticket"], data["CSRFPreventionToken"]
        assert data["username"] == "root@pam" and ticket.startswith("PVE:root@pam:")
        cookie = {"Cookie": f"PVEAuthCookie={ticket}"}
        assert (await c.get(f"{P}/nodes", headers=cookie)).status_code == 200
        node = service.node
        r = await c.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "100"}, headers=cookie)
        check_error(r, 401)  # no CSRF header on a write
        bad = {**cookie, "CSRFPreventionToken": csrf + "x"}
        check_error(
            await c.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "100"}, headers=bad), 401
        )
        good = {**cookie, "CSRFPreventionToken": csrf}
        r = await c.post(f"{P}/nodes/{node}/vzdump", data={"vmid": "100"}, headers=good)
        assert r.status_code == 200 and UPID_RE.match(r.json()["data"])
        forged = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
        check_error(await c.get(f"{P}/nodes", headers={"Cookie": f"PVEAuthCookie={forged}"}), 401)
        r = await c.post(f"{P}/access/ticket", data={"username": "root@pam", "password": ticket})
        assert r.status_code == 200 and r.json()["data"]["ticket"].startswith("PVE:root@pam:")


async def test_native_and_dialect_agree(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await end(service, await submit(service), State.FAILED, error="no space")
    url = f"{P}/nodes/{service.node}/tasks/{task.upid}/status"
    first = (await client.get(url)).json()
    assert (await client.get(url)).json() == first  # the cached rendering
    await service.delete(task.id)
    check_error(await client.get(url), 400, upid="no such task")


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/%00/tasks",
        "/nodes/n/tasks/UPID%3A%3A%3A/status",
        "/nodes//tasks",
        "/nodes/{node}/tasks/" + "U" * 5000 + "/log",
        "/nodes/{node}/tasks/UPID:{node}:FFFFFFFF:FFFFFFFFF:FFFFFFFF:x::a@b:/log?start=99999999",
        "/nodes/{node}/tasks?limit=99999999999999999999",
        "/nodes/{node}/tasks?since=-5",
        "/nodes/{node}/tasks?start=%ff",
        "/access",
        "/",
    ],
)
async def test_odd_requests_never_fail_on_our_side(
    client: httpx.AsyncClient, service: TaskService, path: str
) -> None:
    for method in ("GET", "POST", "DELETE", "PUT"):
        r = await client.request(method, P + path.replace("{node}", service.node))
        assert r.status_code < 500 or r.status_code == 501, (method, path, r.text)  # 501: PVE's
        assert "data" in r.json()


async def test_expired_ticket_is_refused(
    api: Application, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgate.http.dialects import proxmox_auth

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        r = await c.post(f"{P}/access/ticket", data={"username": "root@pam", "password": key})
        cookie = {"Cookie": f"PVEAuthCookie={r.json()['data']['ticket']}"}
        assert (await c.get(f"{P}/nodes", headers=cookie)).status_code == 200
        later = proxmox_auth.time.time() + proxmox_auth.TICKET_LIFETIME + 1
        monkeypatch.setattr(proxmox_auth.time, "time", lambda: later)
        check_error(await c.get(f"{P}/nodes", headers=cookie), 401)
