"""Pulp through a real ``taskgate serve --dialect pulp`` with worker processes: a Pulp 2
sync kickoff followed as pulp-admin follows it (polling the task report until a final
state), a group sync with its state summary, Pulp 1's list and snapshot, and a search,
as curl sends them. (pulp-admin and Pulp's bindings are Python 2 only: their calls are
made here as they make them, with Basic auth.)"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from acceptance.server import Server

pytestmark = pytest.mark.acceptance

FINAL = {"finished", "error", "canceled", "skipped"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("pulp-serve")
    served = Server(
        folder / "tasks.db", folder, app="taskgate.example:app", args=("--dialect", "pulp")
    ).start()
    yield served
    assert served.stop() == 0, served.log_text()


def poll(client: httpx.Client, href: str) -> dict[str, Any]:
    """pulp-admin's poller: the report every 0.1 s (its default is 1 s) until final."""
    deadline = time.monotonic() + 60
    while True:
        report: dict[str, Any] = client.get(href).json()
        if report["state"] in FINAL:
            return report
        assert report["state"] in {"waiting", "accepted", "running", "suspended"}, report
        assert time.monotonic() < deadline, report
        time.sleep(0.1)


def test_pulp_2_and_pulp_1_through_a_server(server: Server) -> None:
    assert server.key is not None
    with httpx.Client(base_url=server.url, auth=("admin", server.key), timeout=10) as client:
        kicked = client.post("/pulp/api/v2/repositories/zoo/actions/sync/")
        assert kicked.status_code == 202, kicked.text
        [spawned] = kicked.json()["spawned_tasks"]
        report = poll(client, spawned["_href"])
        assert report["state"] == "finished" and report["result"]["repo_id"] == "zoo"
        assert report["worker_name"] and report["queue"].endswith(".dq")

        group = client.post(
            "/pulp/api/v2/repositories/actions/sync/", json={"repo_ids": ["a", "b", "a"]}
        ).json()
        summary_href = f"{group['_href']}state_summary/"
        deadline = time.monotonic() + 60
        while (summary := client.get(summary_href).json())["finished"] < 3:
            assert time.monotonic() < deadline, summary
            time.sleep(0.1)
        assert summary["total"] == 3 and summary["error"] == 0

        listed = client.get("/pulp/api/tasks/", params={"state": "complete"}).json()
        assert {t["method_name"] for t in listed} == {"sync_repository"} and len(listed) == 4
        snapshot = client.get(f"/pulp/api/v1/tasks/{spawned['task_id']}/snapshot/").json()
        assert snapshot["kwargs"] == '{"repo_id":"zoo","feed":null}'
        found = subprocess.run(
            [
                "curl", "-s", "-u", f"admin:{server.key}", "-X", "POST",
                f"{server.url}/pulp/api/v2/tasks/search/", "-H",
                "Content-Type: application/json", "-d",
                '{"criteria": {"filters": {"tags": {"$in": ["pulp:repository:a"]}},'
                ' "fields": ["task_id", "state"]}}',
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert found.stdout.count('"state":"finished"') == 2, found.stdout
