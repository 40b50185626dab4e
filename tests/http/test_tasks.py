"""The task resource: read with ETag, 304 and ?wait, list, log, cancel, delete."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from api_helpers import RETRY_AFTER, claim, finish, follow, problem, submit

from taskgate.model import ErrorInfo, State
from taskgate.service import NewLogLine, Progress, TaskService

TASK_FIELDS = {
    "id", "upid", "type", "object_id", "tenant", "user", "user_id", "node", "worker", "state",
    "detailed_state", "progress", "progress_detail", "message", "params", "result", "error",
    "warnings", "created_resources", "attempt", "max_attempts", "timeout",
    "cancel_requested_at", "cancel_attempts", "priority", "idempotency_key", "request_id",
    "group_id", "parent_id", "schedule_id", "labels", "acknowledged_at", "acknowledged_by",
    "created_at", "scheduled_at", "started_at", "updated_at", "finished_at", "archived",
    "log_count", "children", "reserved_resources",
}  # fmt: skip
UNKNOWN = "01900000-0000-7000-8000-000000000000"


# -- GET /v1/tasks/{id} ----------------------------------------------------------------


async def test_get_task_has_every_field(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "echo", {"name": "n"})
    running = await claim(service, task["id"])
    await service.report(running, Progress(progress=40.0, message="half", detailed_state="x"))
    await service.finish(
        running,
        State.FAILED,
        error=ErrorInfo("ValueError", "bad", "Traceback ..."),
        message="it failed",
    )
    response = await client.get(f"/v1/tasks/{task['id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TASK_FIELDS
    assert body["state"] == "failed"
    assert body["error"] == {"type": "ValueError", "message": "bad", "traceback": "Traceback ..."}
    assert body["worker"] == "worker-1" and body["attempt"] == 1
    assert body["progress"] == 40.0 and body["detailed_state"] == "x"
    for key in ("created_at", "updated_at", "started_at", "finished_at"):
        assert body[key].endswith("Z"), key
        assert datetime.fromisoformat(body[key]).tzinfo is not None
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert "retry-after" not in response.headers  # ended: nothing to poll for


async def test_get_task_etag_and_retry_after(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    response = await client.get(f"/v1/tasks/{task['id']}")
    assert response.json() == task
    assert response.headers["etag"] == f'"{task["id"][-12:]}.1"'
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    head = await client.head(f"/v1/tasks/{task['id']}")  # the GET's headers, no body
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == response.headers["etag"]
    assert head.headers["content-length"] == response.headers["content-length"]


async def test_if_none_match_gives_304_until_the_task_changes(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    url = f"/v1/tasks/{task['id']}"
    etag = (await client.get(url)).headers["etag"]
    for header in [etag, f"W/{etag}", f'"nope", {etag}', "*"]:
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["retry-after"] == str(RETRY_AFTER)
        assert response.headers["x-request-id"]
    await claim(service, task["id"])
    response = await client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response.headers["etag"] != etag


async def test_reads_follow_every_change(client: httpx.AsyncClient, service: TaskService) -> None:
    """Renderings are reused only while the stored version is the same."""
    task = await submit(client, "noop")
    url = f"/v1/tasks/{task['id']}"
    assert (await client.get(url)).json()["state"] == "queued"
    assert (await client.get(url)).json()["state"] == "queued"
    running = await claim(service, task["id"])
    assert (await client.get(url)).json()["state"] == "running"
    await service.append_log(task["id"], [NewLogLine("hello")])
    assert (await client.get(url)).json()["log_count"] == 1
    await service.finish(running, State.SUCCEEDED, result={"ok": True})
    body = (await client.get(url)).json()
    assert (body["state"], body["result"]) == ("succeeded", {"ok": True})
    await service.delete(task["id"])
    problem(await client.get(url), 404, "task-not-found")


async def test_get_task_errors(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"/v1/tasks/{UNKNOWN}"), 404, "task-not-found")
    for bad in ["abc", "1234", "01900000-0000-7000-8000-00000000000g", "%20"]:
        doc = problem(await client.get(f"/v1/tasks/{bad}"), 400, "invalid-id")
        assert "UUID" in doc["detail"]
    problem(await client.get(f"/v1/tasks/{UNKNOWN}?wat=1"), 400)


async def test_another_tenants_task_is_not_found(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    theirs = await service.submit("noop", {}, tenant="other")
    problem(await client.get(f"/v1/tasks/{theirs.id}"), 404)
    problem(await client.get(f"/v1/tasks/{theirs.id}?wait=0.01"), 404)
    problem(await client.get(f"/v1/tasks/{theirs.id}/log"), 404)
    problem(await client.post(f"/v1/tasks/{theirs.id}/cancel"), 404)
    problem(await client.delete(f"/v1/tasks/{theirs.id}"), 404)
    assert (await client.get("/v1/tasks")).json()["items"] == []


# -- ?wait -------------------------------------------------------------------------------


async def test_wait_returns_when_another_coroutine_finishes_the_task(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")

    async def worker() -> None:
        await asyncio.sleep(0.05)
        running = await claim(service, task["id"])
        await asyncio.sleep(0.05)
        await service.finish(running, State.SUCCEEDED, result=7)

    # each answer comes with a change: running (claimed), then succeeded
    seen, _ = await asyncio.gather(follow(client, task["id"]), worker())
    assert seen[-1] == "succeeded" and set(seen) <= {"queued", "running", "succeeded"}
    assert (await client.get(f"/v1/tasks/{task['id']}")).json()["result"] == 7


async def test_wait_answers_at_the_first_change(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")

    async def worker() -> None:
        await asyncio.sleep(0.05)
        await claim(service, task["id"])

    response, _ = await asyncio.gather(
        client.get(f"/v1/tasks/{task['id']}", params={"wait": "5"}), worker()
    )
    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response.headers["etag"] != f'"{task["id"][-12:]}.1"'


async def test_wait_until_ended_skips_the_changes_before_the_end(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")

    async def worker() -> None:
        await asyncio.sleep(0.05)
        running = await claim(service, task["id"])
        await service.report(running, Progress(progress=50.0, message="half way"))
        await asyncio.sleep(0.05)
        await service.finish(running, State.SUCCEEDED, result=7)

    response, _ = await asyncio.gather(
        client.get(f"/v1/tasks/{task['id']}", params={"wait": "5", "until": "ended"}),
        worker(),
    )
    assert response.status_code == 200
    assert response.json()["state"] == "succeeded"
    assert response.json()["result"] == 7


async def test_wait_until_ended_times_out_with_the_task_as_it_is(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    await claim(service, task["id"])
    response = await client.get(f"/v1/tasks/{task['id']}", params={"wait": "0.2", "until": "ended"})
    assert response.status_code == 200
    assert response.json()["state"] == "running"


@pytest.mark.parametrize("query", [{"until": "ended"}, {"wait": "1", "until": "soon"}])
async def test_bad_until_is_400(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    task = await submit(client, "noop")
    response = await client.get(f"/v1/tasks/{task['id']}", params=query)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["parameter"] == "until"


async def test_wait_past_the_if_none_match_version(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    url = f"/v1/tasks/{task['id']}"
    first = (await client.get(url)).headers["etag"]
    await claim(service, task["id"])  # changed since the client's ETag: answers at once
    response = await client.get(url, params={"wait": "5"}, headers={"If-None-Match": first})
    assert response.status_code == 200 and response.json()["state"] == "running"
    second = response.headers["etag"]

    async def progress() -> None:
        await asyncio.sleep(0.05)
        running = await service.get(task["id"])
        await service.report(running, Progress(progress=50.0))

    response, _ = await asyncio.gather(
        client.get(url, params={"wait": "5"}, headers={"If-None-Match": second}), progress()
    )
    assert response.status_code == 200
    assert response.json()["progress"] == 50.0


async def test_wait_that_sees_no_change(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    url = f"/v1/tasks/{task['id']}"
    etag = (await client.get(url)).headers["etag"]
    response = await client.get(url, params={"wait": "0.05"}, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["etag"] == etag
    response = await client.get(url, params={"wait": "0.05"})
    assert response.status_code == 200 and response.json()["state"] == "queued"


async def test_wait_on_an_ended_task_answers_at_once(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    task = await submit(client, "noop")
    await finish(service, task["id"])
    # nothing more can happen to it: the answer is the ended task
    response = await client.get(f"/v1/tasks/{task['id']}", params={"wait": "5"})
    assert response.status_code == 200 and response.json()["state"] == "succeeded"


@pytest.mark.parametrize("value", ["0", "-1", "abc", "5.01", "nan", "inf", "1e999", ""])
async def test_bad_wait_values_are_400(client: httpx.AsyncClient, value: str) -> None:
    task = await submit(client, "noop")
    doc = problem(await client.get(f"/v1/tasks/{task['id']}", params={"wait": value}), 400)
    assert "wait" in doc["detail"]


async def test_wait_given_twice_is_400(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    problem(await client.get(f"/v1/tasks/{task['id']}?wait=1&wait=2"), 400)


# -- GET /v1/tasks -----------------------------------------------------------------------


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/tasks", params=params)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


async def test_list_filters(client: httpx.AsyncClient, service: TaskService) -> None:
    d = await submit(client, "add", {"a": 1, "b": 2})
    await finish(service, d["id"])  # (the worker claims every due task: this one first)
    a = await submit(client, "echo", {"name": "vm-1"}, label="team=a")
    b = await submit(client, "echo", {"name": "vm-2"}, label=["team=b", "env=prod"])
    c = await submit(client, "noop", label="team=a")
    everything = [c["id"], b["id"], a["id"], d["id"]]  # newest first
    assert await _ids(client) == everything
    assert await _ids(client, state="succeeded") == [d["id"]]
    assert await _ids(client, state="queued") == [c["id"], b["id"], a["id"]]
    assert await _ids(client, state=["queued", "succeeded"]) == everything
    assert await _ids(client, state="succeeded,queued") == everything
    assert await _ids(client, state="running") == []
    assert await _ids(client, type="echo") == [b["id"], a["id"]]
    assert await _ids(client, type=["noop", "add"]) == [c["id"], d["id"]]
    assert await _ids(client, type="noop,add") == [c["id"], d["id"]]
    assert await _ids(client, object_id="vm-2") == [b["id"]]
    assert await _ids(client, label="team=a") == [c["id"], a["id"]]
    assert await _ids(client, label=["team=b", "env=prod"]) == [b["id"]]
    assert await _ids(client, label=["team=a", "env=prod"]) == []
    assert await _ids(client, type="echo", label="team=a") == [a["id"]]


async def test_list_since_and_until(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    created = datetime.fromisoformat(task["created_at"])
    before = (created - timedelta(seconds=5)).isoformat()
    after = (created + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert await _ids(client, since=before) == [task["id"]]
    assert await _ids(client, since=after) == []
    assert await _ids(client, until=after) == [task["id"]]
    assert await _ids(client, until=before) == []
    assert await _ids(client, since=before, until=after) == [task["id"]]
    # another zone is the same instant
    plus2 = (created + timedelta(seconds=5)).astimezone(timezone_plus(2)).isoformat()
    assert await _ids(client, until=plus2) == [task["id"]]


def timezone_plus(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


async def test_pagination_through_several_pages(client: httpx.AsyncClient) -> None:
    submitted = [(await submit(client, "noop"))["id"] for _ in range(7)]
    expected = list(reversed(submitted))
    seen: list[str] = []
    response = await client.get("/v1/tasks", params={"limit": 3, "type": "noop"})
    pages = 0
    while True:
        assert response.status_code == 200
        page = response.json()
        seen.extend(t["id"] for t in page["items"])
        pages += 1
        if page["next_cursor"] is None:
            assert "link" not in response.headers
            break
        assert len(page["items"]) == 3
        link = response.headers["link"]
        assert link.startswith("</v1/tasks?") and link.endswith('>; rel="next"')
        next_url = link[1 : link.index(">")]
        assert "type=noop" in next_url and "limit=3" in next_url  # filters are kept
        # the cursor alone gives the same page as the Link
        by_cursor = await client.get(
            "/v1/tasks", params={"limit": 3, "type": "noop", "cursor": page["next_cursor"]}
        )
        response = await client.get(next_url)
        assert response.json() == by_cursor.json()
    assert pages == 3
    assert seen == expected


async def test_limit_default_and_bounds(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await submit(client, "noop")
    assert len(await _ids(client, limit=1)) == 1
    assert len(await _ids(client, limit=500)) == 3
    body = (await client.get("/v1/tasks")).json()
    assert len(body["items"]) == 3 and body["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"state": "bogus"}, "state"),
        ({"state": "queued,"}, "state"),
        ({"state": ""}, "state"),
        ({"type": ""}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"since": "2025-01-01T00:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-01-01"}, "until"),
        ({"label": "novalue"}, "label"),
        ({"label": "=x"}, "label"),
        ({"cursor": "!!notacursor!!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"object_id": ["a", "b"]}, "object_id"),
        ({"status": "queued"}, "status"),
    ],
)
async def test_bad_list_filters_are_400(
    client: httpx.AsyncClient, params: dict[str, Any], name: str
) -> None:
    doc = problem(await client.get("/v1/tasks", params=params), 400)
    assert name in doc["detail"]


async def test_unknown_state_lists_the_valid_ones(client: httpx.AsyncClient) -> None:
    doc = problem(await client.get("/v1/tasks?state=done"), 400, "invalid-query-parameter")
    for state in State:
        assert state.value in doc["detail"]


async def test_bad_label_key_filter_is_400(client: httpx.AsyncClient) -> None:
    problem(await client.get("/v1/tasks", params={"label": "a b=c"}), 400)


# -- GET /v1/tasks/{id}/log ------------------------------------------------------------


async def test_log_pages(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "noop")
    await claim(service, task["id"])
    lines = [NewLogLine(f"line {i}", "warning" if i == 3 else "info") for i in range(1, 8)]
    await service.append_log(task["id"], lines)
    response = await client.get(f"/v1/tasks/{task['id']}/log")
    assert response.status_code == 200
    body = response.json()
    assert (body["task_id"], body["start"], body["total"]) == (task["id"], 0, 7)
    assert [ln["n"] for ln in body["lines"]] == list(range(1, 8))
    assert body["lines"][2] == {
        "n": 3,
        "t": "line 3",
        "ts": body["lines"][2]["ts"],
        "level": "warning",
    }
    assert body["lines"][0]["ts"].endswith("Z")
    body = (await client.get(f"/v1/tasks/{task['id']}/log?start=2&limit=3")).json()
    assert [ln["n"] for ln in body["lines"]] == [3, 4, 5]
    assert [ln["t"] for ln in body["lines"]] == ["line 3", "line 4", "line 5"]
    assert (body["start"], body["total"]) == (2, 7)
    body = (await client.get(f"/v1/tasks/{task['id']}/log?start=7")).json()
    assert body["lines"] == [] and body["total"] == 7


async def test_log_errors(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    problem(await client.get(f"/v1/tasks/{UNKNOWN}/log"), 404)
    problem(await client.get("/v1/tasks/nope/log"), 400, "invalid-id")
    for query in ["start=-1", "start=x", "limit=0", "limit=5001", "limit=", "follow=maybe"]:
        problem(await client.get(f"/v1/tasks/{task['id']}/log?{query}"), 400)


# -- cancel and delete --------------------------------------------------------------------


async def test_cancel_a_queued_task(client: httpx.AsyncClient) -> None:
    task = await submit(client, "noop")
    response = await client.post(f"/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "canceled" and body["cancel_requested_at"].endswith("Z")
    assert response.headers["etag"] == f'"{task["id"][-12:]}.{2}"'
    assert "retry-after" not in response.headers
    assert (await client.get(f"/v1/tasks/{task['id']}")).json()["state"] == "canceled"


async def test_cancel_a_running_task(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "noop")
    await claim(service, task["id"])
    response = await client.post(f"/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "canceling"
    assert response.headers["retry-after"] == str(RETRY_AFTER)


async def test_cancel_an_ended_task_is_409(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "noop")
    await finish(service, task["id"])
    doc = problem(await client.post(f"/v1/tasks/{task['id']}/cancel"), 409, "conflict")
    assert "succeeded" in doc["detail"]
    problem(await client.post(f"/v1/tasks/{UNKNOWN}/cancel"), 404)
    problem(await client.post("/v1/tasks/x/cancel"), 400, "invalid-id")


async def test_delete(client: httpx.AsyncClient, service: TaskService) -> None:
    task = await submit(client, "noop")
    doc = problem(await client.delete(f"/v1/tasks/{task['id']}"), 409, "conflict")
    assert "queued" in doc["detail"]
    await claim(service, task["id"])
    problem(await client.delete(f"/v1/tasks/{task['id']}"), 409)
    await service.finish(await service.get(task["id"]), State.SUCCEEDED)
    response = await client.delete(f"/v1/tasks/{task['id']}")
    assert response.status_code == 204 and response.content == b""
    assert "content-length" not in response.headers or response.headers["content-length"] == "0"
    problem(await client.get(f"/v1/tasks/{task['id']}"), 404)
    problem(await client.delete(f"/v1/tasks/{task['id']}"), 404)
    problem(await client.delete("/v1/tasks/x"), 400)
