"""Orchestration through a running server with several worker processes, on each store:
resource locks and limits hold across processes, groups cancel, suspended tasks wait,
retention moves and purges while tasks come and go."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .server import Server, submit, wait_ended, worker_pid

pytestmark = pytest.mark.acceptance


def overlaps(spans: list[list[float]]) -> int:
    """The most spans open at one moment (an end and a start at one instant: not open)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    return max(itertools.accumulate(d for _, d in edges))


def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def wait_all(client: httpx.Client, ids: list[str], timeout: float = 120.0) -> list[dict[str, Any]]:
    return [wait_ended(client, task_id, timeout) for task_id in ids]


def test_locks_and_limits_hold_across_three_worker_processes(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(workers=3, env={"TASKGATE_CONCURRENCY": "16"}).start()
    with server.client() as client:
        holds: list[tuple[int, int | None, str]] = []
        for i in range(36):
            repository, remote = i % 3, (9 if i % 2 else None)
            params = {"repository": repository, "remote": remote}
            holds.append((repository, remote, submit(client, "hold", params)))
        writers = [
            submit(client, "hold", {"repository": 100 + i}, exclusive_resource="remote:9")
            for i in range(4)
        ]
        capped = [submit(client, "capped", {"bucket": "abcd"[i % 4]}) for i in range(24)]
        done = {t["id"]: t for t in wait_all(client, [h[2] for h in holds] + writers + capped)}
    assert {t["state"] for t in done.values()} == {"succeeded"}, server.log_text()

    for repository in range(3):  # an exclusive resource: one at a time, in submit order
        spans = [done[i]["result"] for r, _, i in holds if r == repository]
        assert overlaps(spans) == 1
        assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    readers = [done[i]["result"] for _, remote, i in holds if remote == 9]
    for writer in writers:  # a shared resource: never beside its exclusive holder
        start, end = done[writer]["result"]
        assert all(e <= start or s >= end for s, e in readers)
    assert overlaps([done[w]["result"] for w in writers]) == 1
    assert overlaps([done[i]["result"] for _, _, i in holds]) >= 2  # the others in parallel

    runs = [done[i]["result"] for i in capped]
    assert overlaps(runs) <= 3
    for k, bucket in enumerate("abcd"):
        assert overlaps(runs[k::4]) == 1, bucket
    pids = {worker_pid(done[i]) for i in [*capped, *(h[2] for h in holds)]}
    assert len(pids) >= 2  # the work was spread over several processes
    assert server.stop() == 0


def test_a_group_is_canceled_and_suspended_tasks_wait(server: Server) -> None:
    with server.client() as client:
        response = client.post(
            "/v1/groups",
            json={"tasks": [{"type": "sleep", "params": {"seconds": 30}} for _ in range(4)]},
        )
        assert response.status_code == 202, response.text
        group = response.json()
        ids = [t["id"] for t in group["tasks"]]
        eventually(lambda: client.get(f"/v1/groups/{group['id']}").json()["states"]["running"] == 4)
        summary = client.post(f"/v1/groups/{group['id']}/cancel").json()
        assert summary["states"]["canceling"] + summary["states"]["canceled"] == 4
        assert {t["state"] for t in wait_all(client, ids)} == {"canceled"}
        assert client.get(f"/v1/groups/{group['id']}").json()["ended"] is True

        held = submit(client, "noop", delay=0.2)
        assert client.post(f"/v1/tasks/{held}/suspend").json()["state"] == "suspended"
        time.sleep(1.5)  # due, and workers idle: still not claimed
        assert client.get(f"/v1/tasks/{held}").json()["state"] == "suspended"
        assert client.post(f"/v1/tasks/{held}/resume").json()["state"] == "queued"
        assert wait_ended(client, held)["state"] == "succeeded"


def test_retention_moves_and_purges_while_tasks_come_and_go(
    make_server: Callable[..., Server],
) -> None:
    env = {
        "TASKGATE_ARCHIVE_AFTER": "0.3",
        "TASKGATE_PURGE_AFTER": "never",
        "TASKGATE_RETENTION_INTERVAL": "0.1",
    }
    server = make_server(env=env).start()
    kept: list[str] = []
    brief: list[str] = []
    with server.client() as client:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:  # submits go on while retention runs
            kept.append(submit(client, "noop"))
            brief.append(submit(client, "brief"))  # its own periods: gone after a second
        for task_id in kept:
            eventually(lambda t=task_id: client.get(f"/v1/tasks/{t}").json()["archived"])
        for task_id in brief:
            eventually(lambda t=task_id: client.get(f"/v1/tasks/{t}").status_code == 404)
        archived = client.get("/v1/tasks", params={"archived": "true", "limit": 500}).json()
        hot = client.get("/v1/tasks", params={"limit": 500}).json()
        history = _all(client, {"archived": "true"})
    assert len(kept) > 50, "the load was too small to mean anything"
    assert {t["id"] for t in history} == set(kept)
    assert {t["state"] for t in history} == {"succeeded"}
    assert hot["items"] == [] and archived["items"]
    assert "Traceback" not in server.log_text()
    assert server.stop() == 0


def _all(client: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/tasks", params=query).json()
        found += page["items"]
        if page["next_cursor"] is None:
            return found
        cursor = page["next_cursor"]
