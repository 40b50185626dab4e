"""GET /v1/events: task changes as Server-Sent Events, filtered, scoped to the tenant,
resumable with Last-Event-ID."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import claim, problem, submit
from schema_check import errors
from sse_client import Event, SSEStream

from taskgate import feed
from taskgate.auth import KeyService
from taskgate.http import Application
from taskgate.ids import encode_change_cursor
from taskgate.model import State
from taskgate.service import NewLogLine, Progress, TaskService
from taskgate.storage.connector import CHANNEL_CHANGED

UNKNOWN = "01900000-0000-7000-8000-000000000000"


def events_of(stream_events: list[Event]) -> list[tuple[str, str]]:
    return [(e.json()["id"], e.json()["state"]) for e in stream_events]


async def test_every_change_of_a_task_is_an_event(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    doc = (await client.get("/openapi.json")).json()
    task = await submit(client, "noop")
    async with SSEStream(api, "/v1/events", key=api_key) as stream:
        assert stream.headers[b"content-type"].startswith(b"text/event-stream")
        running = await claim(service, task["id"])
        event = await stream.next()
        assert event.kind == "task" and event.id is not None
        data = event.json()
        assert data == {
            "id": task["id"],
            "type": "noop",
            "state": "running",
            "progress": None,
            "message": None,
            "detailed_state": None,
            "updated_at": data["updated_at"],
            "version": running.version,
        }
        assert not errors(doc, {"$ref": "#/components/schemas/TaskEvent"}, data)
        await service.report(running, Progress(progress=40, message="half", detailed_state="x"))
        data = (await stream.next()).json()
        assert (data["progress"], data["message"], data["detailed_state"]) == (40, "half", "x")
        await service.finish(running, State.SUCCEEDED)
        data = (await stream.next()).json()
        assert data["state"] == "succeeded" and data["version"] == running.version + 2


async def test_filters(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    a = await submit(client, "noop")
    b = await submit(client, "echo", {"name": "b"})
    c = await submit(client, "noop")
    streams = {
        "a": SSEStream(api, "/v1/events", query=f"task_id={a['id']}".encode(), key=api_key),
        "a+b": SSEStream(
            api, "/v1/events", query=f"task_id={a['id']},{b['id']}".encode(), key=api_key
        ),
        "echo": SSEStream(api, "/v1/events", query=b"type=echo", key=api_key),
        "canceled": SSEStream(api, "/v1/events", query=b"state=canceled", key=api_key),
        "noop running": SSEStream(api, "/v1/events", query=b"type=noop&state=running", key=api_key),
    }
    for stream in streams.values():
        await stream.__aenter__()

    async def canceled_b() -> None:
        await service.finish(await service.get(b["id"]), State.CANCELED)

    async def succeeded_a() -> None:
        await service.finish(await service.get(a["id"]), State.SUCCEEDED)

    # Each change, and what each stream must show of it. Changes come one at a time: a
    # stream shows a task's state when it reads it, so two quick ones may show as one.
    steps: list[tuple[Any, dict[str, list[tuple[str, str]]]]] = [
        (
            service.claim("w", 10, 30.0),
            {
                "a": [(a["id"], "running")],
                "a+b": [(a["id"], "running"), (b["id"], "running")],
                "echo": [(b["id"], "running")],
                "noop running": [(a["id"], "running"), (c["id"], "running")],
            },
        ),
        (
            service.cancel(b["id"]),
            {"a+b": [(b["id"], "canceling")], "echo": [(b["id"], "canceling")]},
        ),
        (service.cancel(c["id"]), {}),  # canceling: no stream wants that
        (
            canceled_b(),
            {
                "a+b": [(b["id"], "canceled")],
                "echo": [(b["id"], "canceled")],
                "canceled": [(b["id"], "canceled")],
            },
        ),
        (succeeded_a(), {"a": [(a["id"], "succeeded")], "a+b": [(a["id"], "succeeded")]}),
    ]
    try:
        for change, expected in steps:
            await change
            for name, wanted in expected.items():
                assert events_of(await streams[name].take(len(wanted))) == wanted, name
        # a last change only the echo stream wants: once it is there, nothing else came
        last = await submit(client, "echo", {"name": "last"})
        await claim(service, last["id"])
        assert events_of([await streams["echo"].next()]) == [(last["id"], "running")]
        for stream in streams.values():
            assert stream.pending() == []
    finally:
        for stream in streams.values():
            await stream.disconnect()
    assert len(service.feed) == 0


async def test_a_stream_sees_only_its_tenant(
    api: Application, client: httpx.AsyncClient, service: TaskService, keys: KeyService
) -> None:
    acme = (await keys.create(tenant="acme", user="ann", role="write")).token
    zeta = (await keys.create(tenant="zeta", user="zed", role="read")).token
    admin = (await keys.create(tenant="ops", user="root", role="admin")).token
    acme_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {acme}"},
    )
    async with acme_client:
        mine = await submit(acme_client, "noop")
    theirs = await submit(client, "noop")  # tenant default
    async with (
        SSEStream(api, "/v1/events", key=zeta) as zeta_stream,
        SSEStream(api, "/v1/events", key=acme) as acme_stream,
        SSEStream(api, "/v1/events", key=admin) as admin_stream,
    ):
        assert len(await service.claim("w", 10, 30.0)) == 2
        assert events_of([await acme_stream.next()]) == [(mine["id"], "running")]
        seen = {(e.json()["id"], e.json()["state"]) for e in await admin_stream.take(2)}
        assert seen == {(mine["id"], "running"), (theirs["id"], "running")}  # every tenant
        await service.cancel(theirs["id"])
        assert events_of([await admin_stream.next()]) == [(theirs["id"], "canceling")]
        # the last change is in: nothing of another tenant came to acme or zeta
        assert acme_stream.pending() == [] and zeta_stream.pending() == []
    # naming another tenant's task is a 404, as for a task that does not exist
    for task_id in (theirs["id"], UNKNOWN):
        async with SSEStream(
            api, "/v1/events", query=f"task_id={task_id}".encode(), key=acme
        ) as refused:
            await refused.finished()
            assert refused.status == 404 and refused.problem()["status"] == 404
    assert len(service.feed) == 0


async def test_resume_with_last_event_id(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    x = await submit(client, "noop")
    async with SSEStream(api, "/v1/events", key=api_key) as stream:
        running_x = await claim(service, x["id"])
        last = await stream.next()
    assert last.json()["id"] == x["id"]
    y = await submit(client, "noop")
    # while the client is away: y changes, x changes again
    running_y = await claim(service, y["id"])
    await service.report(running_x, Progress(message="later"))
    headers = [(b"last-event-id", (last.id or "").encode())]
    async with SSEStream(api, "/v1/events", headers=headers, key=api_key) as resumed:
        replayed = await resumed.take(2)
        assert [(e.json()["id"], e.json()["version"]) for e in replayed] == [
            (y["id"], running_y.version),
            (x["id"], running_x.version + 1),
        ]
        assert replayed[1].json()["message"] == "later"
        # then live
        await service.finish(running_y, State.SUCCEEDED)
        assert events_of([await resumed.next()]) == [(y["id"], "succeeded")]
    # resuming from the newest event replays nothing new: the named event is not repeated
    headers = [(b"last-event-id", (replayed[1].id or "").encode())]
    async with SSEStream(
        api, "/v1/events", query=f"task_id={x['id']}".encode(), headers=headers, key=api_key
    ) as again:
        await service.append_log(x["id"], [NewLogLine("new")])
        event = await again.next()
        assert event.json()["version"] == running_x.version + 2


async def test_a_replay_starts_a_little_before_the_event(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    """A change stamped before the event the client named (it committed late) comes
    again: the replay starts RESUME_OVERLAP seconds early."""
    x = await submit(client, "noop")
    y = await submit(client, "noop")
    assert len(await service.claim("w", 10, 30.0)) == 2
    later = await service.get(y["id"])
    early = await service.get(x["id"])
    position = int(later.updated_at.timestamp() * 1e6) + 2_000_000  # 2 s after both
    cursor = encode_change_cursor(position, y["id"])
    headers = [(b"last-event-id", cursor.encode())]
    async with SSEStream(api, "/v1/events", headers=headers, key=api_key) as resumed:
        ids = {e.json()["id"] for e in await resumed.take(2)}
        assert ids == {early.id, later.id}


async def test_bad_input_is_a_400(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    task = await submit(client, "noop")
    cursor = encode_change_cursor(1, task["id"])
    bad_ids: list[str | bytes] = [
        "x",
        cursor[:-1],
        cursor + "A",
        cursor.replace(cursor[5], "+" if cursor[5] != "+" else "/"),
        encode_change_cursor(1, "00000000-0000-4000-8000-000000000000"),  # not a task's
        "\u0661" * 32,  # digits, but not ASCII ones
    ]
    for bad in bad_ids:
        raw = bad if isinstance(bad, bytes) else bad.encode()
        async with SSEStream(
            api, "/v1/events", headers=[(b"last-event-id", raw)], key=api_key
        ) as stream:
            await stream.finished()
            doc = stream.problem()
            assert doc["status"] == 400 and doc["header"] == "Last-Event-ID", bad
    for query in ["task_id=nope", "state=nope", "type=", "task_id=", "since=1"]:
        response = await client.get(f"/v1/events?{query}")
        problem(response, 400)
    many = ",".join([UNKNOWN] * 501)
    problem(await client.get(f"/v1/events?task_id={many}"), 400)
    # an empty Last-Event-ID is none at all (EventSource's first connection)
    async with SSEStream(api, "/v1/events", headers=[(b"last-event-id", b"")], key=api_key) as s:
        assert s.status == 200
    assert len(service.feed) == 0


async def test_head_and_keep_alive(
    api: Application,
    client: httpx.AsyncClient,
    service: TaskService,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    response = await client.head("/v1/events")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"].startswith("text/event-stream")
    from taskgate.http import sse

    monkeypatch.setattr(sse, "KEEPALIVE_INTERVAL", 0.01)
    async with SSEStream(api, "/v1/events", key=api_key) as stream:
        comment = await stream.next(comments=True)
        assert comment.data == "keep-alive"
    assert len(service.feed) == 0


async def test_a_stream_that_falls_behind_catches_up_from_the_store(
    api: Application,
    client: httpx.AsyncClient,
    service: TaskService,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed, "WATCH_LIMIT", 2)
    tasks = [await submit(client, "noop") for _ in range(5)]
    async with SSEStream(api, "/v1/events", key=api_key) as stream:
        claimed = await service.claim("w", 10, 30.0)
        assert len(claimed) == 5
        # one notification for all five: more than the stream may hold at once
        await service.connector.notify(CHANNEL_CHANGED, ",".join(t["id"] for t in tasks))
        seen: dict[str, Any] = {}
        while len(seen) < 5:
            data = (await stream.next()).json()
            seen[data["id"]] = data["state"]
        assert seen == {t["id"]: "running" for t in tasks}


async def test_a_change_is_read_once_for_all_streams(
    api: Application,
    client: httpx.AsyncClient,
    service: TaskService,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = await submit(client, "noop")
    reads: list[list[str]] = []
    original = service.get_many

    async def counting(ids: Any) -> Any:
        reads.append(list(ids))
        return await original(ids)

    monkeypatch.setattr(service.feed, "_read", counting)
    query = f"task_id={task['id']}".encode()
    streams = [SSEStream(api, "/v1/events", query=query, key=api_key) for _ in range(20)]
    streams += [SSEStream(api, "/v1/events", key=api_key) for _ in range(5)]
    for stream in streams:
        await stream.__aenter__()
    try:
        await claim(service, task["id"])
        for stream in streams:
            assert (await stream.next()).json()["state"] == "running"
        assert reads == [[task["id"]]]
    finally:
        for stream in streams:
            await stream.disconnect()
