"""API keys on the native API: every refusal (401, 403) as problem+json, tenant
isolation on every route, read/write/admin, revocation and expiry taking effect at once,
``auth = false``, and what the OpenAPI document says about it all."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_helpers import BASE, CHEAP_HASH, bearer, finish, problem

from taskgate.auth import KeyService
from taskgate.auth.keys import format_key, generate
from taskgate.http import Application, create_app, ui
from taskgate.http.auth import ANONYMOUS, NOBODY, KeyAuthenticator, Principal
from taskgate.http.routing import Endpoint
from taskgate.service import TaskService
from taskgate.settings import Settings

MakeKey = Callable[..., Awaitable[str]]
SAMPLE_ID = "01900000-0000-7000-8000-000000000000"
CHALLENGE = 'Bearer realm="taskgate"'
INVALID = 'Bearer realm="taskgate", error="invalid_token"'


@pytest.fixture
def make_key(keys: KeyService) -> MakeKey:
    async def make(
        tenant: str = "default", user: str = "someone", role: str = "write", **options: Any
    ) -> str:
        new = await keys.create(tenant=tenant, user=user, role=role, **options)
        return new.token

    return make


@pytest.fixture
async def as_key(api: Application) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    """Clients that send a given key (None: none); closed after the test."""
    made: list[httpx.AsyncClient] = []

    def client(key: str | None) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api),
            base_url=BASE,
            headers={} if key is None else bearer(key),
        )
        made.append(c)
        return c

    yield client
    for c in made:
        await c.aclose()


def concrete(endpoint: Endpoint) -> str:
    return re.sub(
        r"\{(\w+)\}", lambda m: SAMPLE_ID if m.group(1) == "id" else "noop", endpoint.path
    )


async def call(client: httpx.AsyncClient, endpoint: Endpoint) -> httpx.Response:
    return await client.request(endpoint.method, concrete(endpoint))


# -- 401 ----------------------------------------------------------------------------


async def test_every_refusal_is_a_401_problem_with_a_challenge(
    as_key: Callable[[str | None], httpx.AsyncClient], make_key: MakeKey, keys: KeyService
) -> None:
    good = await make_key()
    other_id, secret = generate()
    revoked = await make_key(user="gone")
    await keys.revoke(revoked.split("_")[1])
    anonymous = as_key(None)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({}, CHALLENGE, "needs an API key"),
        ({"Authorization": f"Basic {good}"}, INVALID, "must be 'Bearer <key>'"),
        ({"Authorization": "Bearer"}, INVALID, "must be 'Bearer <key>'"),
        ({"Authorization": ""}, INVALID, "must be 'Bearer <key>'"),
        ({"Authorization": "Bearer tgk_123_abc"}, INVALID, "malformed"),
        ({"Authorization": f"Bearer {good}x"}, INVALID, "malformed"),
        ({"Authorization": b"Bearer tgk_\xff"}, INVALID, "ASCII"),
        ({"Authorization": f"Bearer {format_key(other_id, secret)}"}, INVALID, "not valid"),
        ({"Authorization": f"Bearer {good[:17]}{secret}"}, INVALID, "not valid"),
        ({"Authorization": f"Bearer {revoked}"}, INVALID, "was revoked"),
    ]
    for headers, challenge, detail in cases:
        response = await anonymous.get("/v1/tasks", headers=headers)
        doc = problem(response, 401, "authentication-failed")
        assert detail in doc["detail"], (headers, doc)
        assert response.headers["www-authenticate"] == challenge
        assert doc["title"] == "Unauthorized"
        assert good not in response.text
    # a real id with the wrong secret reads exactly as an unknown key
    unknown = await anonymous.get("/v1/tasks", headers=bearer(format_key(other_id, secret)))
    wrong = await anonymous.get("/v1/tasks", headers=bearer(good[:17] + secret))
    assert unknown.json()["detail"] == wrong.json()["detail"]
    # the scheme is case-insensitive (RFC 9110 §11.1)
    ok = await anonymous.get("/v1/tasks", headers={"Authorization": f"bearer  {good} "})
    assert ok.status_code == 200


async def test_every_route_needs_a_key_but_health_and_docs(
    api: Application, as_key: Callable[[str | None], httpx.AsyncClient]
) -> None:
    anonymous = as_key(None)
    public = set()
    for endpoint in api.router.endpoints:
        response = await call(anonymous, endpoint)
        if endpoint.public:
            public.add(endpoint.path)
            assert response.status_code != 401, endpoint.path
        else:
            problem(response, 401, "authentication-failed")
            assert 401 in endpoint.responses, endpoint.path
    service = {"/", "/v1", "/healthz", "/readyz", "/openapi.json", "/docs"}
    # the dashboard's pages and files hold no data: the page asks the API with a key
    dashboard = {p for p in public if p == "/ui" or p.startswith("/ui/")}
    assert public - dashboard == service
    assert dashboard == {*ui.PAGES, "/ui/tasks", "/ui/tasks/{id}", "/ui/assets/{name}"}


# -- 403 and roles ------------------------------------------------------------------


async def test_a_read_key_reads_and_changes_nothing(
    api: Application,
    service: TaskService,
    as_key: Callable[[str | None], httpx.AsyncClient],
    make_key: MakeKey,
) -> None:
    reader = as_key(await make_key(user="bob", role="read"))
    task = await service.submit("noop", {}, tenant="default")
    assert (await reader.get(f"/v1/tasks/{task.id}")).status_code == 200
    assert (await reader.get(f"/v1/tasks/{task.id}/log")).status_code == 200
    assert [t["id"] for t in (await reader.get("/v1/tasks")).json()["items"]] == [task.id]
    assert (await reader.get("/v1/operations")).status_code == 200
    refused = set()
    for endpoint in api.router.endpoints:
        if endpoint.role == "read":
            continue
        response = await call(reader, endpoint)  # even for a task that does not exist
        doc = problem(response, 403, "permission-denied")
        assert "bob" in doc["detail"] and "'read'" in doc["detail"]
        assert "insufficient_scope" in response.headers["www-authenticate"]
        assert 403 in endpoint.responses
        refused.add(endpoint.name)
    assert {"submitOperation", "submitTask", "cancelTask", "deleteTask"} <= refused
    assert (await service.get(task.id)).state == "queued"  # untouched


async def test_a_write_key_changes_its_tenants_tasks(
    service: TaskService, as_key: Callable[[str | None], httpx.AsyncClient], make_key: MakeKey
) -> None:
    writer = as_key(await make_key(tenant="acme", user="alice", role="write", user_id=42))
    submitted = await writer.post("/v1/operations/echo", json={"name": "x"})
    assert submitted.status_code == 202
    task = submitted.json()
    assert (task["tenant"], task["user"], task["user_id"]) == ("acme", "alice", 42)
    assert task["upid"].endswith(":alice@taskgate:")
    assert (await service.get(task["id"])).user_id == 42  # stored, not only shown
    body = await writer.post("/v1/tasks", json={"type": "noop"})
    assert (body.json()["tenant"], body.json()["user_id"]) == ("acme", 42)
    assert (await writer.post(f"/v1/tasks/{task['id']}/cancel")).status_code == 200
    assert (await writer.delete(f"/v1/tasks/{task['id']}")).status_code == 204


# -- tenants ------------------------------------------------------------------------


async def test_another_tenants_task_is_a_404_on_every_route(
    service: TaskService, as_key: Callable[[str | None], httpx.AsyncClient], make_key: MakeKey
) -> None:
    mine = as_key(await make_key(tenant="acme", user="alice"))
    theirs = as_key(await make_key(tenant="globex", user="hank"))
    task = (await theirs.post("/v1/operations/noop")).json()
    url = f"/v1/tasks/{task['id']}"
    assert (await theirs.get(url)).status_code == 200  # now in the rendering cache
    for response in [
        await mine.get(url),  # a cache hit for globex's rendering: still refused
        await mine.get(url, params={"wait": 0.01}),
        await mine.get(f"{url}/log"),
        await mine.post(f"{url}/cancel"),
        await mine.delete(url),
        await mine.get(f"/v1/tasks/{SAMPLE_ID}"),  # and a task that does not exist at all
    ]:
        doc = problem(response, 404, "task-not-found")
        assert "hank" not in response.text and "globex" not in response.text
    assert doc["detail"]
    assert (await mine.get("/v1/tasks")).json()["items"] == []
    problem(await mine.get("/v1/tasks", params={"tenant": "globex"}), 403, "permission-denied")
    assert (await mine.get("/v1/tasks", params={"tenant": "acme"})).status_code == 200
    await finish(service, task["id"])
    assert (await mine.delete(url)).status_code == 404  # ended now: still not theirs to delete
    assert (await theirs.get(url)).json()["state"] == "succeeded"


async def test_an_admin_sees_and_manages_every_tenant(
    service: TaskService, as_key: Callable[[str | None], httpx.AsyncClient], make_key: MakeKey
) -> None:
    admin = as_key(await make_key(tenant="default", user="root", role="admin"))
    a = await service.submit("noop", {}, tenant="acme")
    b = await service.submit("noop", {}, tenant="globex")
    listed = (await admin.get("/v1/tasks")).json()["items"]
    assert [t["id"] for t in listed] == [b.id, a.id]
    only = (await admin.get("/v1/tasks", params={"tenant": "acme"})).json()["items"]
    assert [t["id"] for t in only] == [a.id]
    assert (await admin.get(f"/v1/tasks/{b.id}")).json()["tenant"] == "globex"
    assert (await admin.get(f"/v1/tasks/{b.id}/log")).status_code == 200
    assert (await admin.post(f"/v1/tasks/{b.id}/cancel")).json()["state"] == "canceled"
    assert (await admin.delete(f"/v1/tasks/{b.id}")).status_code == 204
    own = (await admin.post("/v1/operations/noop")).json()
    assert (own["tenant"], own["user"]) == ("default", "root")


# -- revocation and expiry ----------------------------------------------------------


async def test_a_revoked_key_is_refused_at_once(
    api: Application,
    service: TaskService,
    as_key: Callable[[str | None], httpx.AsyncClient],
    make_key: MakeKey,
) -> None:
    key = await make_key()
    client = as_key(key)
    assert (await client.get("/v1/tasks")).status_code == 200  # checked, and cached
    assert api.keys is not None
    await api.keys.revoke(key.split("_")[1])
    doc = problem(await client.get("/v1/tasks"), 401, "authentication-failed")
    assert "revoked" in doc["detail"]

    # revoked by another service on the same store (`taskgate keys revoke`, in effect)
    other_key = await make_key(user="second")
    other = as_key(other_key)
    assert (await other.get("/v1/tasks")).status_code == 200
    outside = KeyService(service.connector)
    await outside.revoke(other_key.split("_")[1])
    outside.close()
    await asyncio.sleep(0)  # the memory store delivers its notification on the next turn
    problem(await other.get("/v1/tasks"), 401, "authentication-failed")


async def test_an_expired_key_is_refused_though_it_was_cached(
    service: TaskService, settings: Settings
) -> None:
    now = [2_000_000_000.0]
    keys = KeyService(service.connector, clock=lambda: now[0], hash_cost=CHEAP_HASH)
    api = create_app(service, settings, authenticate=KeyAuthenticator(keys))
    made = await keys.create(
        tenant="acme",
        user="alice",
        role="read",
        expires_at=datetime.fromtimestamp(now[0] + 60, UTC),
    )
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers=bearer(made.token)
    ) as client:
        assert (await client.get("/v1/tasks")).status_code == 200
        now[0] += 59.9
        assert (await client.get("/v1/tasks")).status_code == 200
        now[0] += 0.1
        doc = problem(await client.get("/v1/tasks"), 401, "authentication-failed")
        assert "expired at" in doc["detail"]
    keys.close()


# -- auth off -----------------------------------------------------------------------


async def test_with_auth_off_everyone_is_the_anonymous_admin(
    service: TaskService, settings: Settings
) -> None:
    api = create_app(service, settings.model_copy(update={"auth": False}))
    assert api.keys is None
    theirs = await service.submit("noop", {}, tenant="globex")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE) as c:
        task = (await c.post("/v1/operations/noop")).json()
        assert (task["tenant"], task["user"], task["user_id"]) == ("default", "anonymous", None)
        assert {t["id"] for t in (await c.get("/v1/tasks")).json()["items"]} == {
            task["id"],
            theirs.id,
        }
        garbage = {"Authorization": "Bearer nonsense"}  # ignored, not refused
        assert (await c.get(f"/v1/tasks/{theirs.id}", headers=garbage)).status_code == 200


def test_principals() -> None:
    assert ANONYMOUS.scope is None and ANONYMOUS.allows("admin")
    assert NOBODY.scope == "" and not NOBODY.allows("write")
    alice = Principal("acme", "alice", "write", user_id=42, key_id="0123456789ab")
    assert alice.scope == "acme" and alice.allows("read") and not alice.allows("admin")


# -- the document -------------------------------------------------------------------


async def test_the_document_declares_the_keys(client: httpx.AsyncClient, api: Application) -> None:
    doc = (await client.get("/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert doc["security"] == [{"apiKey": []}]
    assert "WWW-Authenticate" in doc["components"]["headers"]
    assert doc["components"]["schemas"]["Task"]["properties"]["user_id"]
    for endpoint in api.router.endpoints:
        op = doc["paths"][endpoint.path][endpoint.method.lower()]
        if endpoint.public:
            assert op["security"] == [] and "401" not in op["responses"]
        else:
            assert "security" not in op and "401" in op["responses"]
        if endpoint.role != "read":
            assert "403" in op["responses"]
    page = (await client.get("/docs")).text
    assert 'id="api-key"' in page  # the page's "Try it" can send a key
