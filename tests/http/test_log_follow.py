"""GET /v1/tasks/{id}/log?follow=true: a log as Server-Sent Events, to the end."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from api_helpers import claim, problem, submit
from sse_client import SSEStream

from taskgate.auth import KeyService
from taskgate.http import Application, sse
from taskgate.model import State
from taskgate.service import NewLogLine, TaskService

UNKNOWN = "01900000-0000-7000-8000-000000000000"


def path(task_id: str) -> str:
    return f"/v1/tasks/{task_id}/log"


async def test_follow_a_log_to_the_end(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    task = await claim(service, (await submit(client, "noop"))["id"])
    await service.append_log(task.id, [NewLogLine("one"), NewLogLine("two", "warning")])
    async with SSEStream(api, path(task.id), query=b"follow=true", key=api_key) as stream:
        assert stream.status == 200
        assert stream.headers[b"content-type"].startswith(b"text/event-stream")
        assert stream.headers[b"cache-control"] == b"no-store"
        first, second = await stream.take(2)
        assert (first.kind, first.id) == ("line", "1")
        assert first.json()["t"] == "one" and first.json()["n"] == 1
        assert first.json()["ts"].endswith("Z")
        assert (second.id, second.json()["level"]) == ("2", "warning")
        # new lines arrive as the task writes them
        await service.append_log(task.id, [NewLogLine("three")])
        third = await stream.next()
        assert (third.id, third.json()["t"]) == ("3", "three")
        await service.append_log(task.id, [NewLogLine("four")])
        await service.finish(task, State.SUCCEEDED, result={"ok": True})
        fourth, end = await stream.take(2)
        assert fourth.json()["t"] == "four"
        assert end.kind == "end" and end.id is None
        body = end.json()
        assert body["id"] == task.id and body["state"] == "succeeded"
        assert body["result"] == {"ok": True} and body["log_count"] == 4
        await stream.finished()  # the server closed the stream
    assert len(service.feed) == 0


async def test_an_ended_task_streams_its_lines_then_ends(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await claim(service, (await submit(client, "noop"))["id"])
    await service.append_log(task.id, [NewLogLine(f"line {i}") for i in range(1, 6)])
    await service.finish(task, State.FAILED)
    response = await client.get(path(task.id), params={"follow": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert text.startswith("retry: ")
    assert [line for line in text.splitlines() if line.startswith("id:")] == [
        f"id: {n}" for n in range(1, 6)
    ]
    assert text.count("event: line") == 5 and text.count("event: end") == 1
    assert text.endswith("\n\n") and '"state":"failed"' in text


async def test_resume_after_a_line(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    task = await claim(service, (await submit(client, "noop"))["id"])
    await service.append_log(task.id, [NewLogLine(f"l{i}") for i in range(1, 6)])
    cases = [
        ([(b"last-event-id", b"3")], b"follow=true"),
        ([], b"follow=true&start=3"),
        ([(b"last-event-id", b"3")], b"follow=true&start=1"),  # the header wins
    ]
    for headers, query in cases:
        async with SSEStream(api, path(task.id), query=query, headers=headers, key=api_key) as s:
            assert [e.id for e in await s.take(2)] == ["4", "5"]
    # past the end of an ended log: only the end
    await service.finish(task, State.SUCCEEDED)
    response = await client.get(
        path(task.id), params={"follow": "true"}, headers={"Last-Event-ID": "99"}
    )
    assert response.text.count("event: line") == 0 and "event: end" in response.text


async def test_follow_refuses_bad_input(
    api: Application, client: httpx.AsyncClient, service: TaskService, keys: KeyService
) -> None:
    task = await submit(client, "noop")
    for bad in ["x", "-1", "1.5", "9007199254740993", "٣".encode(), b"\xff"]:
        response = await client.get(
            path(task["id"]), params={"follow": "true"}, headers={"Last-Event-ID": bad}
        )
        doc = problem(response, 400, "invalid-header")
        assert doc["header"] == "Last-Event-ID"
    problem(await client.get(path(task["id"]), params={"follow": "yes"}), 400)
    doc = problem(await client.get(path(task["id"]), params={"follow": "true", "limit": 5}), 400)
    assert doc["parameter"] == "limit"
    problem(await client.get(path(task["id"]), params={"follow": "true", "start": -1}), 400)
    problem(await client.get(path(UNKNOWN), params={"follow": "true"}), 404)
    problem(await client.get(path("nope"), params={"follow": "true"}), 400, "invalid-id")
    other = await keys.create(tenant="elsewhere", user="eve", role="read")
    response = await client.get(
        path(task["id"]),
        params={"follow": "true"},
        headers={"Authorization": f"Bearer {other.token}"},
    )
    problem(response, 404, "task-not-found")  # another tenant's task does not exist
    assert len(service.feed) == 0  # refused streams left nothing subscribed


async def test_follow_false_is_the_plain_page(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    response = await client.get(path(task["id"]), params={"follow": "false"})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["lines"] == []


async def test_keep_alive_comments(
    api: Application,
    client: httpx.AsyncClient,
    service: TaskService,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_INTERVAL", 0.01)
    task = await submit(client, "noop")
    async with SSEStream(api, path(task["id"]), query=b"follow=true", key=api_key) as stream:
        comment = await stream.next(comments=True)
        assert (comment.kind, comment.data) == ("comment", "keep-alive")
        # quiet streams re-read the task, so they still end when it does
        await service.cancel(task["id"])
        end = await stream.next()
        assert end.kind == "end" and end.json()["state"] == "canceled"


async def test_a_client_that_leaves_ends_the_stream(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    task = await submit(client, "noop")
    stream = SSEStream(api, path(task["id"]), query=b"follow=true", key=api_key)
    async with stream:
        assert service.feed.watching(task["id"]) == 1
    # disconnect() returned: the app finished the request without waiting for a change
    assert service.feed.watching(task["id"]) == 0
    assert not stream.complete  # nobody to send the end to


async def test_head_sends_the_stream_headers_only(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    response = await client.head(path(task["id"]), params={"follow": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""
    assert len(service.feed) == 0


async def test_closing_the_service_ends_the_stream(
    api: Application, client: httpx.AsyncClient, service: TaskService, api_key: str
) -> None:
    task = await submit(client, "noop")
    async with SSEStream(api, path(task["id"]), query=b"follow=true", key=api_key) as stream:
        await asyncio.sleep(0)
        await service.feed.close()
        await stream.finished()
        service.feed.open()
