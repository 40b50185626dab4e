"""Redis Cloud clients against a real ``taskgate serve --dialect rediscloud``: the
document's curl calls with both headers, and a waiter that behaves as the Redis Cloud Go
client's ``waitForTaskToComplete`` does (``rediscloud-go-api``, internal/service.go):

- it keeps polling on ``initialized``, ``received`` and ``processing-in-progress``;
- ``processing-completed`` is success; any other status, or an ``error`` in the
  response, is a failure (``task <id> failed <status> - <description>``);
- a 404 is retried at most 5 times (a task just created may not be visible yet); any
  other HTTP error is fatal;
- between polls it backs off from 1 s (here 0.1 s, so that the test is short), at most
  30 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from acceptance.server import Server

pytestmark = pytest.mark.acceptance

PENDING = {"initialized", "received", "processing-in-progress"}
PREFIX = "/rediscloud/v1"


class TaskFailed(Exception):
    pass


def wait_for_task(
    client: httpx.Client, task_id: str, *, delay: float = 0.1, max_delay: float = 30.0
) -> dict[str, Any]:
    """The Go client's waiter, in Python: the completed task, or `TaskFailed`."""
    not_found = 0
    while True:
        response = client.get(f"{PREFIX}/tasks/{task_id}")
        if response.status_code == 404:
            not_found += 1
            if not_found > 5:
                raise TaskFailed(f"task {task_id} not found after {not_found} tries")
        elif response.status_code != 200:
            raise TaskFailed(f"{response.status_code}: {response.text}")
        else:
            task: dict[str, Any] = response.json()
            error = (task.get("response") or {}).get("error")
            if error is not None:
                raise TaskFailed(
                    f"task {task_id} failed {error['status']} - {error['type']}:"
                    f" {error['description']}"
                )
            if task["status"] == "processing-completed":
                return task
            if task["status"] not in PENDING:
                raise TaskFailed(f"task {task_id} failed {task['status']} - {task['description']}")
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("rediscloud-serve")
    served = Server(
        folder / "tasks.db", folder, app="taskgate.example:app", args=("--dialect", "rediscloud")
    ).start()
    yield served
    assert served.stop() == 0, served.log_text()


@pytest.fixture(scope="module")
def secret(server: Server) -> str:
    """A write key of user bob in the tenant (account) ``acme``."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "taskgate", "keys", "create", "--db", server.db_url),
            *("--tenant", "acme", "--user", "bob", "--role", "write"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def headers(secret: str) -> dict[str, str]:
    return {"accept": "application/json", "x-api-key": "acme", "x-api-secret-key": secret}


def test_curl_with_both_headers(server: Server, secret: str) -> None:
    curl = shutil.which("curl")
    assert curl is not None
    argv = [curl, "-s", "-X", "POST", f"{server.url}{PREFIX}/subscriptions"]
    argv += ["-H", "content-type: application/json", "-d", '{"name": "cache"}']
    for name, value in headers(secret).items():
        argv += ["-H", f"{name}: {value}"]
    created = json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)
    assert created["status"] == "received"
    task_id = created["taskId"]
    # the document's status query: curl -s -X GET "https://$HOST/tasks/$TASK_ID" -H ...
    query = [curl, "-s", "-X", "GET", f"{server.url}{PREFIX}/tasks/{task_id}"]
    for name, value in headers(secret).items():
        query += ["-H", f"{name}: {value}"]
    deadline = time.monotonic() + 30
    while (task := json.loads(subprocess.run(query, capture_output=True, check=True).stdout))[
        "status"
    ] != "processing-completed":
        assert task["status"] in PENDING and time.monotonic() < deadline, task
        time.sleep(0.1)
    listed = [curl, "-s", "-X", "GET", f"{server.url}{PREFIX}/tasks"]
    for name, value in headers(secret).items():
        listed += ["-H", f"{name}: {value}"]
    tasks = json.loads(subprocess.run(listed, capture_output=True, check=True).stdout)["tasks"]
    assert task_id in [t["taskId"] for t in tasks]
    refused = subprocess.run(
        [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}{PREFIX}/tasks"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert refused.stdout == "401"


def test_the_go_client_s_waiter_succeeds_fails_and_tolerates_early_404s(
    server: Server, secret: str
) -> None:
    with httpx.Client(base_url=server.url, headers=headers(secret), timeout=10) as client:
        created = client.post(f"{PREFIX}/subscriptions", json={"name": "cache"})
        assert created.status_code == 202, created.text
        done = wait_for_task(client, created.json()["taskId"])
        resource = done["_links"]["resource"]["href"]
        assert done["response"]["resourceId"] == int(resource.rsplit("/", 1)[1])
        subscription = client.get(resource)  # the link resolves
        assert subscription.status_code == 200 and subscription.json()["status"] == "active"

        too_big = {"name": "big", "databases": [{"memoryLimitInGb": 500}]}
        failing = client.post(f"{PREFIX}/subscriptions", json=too_big).json()["taskId"]
        with pytest.raises(TaskFailed, match="500 INTERNAL_SERVER_ERROR - SUBSCRIPTION_QUOTA"):
            wait_for_task(client, failing)

        unknown = "01900000-0000-7000-8000-000000000000"
        started = time.monotonic()
        with pytest.raises(TaskFailed, match="not found after 6 tries"):
            wait_for_task(client, unknown, delay=0.01)
        assert time.monotonic() - started < 10
