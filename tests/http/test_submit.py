"""Submitting: POST /v1/operations/{type} and POST /v1/tasks, options, idempotency,
request ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from api_helpers import RETRY_AFTER, fields, problem, submit

from taskgate.service import TaskService


async def test_submit_operation_answers_202_with_the_task_and_where_to_find_it(
    client: httpx.AsyncClient, service: TaskService
) -> None:
    response = await client.post("/v1/operations/echo", json={"name": "vm-100"})
    assert response.status_code == 202
    task = response.json()
    assert task["type"] == "echo"
    assert task["state"] == "queued"
    assert task["params"] == {"name": "vm-100", "count": 1}  # validated, defaults filled
    assert task["object_id"] == "vm-100"  # the operation's object_id parameter
    # who submitted it: the API key's tenant, user and user id (see conftest's api_key)
    assert (task["tenant"], task["user"], task["user_id"]) == ("default", "tester", 7)
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert response.headers["operation-location"] == f"http://testserver/v1/tasks/{task['id']}"
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert response.headers["etag"] == f'"{task["id"][-12:]}.1"'
    assert response.headers["cache-control"] == "no-store"
    assert "idempotency-replayed" not in response.headers
    stored = await service.get(task["id"])  # on the store when the 202 is sent
    assert stored.params == task["params"]


async def test_an_empty_body_means_no_parameters(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/operations/noop")
    assert response.status_code == 202
    assert response.json()["params"] == {}
    # an empty body needs no content type, whatever it claims
    response = await client.post("/v1/operations/noop", headers={"content-type": "text/plain"})
    assert response.status_code == 202


async def test_operation_location_follows_the_host_header(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/operations/noop", json={}, headers={"host": "api.example.com:8443"}
    )
    task_id = response.json()["id"]
    assert response.headers["operation-location"] == (
        f"http://api.example.com:8443/v1/tasks/{task_id}"
    )
    # a Host header that is not a host is not echoed into a URL
    response = await client.post("/v1/operations/noop", json={}, headers={"host": "a b<c>"})
    assert response.status_code == 202
    location = response.headers["operation-location"]
    assert location.startswith("http://") and "<" not in location and " " not in location


async def test_task_options_come_as_query_parameters(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/operations/echo",
        json={"name": "x"},
        params=[
            ("object_id", "vm-7"),
            ("priority", "-3"),
            ("label", "team=storage"),
            ("label", "env=prod"),
            ("delay", "60"),
            ("timeout", "2.5"),
            ("max_attempts", "4"),
        ],
    )
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["object_id"] == "vm-7"
    assert task["priority"] == -3
    assert task["labels"] == {"team": "storage", "env": "prod"}
    assert task["state"] == "scheduled" and task["scheduled_at"].endswith("Z")
    assert task["timeout"] == 2.5
    assert task["max_attempts"] == 4


async def test_scheduled_at_as_a_query_parameter(client: httpx.AsyncClient) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    task = await submit(client, "noop", scheduled_at=when.isoformat().replace("+00:00", "Z"))
    assert task["state"] == "scheduled"
    assert abs(datetime.fromisoformat(task["scheduled_at"]) - when) < timedelta(seconds=1)


async def test_bad_query_options_are_422_naming_each(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/operations/noop",
        json={},
        params=[
            ("priority", "high"),
            ("max_attempts", "0"),
            ("timeout", "0"),
            ("delay", "-1"),
            ("label", "novalue"),
        ],
    )
    doc = problem(response, 422, "invalid-parameters")
    assert fields(doc) == {"priority", "max_attempts", "timeout", "delay", "label"}
    for params, field in [
        ({"scheduled_at": "2030-01-01T00:00:00"}, "scheduled_at"),  # no zone
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"delay": "5", "scheduled_at": "2030-01-01T00:00:00Z"}, "scheduled_at"),
        ({"timeout": "nan"}, "timeout"),
        ({"delay": "inf"}, "delay"),
        ({"priority": "1e3"}, "priority"),
        ({"priority": str(2**40)}, "priority"),
        ({"object_id": "x" * 256}, "object_id"),
    ]:
        response = await client.post("/v1/operations/noop", json={}, params=params)
        assert field in fields(problem(response, 422)), params
    response = await client.post("/v1/operations/noop?priority=1&priority=2", json={})
    assert fields(problem(response, 422)) == {"priority"}


async def test_unknown_query_parameters_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/operations/noop?labels=a=b", json={})
    doc = problem(response, 400)
    assert "labels" in doc["detail"] and "label" in doc["detail"]


async def test_unknown_operation_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/operations/nope", json={})
    doc = problem(response, 404, "operation-not-found")
    assert "nope" in doc["detail"]


async def test_bad_parameters_are_422_naming_the_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/operations/echo", json={"count": "many", "extra": 1})
    doc = problem(response, 422, "invalid-parameters")
    assert fields(doc) == {"name", "count", "extra"}
    assert all(e["message"] for e in doc["errors"])
    response = await client.post("/v1/operations/add", json={"a": 1, "b": [2]})
    assert fields(problem(response, 422)) == {"b"}
    response = await client.post(
        "/v1/operations/create.volume", json={"name": "v", "disks": [{"size_gb": 0}]}
    )
    assert fields(problem(response, 422)) == {"disks.0.size_gb"}


async def test_submit_task_takes_type_params_and_options_in_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/tasks",
        json={
            "type": "echo",
            "params": {"name": "n", "count": 3},
            "object_id": 42,
            "priority": 7,
            "labels": {"a": "1"},
            "delay": 0,
            "timeout": 10,
            "max_attempts": 2,
        },
    )
    assert response.status_code == 202, response.text
    task = response.json()
    assert (task["type"], task["params"]) == ("echo", {"name": "n", "count": 3})
    assert task["object_id"] == "42"
    assert (task["priority"], task["labels"], task["timeout"], task["max_attempts"]) == (
        7,
        {"a": "1"},
        10,
        2,
    )
    assert task["state"] == "queued"
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert response.headers["operation-location"].endswith(f"/v1/tasks/{task['id']}")
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    # null options are as good as absent, and so are absent params
    response = await client.post(
        "/v1/tasks", json={"type": "noop", "params": None, "priority": None}
    )
    assert response.status_code == 202
    when = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    response = await client.post("/v1/tasks", json={"type": "noop", "scheduled_at": when})
    assert response.json()["state"] == "scheduled"


async def test_submit_task_body_is_validated_field_by_field(client: httpx.AsyncClient) -> None:
    cases: list[tuple[object, set[str]]] = [
        ({"params": {}}, {"type"}),
        ({"type": 5}, {"type"}),
        ({"type": "nope"}, {"type"}),
        ({"type": "noop", "params": [1]}, {"params"}),
        ({"type": "noop", "paramz": {}}, {"paramz"}),
        ({"type": "noop", "priority": True}, {"priority"}),
        ({"type": "noop", "priority": 1.5}, {"priority"}),
        ({"type": "noop", "labels": ["a"]}, {"labels"}),
        ({"type": "noop", "labels": {"a": 1}}, {"labels"}),
        ({"type": "noop", "delay": "5"}, {"delay"}),
        ({"type": "noop", "delay": -1}, {"delay"}),
        ({"type": "noop", "timeout": 0}, {"timeout"}),
        ({"type": "noop", "max_attempts": 0}, {"max_attempts"}),
        ({"type": "noop", "max_attempts": 10**6}, {"max_attempts"}),
        ({"type": "noop", "scheduled_at": 5}, {"scheduled_at"}),
        ({"type": "noop", "scheduled_at": "2030-01-01"}, {"scheduled_at"}),
        ({"type": "noop", "object_id": ""}, {"object_id"}),
        ({"type": "noop", "object_id": {"id": 1}}, {"object_id"}),
        ({"type": "noop", "delay": 1, "scheduled_at": "2030-01-01T00:00:00Z"}, {"scheduled_at"}),
        ({"type": "echo", "params": {"name": 5}}, {"params.name"}),
        ({"type": "echo", "params": {}}, {"params.name"}),
        ({"x": 1, "y": 2}, {"x", "y", "type"}),
    ]
    for body, expected in cases:
        response = await client.post("/v1/tasks", json=body)
        doc = problem(response, 422)
        assert fields(doc) == expected, (body, doc)
    doc = problem(await client.post("/v1/tasks", json={"type": "nope"}), 422)
    assert "echo" in doc["errors"][0]["message"]  # says which operations exist


async def test_bad_label_keys_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/tasks", json={"type": "noop", "labels": {"a b": "x"}})
    problem(response, 400)
    response = await client.post("/v1/operations/noop?label=a%20b=x", json={})
    problem(response, 400)


async def test_idempotency_key_replays_the_first_task(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-1234"}
    first = await client.post("/v1/operations/echo", json={"name": "a"}, headers=headers)
    again = await client.post("/v1/operations/echo", json={"name": "a"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert again.headers["location"] == first.headers["location"]
    assert first.json()["idempotency_key"] == "order-1234"
    # the same request through the other endpoint is the same request
    other = await client.post(
        "/v1/tasks", json={"type": "echo", "params": {"name": "a"}}, headers=headers
    )
    assert other.status_code == 202 and other.json()["id"] == first.json()["id"]
    assert other.headers["idempotency-replayed"] == "true"


async def test_idempotency_key_reused_for_another_request_is_422(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    await client.post("/v1/operations/echo", json={"name": "a"}, headers=headers)
    response = await client.post("/v1/operations/echo", json={"name": "b"}, headers=headers)
    problem(response, 422, "idempotency-conflict")
    response = await client.post("/v1/tasks", json={"type": "noop"}, headers=headers)
    problem(response, 422, "idempotency-conflict")


async def test_idempotency_key_is_checked(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/operations/noop", headers={"Idempotency-Key": "k" * 255})
    assert response.status_code == 202
    for bad in ["k" * 256, "", "   "]:
        response = await client.post("/v1/operations/noop", headers={"Idempotency-Key": bad})
        doc = problem(response, 400, "invalid-header")
        assert "Idempotency-Key" in doc["detail"]
    response = await client.post(
        "/v1/tasks", json={"type": "noop"}, headers={"Idempotency-Key": "k" * 256}
    )
    problem(response, 400)


async def test_request_id_is_echoed_and_stored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/operations/noop", json={}, headers={"X-Request-ID": "req-42.abc"}
    )
    assert response.headers["x-request-id"] == "req-42.abc"
    assert response.json()["request_id"] == "req-42.abc"
    task_id = response.json()["id"]
    response = await client.get(f"/v1/tasks/{task_id}", headers={"X-Request-ID": "other"})
    assert response.headers["x-request-id"] == "other"
    assert response.json()["request_id"] == "req-42.abc"  # the submit's


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/operations/noop", json={})
    second = await client.post("/v1/operations/noop", json={})
    generated = first.headers["x-request-id"]
    assert generated and generated != second.headers["x-request-id"]
    assert first.json()["request_id"] == generated
    assert (await client.get("/nowhere")).headers["x-request-id"]


async def test_a_bad_request_id_is_400_with_a_fresh_one(client: httpx.AsyncClient) -> None:
    for bad in ["x" * 201, "has space", "tab\there"]:
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        doc = problem(response, 400, "invalid-header")
        assert "X-Request-ID" in doc["detail"]
        assert response.headers["x-request-id"] != bad
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert response.status_code == 200 and response.headers["x-request-id"] == "x" * 200
