"""A user's view of tasks through a running server: submit, follow, cancel, time out,
retry. Every task is followed with ``?wait=`` long polls."""

from __future__ import annotations

import httpx
import pytest

from .server import log_lines, submit, wait_ended, wait_until

pytestmark = pytest.mark.acceptance


def test_submit_then_follow_to_the_result(client: httpx.Client) -> None:
    response = client.post("/v1/operations/echo", json={"name": "vm-100", "steps": 4})
    assert response.status_code == 202
    task = response.json()
    assert task["state"] in ("queued", "running", "succeeded")
    assert task["object_id"] == "vm-100"
    assert task["upid"].startswith("UPID:")
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert response.headers["operation-location"].endswith(f"/v1/tasks/{task['id']}")
    assert int(response.headers["retry-after"]) >= 0

    done = wait_ended(client, task["id"])
    assert done["state"] == "succeeded"
    assert done["result"] == {"echo": "vm-100", "steps": 4}
    assert done["progress"] == 100
    assert done["progress_detail"] == {"total": 4, "done": 4}
    assert done["warnings"] == 1
    assert done["created_resources"] == {"echoes": ["vm-100"]}
    assert done["attempt"] == 1
    assert done["started_at"] is not None and done["finished_at"] is not None
    lines = log_lines(client, task["id"])
    assert lines[:4] == [f"step {i} of 4" for i in range(1, 5)]
    assert any("this is only a test" in line for line in lines)

    listed = client.get("/v1/tasks", params={"type": "echo", "object_id": "vm-100"}).json()
    assert task["id"] in [t["id"] for t in listed["items"]]


def test_the_submit_body_form(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tasks", json={"type": "echo", "params": {"name": "x", "steps": 1}, "priority": 5}
    )
    assert response.status_code == 202, response.text
    done = wait_ended(client, response.json()["id"])
    assert done["state"] == "succeeded"
    assert done["priority"] == 5


def test_idempotency_key_returns_the_first_task(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "acceptance-idem-1"}
    first = client.post("/v1/operations/echo", json={"steps": 1}, headers=headers)
    again = client.post("/v1/operations/echo", json={"steps": 1}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]


def test_cancel_a_waiting_task(client: httpx.Client) -> None:
    task_id = submit(client, "echo", {}, delay=3600)
    assert client.get(f"/v1/tasks/{task_id}").json()["state"] == "scheduled"
    response = client.post(f"/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert wait_ended(client, task_id)["state"] == "canceled"


def test_cancel_a_running_task(client: httpx.Client) -> None:
    task_id = submit(client, "sleep", {"seconds": 120})
    wait_until(client, task_id, {"running"})
    response = client.post(f"/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] in ("canceling", "canceled")
    done = wait_ended(client, task_id)
    assert done["state"] == "canceled"
    assert done["cancel_requested_at"] is not None
    assert "asked to stop" in log_lines(client, task_id)


def test_cancel_a_finished_task_is_a_conflict(client: httpx.Client) -> None:
    task_id = submit(client, "noop")
    assert wait_ended(client, task_id)["state"] == "succeeded"
    response = client.post(f"/v1/tasks/{task_id}/cancel")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 409
    assert client.get(f"/v1/tasks/{task_id}").json()["state"] == "succeeded"


def test_delete_only_a_finished_task(client: httpx.Client) -> None:
    running = submit(client, "sleep", {"seconds": 120})
    wait_until(client, running, {"running"})
    assert client.delete(f"/v1/tasks/{running}").status_code == 409
    client.post(f"/v1/tasks/{running}/cancel")
    wait_ended(client, running)
    assert client.delete(f"/v1/tasks/{running}").status_code == 204
    assert client.get(f"/v1/tasks/{running}").status_code == 404


def test_a_cooperative_task_times_out(client: httpx.Client) -> None:
    task_id = submit(client, "sleep", {"seconds": 120}, timeout=1)
    done = wait_ended(client, task_id)
    assert done["state"] == "timed_out"
    assert done["error"] is not None


def test_a_task_that_ignores_its_timeout_is_killed(client: httpx.Client) -> None:
    task_id = submit(client, "spin", {"seconds": 120}, timeout=1)
    done = wait_ended(client, task_id)
    assert done["state"] == "timed_out"


def test_retries_then_success(client: httpx.Client) -> None:
    task_id = submit(client, "flaky", {"failures": 2})
    done = wait_ended(client, task_id)
    assert done["state"] == "succeeded"
    assert done["attempt"] == 3
    assert done["result"] == {"attempt": 3}


def test_retries_exhausted(client: httpx.Client) -> None:
    task_id = submit(client, "flaky", {"failures": 5})
    done = wait_ended(client, task_id)
    assert done["state"] == "failed"
    assert done["attempt"] == 3
    assert done["error"]["type"] == "ConnectionError"
    assert "attempt 3 failed" in done["error"]["message"]
    assert "Traceback" in (done["error"]["traceback"] or "")


def test_operations_are_listed_with_their_schema(client: httpx.Client) -> None:
    response = client.get("/v1/operations")
    assert response.status_code == 200
    text = response.text
    for name in ("echo", "sleep", "flaky", "spin", "noop"):
        assert name in text
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
