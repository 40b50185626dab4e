"""``purge`` through `AsyncClient` and `Client`, against the real ASGI app and a worker in
process: by state, type, age and tenant; what it never deletes; the 403 for a key that
is not an admin's; and the refusals made before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from taskgate.client import (
    AsyncClient,
    BadRequest,
    Client,
    Forbidden,
    InvalidResponse,
    NotFound,
    State,
    TaskFailed,
)

from .conftest import BASE, Stack, close_stack, make_settings, open_stack


async def ids(client: AsyncClient) -> set[str]:
    return {t.id async for t in client.list()}


# -- AsyncClient -----------------------------------------------------------------------


async def test_purge_by_state_and_type(aclient: AsyncClient) -> None:
    done = [await aclient.submit_and_wait("noop") for _ in range(2)]
    added = await aclient.submit_and_wait("add", a=1)
    with pytest.raises(TaskFailed) as failed:
        await aclient.submit_and_wait("fail")
    waiting = await aclient.submit("noop", delay=3600)

    assert await aclient.purge(state="failed") == 1
    with pytest.raises(NotFound):
        await aclient.get(failed.value.task)
    assert await aclient.purge(state=["succeeded", "canceled"], type="noop") == 2
    assert await ids(aclient) == {added.id, waiting.id}
    assert not {t.id for t in done} & await ids(aclient)
    assert await aclient.purge(state=State.SUCCEEDED, type=("add", "noop")) == 1
    assert await ids(aclient) == {waiting.id}  # a task not ended is never purged
    assert (await aclient.get(waiting)).state is State.SCHEDULED


async def test_purge_by_age(aclient: AsyncClient) -> None:
    task = await aclient.submit_and_wait("noop")
    waiting = await aclient.submit("noop", delay=3600)
    assert await aclient.purge(finished_before=timedelta(hours=1)) == 0  # not that old
    assert await aclient.purge(finished_before=datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert await aclient.purge(finished_before="2000-01-01T00:00:00Z") == 0
    assert await aclient.purge(finished_before=timedelta(0), tenant="acme") == 0
    assert await aclient.purge(finished_before=timedelta(0), state="failed") == 0
    # an offset with a "+" reaches the server as that offset, not as a space
    ahead = datetime.now(UTC).astimezone(timezone(timedelta(hours=2))) + timedelta(minutes=1)
    assert await aclient.purge(finished_before=ahead) == 1
    with pytest.raises(NotFound):
        await aclient.get(task)
    assert await aclient.purge(finished_before=timedelta(0)) == 0  # every ended task: none
    assert await ids(aclient) == {waiting.id}


async def test_nothing_selected_is_zero(aclient: AsyncClient) -> None:
    assert await aclient.purge(state="timed_out") == 0
    assert await aclient.purge(state=["failed", "canceled"], type="no.such.operation") == 0


async def test_the_server_refuses_states_not_ended(aclient: AsyncClient) -> None:
    with pytest.raises(BadRequest) as running:
        await aclient.purge(state="running")
    assert running.value.status == 400 and "only ended tasks" in running.value.detail
    with pytest.raises(BadRequest):
        await aclient.purge(state="sleeping")
    with pytest.raises(BadRequest):
        await aclient.purge(finished_before="last tuesday")


@pytest.fixture
async def keyed() -> AsyncIterator[tuple[Stack, dict[str, str]]]:
    """The app with API keys required, and a key of each role."""
    service, api, worker, job = await open_stack(make_settings(auth=True))
    try:
        assert api.keys is not None
        keys = {}
        for n, role in enumerate(("admin", "write", "read"), 1):
            new = await api.keys.create(tenant="default", user=role, role=role, user_id=n)
            keys[role] = new.token
        yield Stack(service, api), keys
    finally:
        await close_stack(service, worker, job)


async def test_only_an_admin_key_may_purge(keyed: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = keyed
    transport = httpx.ASGITransport(app=stack.api)
    async with AsyncClient(BASE, api_key=keys["write"], transport=transport) as writer:
        task = await writer.submit_and_wait("noop")
        with pytest.raises(Forbidden) as refused:
            await writer.purge(state="succeeded")
        assert refused.value.status == 403
        async with AsyncClient(BASE, api_key=keys["read"], transport=transport) as reader:
            with pytest.raises(Forbidden):
                await reader.purge(state="succeeded")
        async with AsyncClient(BASE, api_key=keys["admin"], transport=transport) as admin:
            assert await admin.purge(state="succeeded", tenant="default") == 1
        with pytest.raises(NotFound):
            await writer.get(task)


# -- refused before sending --------------------------------------------------------------


class Nothing(httpx.MockTransport):
    """A transport that records requests and answers ``answer``."""

    def __init__(self, answer: bytes = b'{"purged": 0}') -> None:
        self.requests: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(200, content=answer, headers={"content-type": "application/json"})

        super().__init__(handler)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs state= or finished_before="),
        ({"type": "noop", "tenant": "acme"}, "needs state= or finished_before="),
        ({"state": []}, "needs state= or finished_before="),
        ({"finished_before": datetime(2026, 1, 1)}, "aware datetime"),
        ({"finished_before": timedelta(days=-1)}, "must not be negative"),
    ],
)
async def test_refused_before_anything_is_sent(kwargs: dict[str, object], message: str) -> None:
    transport = Nothing()
    async with AsyncClient(BASE, transport=transport) as client:
        with pytest.raises(ValueError, match=message):
            await client.purge(**kwargs)  # type: ignore[arg-type]
    with Client(BASE, transport=transport) as sync, pytest.raises(ValueError, match=message):
        sync.purge(**kwargs)  # type: ignore[arg-type]
    assert transport.requests == []


def test_the_request_as_sent() -> None:
    transport = Nothing(b'{"purged": 3}')
    with Client(BASE, transport=transport) as client:
        before = datetime.now(UTC)
        assert (
            client.purge(state=["failed", "canceled"], type="a", finished_before=timedelta(days=7))
            == 3
        )
        after = datetime.now(UTC)
    (request,) = transport.requests
    assert (request.method, request.url.path) == ("DELETE", "/v1/tasks")
    params = request.url.params
    assert params.get_list("state") == ["failed", "canceled"] and params.get_list("type") == ["a"]
    cutoff = datetime.fromisoformat(params["finished_before"])
    assert before - timedelta(days=7) <= cutoff <= after - timedelta(days=7)
    assert "tenant" not in params


def test_an_answer_without_a_count() -> None:
    with (
        Client(BASE, transport=Nothing(b'{"deleted": 3}')) as client,
        pytest.raises(InvalidResponse, match="purged"),
    ):
        client.purge(state="failed")


# -- Client ----------------------------------------------------------------------------


def test_sync_purge(client: Client) -> None:
    done = client.submit_and_wait("noop")
    with pytest.raises(TaskFailed):
        client.submit_and_wait("fail")
    assert client.purge(state="failed") == 1
    assert client.purge(state="failed") == 0
    assert client.purge(finished_before=timedelta(hours=1)) == 0
    assert client.purge(finished_before=timedelta(0), type="noop") == 1
    with pytest.raises(NotFound):
        client.get(done)
    with pytest.raises(BadRequest):
        client.purge(state="queued")
