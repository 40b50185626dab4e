"""The SDK against a real ``taskgate serve`` subprocess (tests/acceptance/server.py) with
auth on, as a user would run it: the admin key its banner prints, keys made with
``taskgate keys create``, live Server-Sent Event streams, and dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from acceptance.server import Server
from taskgate.client import (
    AsyncClient,
    BadRequest,
    Client,
    ConnectionFailed,
    Forbidden,
    NotFound,
    Retry,
    State,
    TaskCanceled,
    TaskEvent,
    TaskFailed,
    TaskTimedOut,
    Unauthorized,
    WaitTimeout,
)

pytestmark = pytest.mark.acceptance

QUICK = Retry(attempts=4, backoff=0.02, max_backoff=0.1)
"""Reconnections in a test need not wait the 2 s the server suggests."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("sdk-serve")
    server = Server(folder / "tasks.db", folder).start()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log_text()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    assert server.key, f"serve printed no admin key:\n{server.log_text()}"
    with Client(server.url, api_key=server.key, retry=QUICK) as c:
        yield c


def make_key(server: Server, *, tenant: str, role: str) -> str:
    """``taskgate keys create``, as an operator would run it; the key it prints."""
    return server.make_key(role, tenant=tenant)


# -- a transport that drops streams -----------------------------------------------------


class _Cut(httpx.SyncByteStream):
    """An event stream that breaks after ``events`` events, as a network would."""

    def __init__(self, inner: httpx.SyncByteStream, events: int) -> None:
        self.inner = inner
        self.events = events

    def __iter__(self) -> Iterator[bytes]:
        passed = 0
        buffer = b""
        for chunk in self.inner:
            buffer += chunk
            while (end := buffer.find(b"\n\n")) >= 0:
                block, buffer = buffer[: end + 2], buffer[end + 2 :]
                yield block
                if b"\ndata:" in b"\n" + block:
                    passed += 1
                if passed >= self.events:
                    raise httpx.ReadError("connection reset (dropped by the test)")

    def close(self) -> None:
        self.inner.close()


class Dropping(httpx.HTTPTransport):
    """The network, except that the first ``times`` event streams break after
    ``after`` events each. Records every request."""

    def __init__(self, after: int, times: int = 1) -> None:
        super().__init__()
        self.after = after
        self.times = times
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        if self.times and response.headers.get("content-type", "").startswith("text/event-stream"):
            self.times -= 1
            assert isinstance(response.stream, httpx.SyncByteStream)
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=_Cut(response.stream, self.after),
                extensions=response.extensions,
            )
        return response

    def streams(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.headers.get("accept") == "text/event-stream"]


# -- tasks -----------------------------------------------------------------------------


def test_submit_and_wait(client: Client) -> None:
    task = client.submit("echo", name="sdk", steps=3, labels={"via": "sdk"})
    assert task.user == "admin" and task.tenant == "default" and task.labels == {"via": "sdk"}
    done = client.wait(task, timeout=60)
    assert done.result == {"echo": "sdk", "steps": 3} and done.warnings == 1
    assert done.created_resources == {"echoes": ["sdk"]}
    assert [line.t for line in client.log(done).lines][:3] == [f"step {i} of 3" for i in (1, 2, 3)]
    assert done.id in {t.id for t in client.list(type="echo", state="succeeded")}


def test_wait_raises_each_typed_error(client: Client) -> None:
    with pytest.raises(TaskFailed) as failed:
        client.submit_and_wait("flaky", failures=10, wait_timeout=60)
    assert failed.value.error_type == "ConnectionError"
    assert failed.value.error_message == "attempt 3 failed"
    assert failed.value.traceback and "in flaky" in failed.value.traceback
    assert failed.value.task.attempt == 3

    with pytest.raises(TaskTimedOut):
        client.submit_and_wait("sleep", seconds=60, timeout=0.5, wait_timeout=60)

    sleeper = client.submit("sleep", seconds=60)
    with pytest.raises(WaitTimeout):
        client.wait(sleeper, timeout=0.5)
    client.cancel(sleeper)
    with pytest.raises(TaskCanceled):
        client.wait(sleeper, timeout=60)


async def test_the_async_client(server: Server) -> None:
    async with AsyncClient(server.url, api_key=server.key, retry=QUICK) as client:
        tasks = await asyncio.gather(*(client.submit("echo", name=f"n{i}") for i in range(5)))
        done = await asyncio.gather(*(client.wait(t, timeout=60) for t in tasks))
        assert [t.result["echo"] for t in done] == [f"n{i}" for i in range(5)]
        with pytest.raises(TaskFailed):
            await client.submit_and_wait("flaky", failures=10, wait_timeout=60)


# -- streams ---------------------------------------------------------------------------


def test_follow_log_streams_while_the_task_runs(client: Client) -> None:
    task = client.submit("sleep", seconds=60)
    with client.follow_log(task) as lines:
        first = next(lines)
        assert first.n == 1 and first.t == "sleeping 60 s"
        assert client.get(task).state in (State.RUNNING, State.CANCELING)  # still going
        client.cancel(task)
        rest = [line.t for line in lines]
    assert "asked to stop" in rest
    assert lines.task is not None and lines.task.state is State.CANCELED


def test_follow_log_resumes_after_a_dropped_connection(server: Server) -> None:
    transport = Dropping(after=3)
    with Client(server.url, api_key=server.key, transport=transport, retry=QUICK) as client:
        task = client.submit_and_wait("echo", name="resume", steps=8, wait_timeout=60)
        total = client.get(task).log_count
        with client.follow_log(task) as lines:
            numbers = [line.n for line in lines]
    assert numbers == list(range(1, total + 1))  # each line once, in order
    first, second = transport.streams()
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "3"


async def test_events_follow_a_task_and_resume(server: Server) -> None:
    async with AsyncClient(server.url, api_key=server.key, retry=QUICK) as client:
        task = await client.submit("sleep", seconds=0.3, delay=1.0)
        seen: list[TaskEvent] = []
        async with client.events(task_id=task) as events:
            async for event in events:
                seen.append(event)
                if event.terminal:
                    break
        assert {e.task_id for e in seen} == {task.id}
        assert seen[-1].state is State.SUCCEEDED
        versions = [e.version or 0 for e in seen]
        assert versions == sorted(set(versions))
        # a new stream from the first event's id replays what changed since
        assert seen[0].event_id
        async with client.events(task_id=task.id, last_event_id=seen[0].event_id) as replay:
            async for event in replay:
                if event.terminal:
                    assert event.task_id == task.id and event.version == seen[-1].version
                    break


def test_events_reconnect_after_a_dropped_connection(server: Server) -> None:
    transport = Dropping(after=1)
    with Client(server.url, api_key=server.key, transport=transport, retry=QUICK) as client:
        task = client.submit("sleep", seconds=1.0, delay=0.5)
        seen: list[TaskEvent] = []
        with client.events(task_id=task) as events:
            for event in events:
                seen.append(event)
                if event.terminal:
                    break
    assert seen[-1].state is State.SUCCEEDED and len(seen) >= 2
    versions = [e.version or 0 for e in seen]
    assert versions == sorted(set(versions))  # nothing repeated by the replay
    first, second = transport.streams()[:2]
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == seen[0].event_id


def test_stream_problems(client: Client) -> None:
    with client.events(last_event_id="not-an-event-id") as events, pytest.raises(BadRequest):
        next(events)
    unknown = "01a2064e-d1f6-7171-8b27-b4ec45249ab8"
    with client.follow_log(unknown) as lines, pytest.raises(NotFound):
        next(lines)


# -- keys and problems -----------------------------------------------------------------


def test_keys_roles_and_tenants(server: Server, client: Client) -> None:
    mine = client.submit("noop")
    with Client(server.url, api_key="", retry=QUICK) as anonymous:
        with pytest.raises(Unauthorized) as missing:
            anonymous.get(mine)
        assert missing.value.status == 401 and missing.value.request_id
    with (
        Client(server.url, api_key="tgk_000000000000_" + "x" * 43) as wrong,
        pytest.raises(Unauthorized),
    ):
        wrong.list_page()

    reader = make_key(server, tenant="default", role="read")
    with Client(server.url, api_key=reader) as client_r:
        assert client_r.get(mine).id == mine.id  # reading is allowed
        with pytest.raises(Forbidden) as forbidden:
            client_r.submit("noop")
        assert forbidden.value.status == 403
        with pytest.raises(Forbidden):
            client_r.cancel(mine)

    other = make_key(server, tenant="other", role="write")
    with Client(server.url, api_key=other) as client_o:
        with pytest.raises(NotFound):  # another tenant's task does not exist for it
            client_o.get(mine)
        theirs = client_o.submit_and_wait("noop", wait_timeout=60)
        assert theirs.tenant == "other"
        assert mine.id not in {t.id for t in client_o.list()}


def test_an_unreachable_server(server: Server) -> None:
    with (
        Client("http://127.0.0.1:9", retry=Retry(attempts=2, backoff=0.01), timeout=5) as client,
        pytest.raises(ConnectionFailed, match="cannot reach"),
    ):
        client.get("01a2064e-d1f6-7171-8b27-b4ec45249ab8")


def test_the_url_serve_prints_works_as_is(server: Server) -> None:
    """The banner says ``API: http://host:port/v1``; the SDK takes that too."""
    with Client(server.url + "/v1", api_key=server.key) as client:
        assert {op.name for op in client.operations()} >= {"echo", "sleep", "noop"}
