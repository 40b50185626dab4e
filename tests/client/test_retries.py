"""Retries, long polls and problem documents, on `httpx.MockTransport`: what the SDK
sends, how often, and what it waits in between (the sleeps are recorded, not slept)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest

from taskgate.client import (
    APIError,
    AsyncClient,
    Client,
    ConnectionFailed,
    Forbidden,
    GroupWaitTimeout,
    InvalidResponse,
    NotFound,
    RequestTimeout,
    Retry,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnprocessableEntity,
    WaitTimeout,
    _async_client,
    _client,
)
from taskgate.client._retry import parse_retry_after

BASE = "http://mock.test"
TASK = {"id": "01a2064e-d1f6-7171-8b27-b4ec45249ab8", "type": "add", "state": "queued"}
RETRY = Retry(attempts=4, backoff=0.5, max_backoff=4.0, max_retry_after=30.0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the clients would have slept."""
    slept: list[float] = []

    async def async_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(_client, "_sleep", slept.append)
    monkeypatch.setattr(_async_client, "_sleep", async_sleep)
    return slept


class Script:
    """A mock server answering from a list (one answer per request), recording requests.
    An answer is a response, an exception to raise, or a callable of the request."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            result: httpx.Response = answer(request)
            return result
        assert isinstance(answer, httpx.Response)
        return answer

    def client(self, retry: Retry = RETRY) -> Client:
        return Client(BASE, transport=httpx.MockTransport(self), retry=retry)

    def async_client(self, retry: Retry = RETRY) -> AsyncClient:
        return AsyncClient(BASE, transport=httpx.MockTransport(self), retry=retry)


def task(status: int = 200, **fields: Any) -> httpx.Response:
    return httpx.Response(status, json={**TASK, **fields}, headers={"etag": '"ab.1"'})


def problem(status: int, headers: dict[str, str] | None = None, **doc: Any) -> httpx.Response:
    body = {
        "type": f"tag:taskgate.dev,2025:problems/s{status}",
        "title": f"Title {status}",
        "status": status,
        "detail": f"detail {status}",
        "instance": "/v1/x",
        "request_id": "req-1",
        **doc,
    }
    return httpx.Response(
        status,
        content=orjson.dumps(body),
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


def unavailable(retry_after: str | None = None) -> httpx.Response:
    return problem(503, {"retry-after": retry_after} if retry_after is not None else {})


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


def dropped() -> httpx.ReadError:
    return httpx.ReadError("connection reset by peer")


# -- what is retried -------------------------------------------------------------------


def test_503_retry_after_seconds_is_honoured(sleeps: list[float]) -> None:
    script = Script(unavailable("2"), unavailable("1"), task())
    with script.client() as client:
        assert client.get(TASK["id"]).id == TASK["id"]
    assert len(script.requests) == 3
    assert 2 <= sleeps[0] <= 2.2 and 1 <= sleeps[1] <= 1.1


def test_503_retry_after_http_date_is_honoured(sleeps: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    script = Script(unavailable(when), task())
    with script.client() as client:
        client.get(TASK["id"])
    assert 17 <= sleeps[0] <= 22


def test_503_without_retry_after_backs_off_exponentially(sleeps: list[float]) -> None:
    script = Script(unavailable(), unavailable(), unavailable(), task())
    with script.client() as client:
        client.get(TASK["id"])
    # backoff 0.5 doubling, each in the upper half of its ceiling
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0


def test_the_number_of_retries_is_bounded(sleeps: list[float]) -> None:
    script = Script(*(unavailable("1") for _ in range(4)))
    with script.client() as client, pytest.raises(ServiceUnavailable) as caught:
        client.get(TASK["id"])
    assert len(script.requests) == RETRY.attempts == 4 and len(sleeps) == 3
    assert caught.value.retry_after == 1 and caught.value.status == 503


def test_a_retry_after_beyond_the_maximum_is_not_waited(sleeps: list[float]) -> None:
    script = Script(unavailable("3600"))
    with script.client() as client, pytest.raises(ServiceUnavailable) as caught:
        client.get(TASK["id"])
    assert len(script.requests) == 1 and sleeps == []
    assert caught.value.retry_after == 3600


@pytest.mark.parametrize("error", [refused(), dropped(), httpx.ReadTimeout("slow")])
def test_a_get_is_retried_after_a_transport_error(error: Exception, sleeps: list[float]) -> None:
    script = Script(error, task())
    with script.client() as client:
        client.get(TASK["id"])
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_transport_errors_become_sdk_errors(sleeps: list[float]) -> None:
    script = Script(*(refused() for _ in range(4)))
    with script.client() as client, pytest.raises(ConnectionFailed) as caught:
        client.get(TASK["id"])
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "connection refused" in str(caught.value)
    script = Script(*(httpx.ReadTimeout("slow") for _ in range(4)))
    with script.client() as client, pytest.raises(RequestTimeout):
        client.get(TASK["id"])


def test_no_retries_when_told(sleeps: list[float]) -> None:
    script = Script(unavailable("1"))
    with script.client(Retry(attempts=1)) as client, pytest.raises(ServiceUnavailable):
        client.get(TASK["id"])
    assert len(script.requests) == 1 and sleeps == []


def test_other_errors_are_not_retried(sleeps: list[float]) -> None:
    script = Script(problem(500), problem(404))
    with script.client() as client:
        with pytest.raises(ServerError):
            client.get(TASK["id"])
        with pytest.raises(NotFound):
            client.get(TASK["id"])
    assert len(script.requests) == 2 and sleeps == []


# -- submits and other POSTs -----------------------------------------------------------


def test_a_submit_is_retried_with_the_same_idempotency_key(sleeps: list[float]) -> None:
    script = Script(dropped(), unavailable("1"), task(202))
    with script.client() as client:
        client.submit("add", {"a": 1}, b=2, priority=5)
    assert len(script.requests) == 3
    keys = {r.headers["idempotency-key"] for r in script.requests}
    assert len(keys) == 1 and next(iter(keys))  # one key, made up by the SDK, sent each time
    assert {r.content for r in script.requests} == {b'{"b":2,"a":1}'}
    assert {str(r.url) for r in script.requests} == {f"{BASE}/v1/operations/add?priority=5"}


def test_each_submit_has_its_own_key_unless_given(sleeps: list[float]) -> None:
    script = Script(task(202), task(202), task(202))
    with script.client() as client:
        client.submit("add", a=1)
        client.submit("add", a=1)
        client.submit("add", a=1, idempotency_key="order-42")
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert len(set(keys)) == 3 and keys[2] == "order-42"


@pytest.mark.parametrize("answer", [dropped(), unavailable("1"), httpx.ReadTimeout("slow")])
def test_a_post_without_idempotency_key_is_never_retried(answer: Any, sleeps: list[float]) -> None:
    """It may have reached the server: cancel is not sent twice."""
    script = Script(answer, task())
    with script.client() as client, pytest.raises((ConnectionFailed, RequestTimeout, APIError)):
        client.cancel(TASK["id"])
    assert len(script.requests) == 1 and sleeps == []


def test_a_post_whose_connection_never_opened_is_sent(sleeps: list[float]) -> None:
    """A refused connection carried nothing: sending then is not a repetition."""
    script = Script(refused(), task(state="canceled"))
    with script.client() as client:
        assert client.cancel(TASK["id"]).state == "canceled"
    assert len(script.requests) == 2


async def test_async_submit_retries_with_the_same_key(sleeps: list[float]) -> None:
    script = Script(dropped(), unavailable("2"), task(202))
    async with script.async_client() as client:
        await client.submit("add", a=1)
    assert len({r.headers["idempotency-key"] for r in script.requests}) == 1
    assert len(script.requests) == 3 and 2 <= sleeps[1] <= 2.2


async def test_async_post_without_key_is_not_retried(sleeps: list[float]) -> None:
    script = Script(dropped())
    async with script.async_client() as client:
        with pytest.raises(ConnectionFailed):
            await client.acknowledge(TASK["id"])
    assert len(script.requests) == 1


# -- long polls ------------------------------------------------------------------------


def etagged(state: str, version: int, **fields: Any) -> httpx.Response:
    return httpx.Response(
        200, json={**TASK, "state": state, **fields}, headers={"etag": f'"ab.{version}"'}
    )


def held(request: httpx.Request) -> httpx.Response:
    """A server holding a long poll as long as asked, then: unchanged."""
    time.sleep(float(request.url.params["wait"]))
    return httpx.Response(304, headers={"etag": '"ab.2"'})


def test_wait_long_polls_with_the_last_etag(sleeps: list[float]) -> None:
    script = Script(
        etagged("running", 2),
        held,
        etagged("running", 3, progress=50),
        etagged("succeeded", 4, result=3),
    )
    with script.client() as client:
        client.long_poll = 0.05
        assert client.wait(TASK["id"]).result == 3
    assert [r.url.params.get("wait") for r in script.requests] == ["0.050"] * 4
    # only the end matters to wait(): the server skips the changes before it
    assert {r.url.params.get("until") for r in script.requests} == {"ended"}
    assert [r.headers.get("if-none-match") for r in script.requests] == [
        None,
        '"ab.2"',
        '"ab.2"',
        '"ab.3"',
    ]
    assert sleeps == []  # the server waits; the client never sleeps between polls


def test_watch_asks_for_every_change(sleeps: list[float]) -> None:
    script = Script(etagged("running", 2), etagged("succeeded", 3, result=1))
    with script.client() as client:
        seen = [t.state for t in client.watch(TASK["id"])]
    assert seen == ["running", "succeeded"]
    assert all("until" not in r.url.params for r in script.requests)


def test_a_server_that_does_not_hold_the_poll_is_not_hammered(sleeps: list[float]) -> None:
    """An answer "unchanged" long before the time asked (a server or proxy ignoring
    ?wait): the client waits Retry-After (else 1 s) before polling again."""
    quick = httpx.Response(304, headers={"etag": '"ab.2"', "retry-after": "3"})
    same = etagged("running", 2)
    script = Script(etagged("running", 2), quick, same, etagged("succeeded", 3))
    with script.client() as client:
        client.wait(TASK["id"])
    assert sleeps == [3.0, 1.0]


def test_the_last_poll_asks_only_for_what_is_left(sleeps: list[float]) -> None:
    script = Script(held, etagged("running", 2))
    with script.client() as client:
        client.long_poll = 1000.0
        with pytest.raises(WaitTimeout, match=r"still running after waiting 0\.2 s") as caught:
            client.wait(TASK["id"], timeout=0.2)
    assert caught.value.task.state == "running"
    assert 0 < float(script.requests[0].url.params["wait"]) <= 0.2
    # the time is up: one plain read, so that the error can show the task as it is
    assert "wait" not in script.requests[1].url.params and len(script.requests) == 2


@pytest.mark.parametrize(("extra", "then"), [({"maximum": 7}, "7.000"), ({}, "5.000")])
def test_a_server_with_a_shorter_maximum_wait(
    extra: dict[str, Any], then: str, sleeps: list[float]
) -> None:
    """The 400 names the maximum (or, from an older server, only says it)."""
    too_long = problem(
        400,
        type="tag:taskgate.dev,2025:problems/invalid-query-parameter",
        detail="query parameter 'wait': must be more than 0 and at most 5 seconds",
        parameter="wait",
        **extra,
    )
    script = Script(too_long, etagged("succeeded", 2))
    with script.client() as client:
        client.wait(TASK["id"])
    assert [r.url.params["wait"] for r in script.requests] == ["30.000", then]


def test_watch_yields_each_change_then_stops(sleeps: list[float]) -> None:
    script = Script(
        etagged("queued", 1),
        etagged("running", 2),
        httpx.Response(304, headers={"etag": '"ab.2"'}),
        etagged("failed", 3, error={"type": "E", "message": "m"}),
    )
    with script.client() as client:
        states = [t.state for t in client.watch(TASK["id"])]
    assert states == ["queued", "running", "failed"]
    assert "wait" not in script.requests[0].url.params  # the task now, at once


# -- groups ----------------------------------------------------------------------------

GROUP = "01a20766-f93b-701c-9069-1f52aa0e4659"


def summary(**states: int) -> httpx.Response:
    ended = not set(states) - {"succeeded", "failed", "canceled", "timed_out"}
    doc = {"id": GROUP, "total": sum(states.values()), "ended": ended, "states": states}
    return httpx.Response(200, json=doc)


def test_wait_group_spaces_its_reads_and_retries_a_503(sleeps: list[float]) -> None:
    script = Script(
        summary(queued=2),
        summary(queued=2),
        summary(running=1, succeeded=1),
        unavailable("0"),
        summary(succeeded=1, failed=1),
    )
    with script.client() as client:
        done = client.wait_group(GROUP, poll=1.0)
    assert done.ended and done.finished == 2 and done.count("failed") == 1
    assert len(script.requests) == 5
    assert {r.url.path for r in script.requests} == {f"/v1/groups/{GROUP}"}
    pauses, retried = sleeps[:3], sleeps[3:]
    assert 0.05 <= pauses[0] <= 0.1 and 0.1 <= pauses[1] <= 0.2 and 0.2 <= pauses[2] <= 0.4
    assert retried == [0.0]  # the 503's Retry-After: 0; no pause after the last read


async def test_wait_group_reads_at_most_poll_apart(sleeps: list[float]) -> None:
    script = Script(*[summary(running=1)] * 10, summary(succeeded=1))
    async with script.async_client() as client:
        seen = [g async for g in client.watch_group(GROUP, poll=0.5)]
    assert [g.count("running") for g in seen] == [1, 0]  # each change once
    assert len(sleeps) == 10 and max(sleeps) <= 0.5 and min(sleeps[4:]) >= 0.25


def test_wait_group_timeout_stops_at_the_deadline(sleeps: list[float]) -> None:
    script = Script(summary(queued=1))
    with script.client() as client, pytest.raises(GroupWaitTimeout) as caught:
        client.wait_group(GROUP, timeout=0)
    assert caught.value.group.count("queued") == 1 and len(script.requests) == 1


@pytest.mark.parametrize("answer", [dropped(), unavailable("1")])
def test_a_group_submit_is_not_sent_twice(answer: Any, sleeps: list[float]) -> None:
    """The API takes no idempotency key for a group: once it may have reached the
    server, it is not sent again (two groups would be made)."""
    script = Script(answer)
    with script.client() as client, pytest.raises((ConnectionFailed, APIError)):
        client.submit_group([{"type": "noop"}])
    assert len(script.requests) == 1 and sleeps == []


def test_a_group_submit_whose_connection_never_opened_is_sent(sleeps: list[float]) -> None:
    created = {"id": GROUP, "tasks": [TASK], "group": f"/v1/groups/{GROUP}"}
    script = Script(refused(), httpx.Response(202, json=created))
    with script.client() as client:
        assert client.submit_group([{"type": "add"}]).tasks[0].id == TASK["id"]
    assert len(script.requests) == 2


# -- problems --------------------------------------------------------------------------


def test_a_problem_document_is_carried_by_the_error(sleeps: list[float]) -> None:
    doc = problem(
        422,
        errors=[{"field": "a", "message": "must be an integer"}, {"field": "", "message": "x"}],
        operation="add",
    )
    script = Script(doc)
    with script.client() as client, pytest.raises(UnprocessableEntity) as caught:
        client.submit("add", a="x")
    err = caught.value
    assert err.status == 422 and err.title == "Title 422" and err.detail == "detail 422"
    assert err.type.endswith("/s422") and err.problem.slug == "s422"
    assert err.request_id == "req-1" and err.problem.instance == "/v1/x"
    assert [(e.field, e.message) for e in err.errors] == [("a", "must be an integer"), ("", "x")]
    assert err.problem.extensions == {"operation": "add"}
    assert "422 Title 422: detail 422 (request req-1)" in str(err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, Unauthorized), (403, Forbidden), (404, NotFound), (405, APIError), (502, ServerError)],
)
def test_each_status_has_its_class(status: int, cls: type[APIError], sleeps: list[float]) -> None:
    script = Script(problem(status))
    with script.client() as client, pytest.raises(cls) as caught:
        client.get(TASK["id"])
    assert type(caught.value) is cls and caught.value.status == status


def test_an_error_that_is_not_problem_json(sleeps: list[float]) -> None:
    page = httpx.Response(
        502,
        text="<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers={"x-request-id": "p"},
    )
    script = Script(page)
    with script.client() as client, pytest.raises(ServerError) as caught:
        client.get(TASK["id"])
    assert caught.value.status == 502 and caught.value.title == "Bad Gateway"
    assert "502 Bad Gateway" in caught.value.detail and caught.value.request_id == "p"


def test_a_success_that_is_not_json(sleeps: list[float]) -> None:
    script = Script(httpx.Response(200, text="hello"), httpx.Response(200, json={"id": 1}))
    with script.client() as client:
        with pytest.raises(InvalidResponse, match="not JSON"):
            client.get(TASK["id"])
        with pytest.raises(InvalidResponse):
            client.get(TASK["id"])


# -- what goes out -----------------------------------------------------------------------


def test_headers_url_and_options(sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGATE_API_KEY", "tgk_0123456789ab_secret")
    script = Script(task(202))
    with Client(f"{BASE}/v1/", transport=httpx.MockTransport(script)) as client:
        client.submit(
            "create.volume",
            {"type": "explicit wins"},
            type="keyword",
            labels={"env": "prod", "team": "a=b"},
            delay=timedelta(minutes=1),
            timeout=30,
            max_attempts=2,
            object_id=100,
        )
    (request,) = script.requests
    assert request.headers["authorization"] == "Bearer tgk_0123456789ab_secret"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("taskgate-client/")
    assert request.url.path == "/v1/operations/create.volume"
    assert request.url.params.multi_items() == [
        ("object_id", "100"),
        ("label", "env=prod"),
        ("label", "team=a=b"),
        ("delay", "60.0"),
        ("timeout", "30.0"),
        ("max_attempts", "2"),
    ]
    assert orjson.loads(request.content) == {"type": "explicit wins"}


def test_the_group_and_resource_options_of_a_submit(sleeps: list[float]) -> None:
    script = Script(task(202), task(202))
    with script.client() as client:
        client.submit(
            "add",
            group_id="nightly",
            exclusive_resources=("repository:1", "repository:2"),
            shared_resources="remote:9",
        )
        client.submit("add", exclusive_resources=[], shared_resources=None)
    assert script.requests[0].url.params.multi_items() == [
        ("group_id", "nightly"),
        ("exclusive_resource", "repository:1"),
        ("exclusive_resource", "repository:2"),
        ("shared_resource", "remote:9"),
    ]
    assert script.requests[1].url.params.multi_items() == []


def test_a_group_submit_sends_plain_json(sleeps: list[float]) -> None:
    created = {"id": GROUP, "tasks": [TASK, TASK], "group": f"/v1/groups/{GROUP}"}
    script = Script(httpx.Response(202, json=created))
    with script.client() as client:
        submitted = client.submit_group(
            (
                {
                    "type": "add",
                    "params": {"a": 1},
                    "delay": timedelta(minutes=1),
                    "timeout": 30,
                    "scheduled_at": None,
                    "exclusive_resources": ("r1",),
                    "shared_resources": "r2",
                },
                {"type": "noop", "scheduled_at": datetime(2030, 1, 1, tzinfo=UTC)},
            )
        )
    assert submitted.id == GROUP and len(submitted.tasks) == 2
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", "/v1/groups")
    assert "idempotency-key" not in request.headers
    assert orjson.loads(request.content) == {
        "tasks": [
            {
                "type": "add",
                "params": {"a": 1},
                "delay": 60.0,
                "timeout": 30.0,
                "scheduled_at": None,
                "exclusive_resources": ["r1"],
                "shared_resources": ["r2"],
            },
            {"type": "noop", "scheduled_at": "2030-01-01T00:00:00+00:00"},
        ]
    }


def test_the_new_list_filters(sleeps: list[float]) -> None:
    empty = {"items": [], "next_cursor": None}
    script = Script(*[httpx.Response(200, json=empty)] * 4)
    with script.client() as client:
        list(client.list(group_id="g", parent_id=TASK["id"], resource="repository:1"))
        list(client.list(archived=True))
        list(client.list(archived="any", group_id=None))
        client.list_page(archived=False)
    params = [r.url.params for r in script.requests]
    assert [(k, v) for k, v in params[0].multi_items() if k != "limit"] == [
        ("group_id", "g"),
        ("parent_id", TASK["id"]),
        ("resource", "repository:1"),
    ]
    assert params[1]["archived"] == "true" and params[2]["archived"] == "any"
    assert "archived" not in params[3]  # the server's default: not sent


def test_bad_arguments_fail_before_sending(sleeps: list[float]) -> None:
    script = Script()
    with script.client() as client:
        with pytest.raises(ValueError, match="aware"):
            client.submit("add", scheduled_at=datetime(2030, 1, 1))
        with pytest.raises(ValueError, match="label"):
            client.submit("add", labels={"a=b": "c"})
        with pytest.raises(ValueError, match="idempotency_key"):
            client.submit("add", idempotency_key="caf\u00e9")
        with pytest.raises(ValueError, match="task id"):
            client.get("")
        with pytest.raises(ValueError, match="timeout"):
            client.wait("x", timeout=-1)
    assert script.requests == []
    with pytest.raises(ValueError, match="URL"):
        Client("ftp://example.org")


def test_list_follows_cursors(sleeps: list[float]) -> None:
    def page(ids: list[str], cursor: str | None) -> httpx.Response:
        items = [{**TASK, "id": i} for i in ids]
        return httpx.Response(200, json={"items": items, "next_cursor": cursor})

    script = Script(page(["a", "b"], "c1"), page(["c", "d"], "c2"), page(["e"], None))
    with script.client() as client:
        ids = [t.id for t in client.list(state=["failed", "canceled"], type="add", page_size=2)]
    assert ids == ["a", "b", "c", "d", "e"]
    assert [r.url.params.get("cursor") for r in script.requests] == [None, "c1", "c2"]
    assert script.requests[0].url.params.get_list("state") == ["failed", "canceled"]
    # a limit stops early, without fetching further pages
    script = Script(page(["a", "b"], "c1"), page(["c", "d"], "c2"))
    with script.client() as client:
        assert [t.id for t in client.list(limit=3, page_size=2)] == ["a", "b", "c"]
    assert len(script.requests) == 2


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 0 ", now) == 0
    assert parse_retry_after("Fri, 31 Jan 2025 12:00:30 GMT", now) == 30
    assert parse_retry_after("Fri, 31 Jan 2025 11:00:00 GMT", now) == 0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_stays_within_bounds() -> None:
    retry = Retry(backoff=0.1, max_backoff=1.0)
    for n in range(1, 20):
        ceiling = min(1.0, 0.1 * 2 ** (n - 1))
        assert ceiling / 2 <= retry.backoff_delay(n) <= ceiling
    with pytest.raises(ValueError):
        Retry(attempts=0)
