"""PostgreSQL stopped and started again under load, on a server of the test's own.

While a thread submits tasks through HTTP without pause and another follows a task with
``?wait`` long polls, the database is stopped (a fast shutdown: sessions are ended) and
started again two seconds later. What must hold:

- each submit is answered (none hangs past the client's timeout): 202, or during the
  outage 503 problem+json with a Retry-After header, never a 500; reads (a task, the
  list, a ``?wait``) during the outage get the same 503;
- serve and its workers reconnect by themselves: submits are accepted again, no restart;
- every task that got a 202 exists afterwards and ends, none lost, none left running;
- the ``?wait`` follower gets its answers again after the restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from postgres import Cluster, postgres_cluster

from .server import LEASE, TERMINAL, Server, active_tasks, submit, wait_ended, wait_until

__all__ = ["postgres_cluster"]  # a fixture (tests/postgres.py)

pytestmark = [pytest.mark.acceptance, pytest.mark.postgres]

CLIENT_TIMEOUT = 15.0
"""Seconds a client waits for any answer: a request not answered by then hangs."""
OUTAGE = 2.0
"""Seconds the database stays down."""


@dataclass
class Answer:
    sent: float
    """When the request was sent (monotonic)."""
    took: float
    status: int
    headers: httpx.Headers
    body: bytes


@dataclass
class Submitter:
    """Submits ``sleep`` tasks (a tenth of a second each) from a thread, without pause."""

    server: Server
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            with httpx.Client(
                base_url=self.server.url, timeout=CLIENT_TIMEOUT, headers=self.server.headers
            ) as client:
                while not self.stop.is_set():
                    sent = time.monotonic()
                    response = client.post("/v1/operations/sleep", json={"seconds": 0.1})
                    took = time.monotonic() - sent
                    self.answers.append(
                        Answer(sent, took, response.status_code, response.headers, response.content)
                    )
                    if response.status_code == 503:
                        time.sleep(0.02)  # a client honouring Retry-After would wait longer
        except BaseException as exc:  # a hang (timeout) or a dropped connection: reported
            self.errors.append(exc)

    def accepted(self) -> list[str]:
        return [json.loads(a.body)["id"] for a in self.answers if a.status == 202]


@dataclass
class Follower:
    """Follows one task with ``?wait=`` long polls until it ends, as a client would:
    a 503 means "again later"."""

    server: Server
    task_id: str
    statuses: list[int] = field(default_factory=list)
    state: str | None = None
    errors: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            with self.server.client() as client:
                deadline = time.monotonic() + 60
                while self.state not in TERMINAL and time.monotonic() < deadline:
                    response = client.get(f"/v1/tasks/{self.task_id}", params={"wait": 2})
                    self.statuses.append(response.status_code)
                    if response.status_code == 200:
                        self.state = response.json()["state"]
                    else:
                        time.sleep(0.1)
        except BaseException as exc:
            self.errors.append(exc)


def unavailable(response: httpx.Response) -> None:
    """A 503 problem document that says when to try again."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503


def test_postgres_restarted_under_load(
    postgres_cluster: Cluster, serve_on: Callable[..., Server]
) -> None:
    server = serve_on(postgres_cluster.create_database("taskgate")).start()
    assert server.proc is not None
    pid = server.proc.pid
    with server.client() as client:
        # running when the database goes down, ending while it is down
        long_id = submit(client, "sleep", {"seconds": 2.5})
        wait_until(client, long_id, {"running"})
    follower = Follower(server, long_id)
    submitter = Submitter(server)
    threads = [threading.Thread(target=t.run) for t in (submitter, follower)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        postgres_cluster.stop()
        down = time.monotonic()
        with server.client() as client:  # reads too: 503, at once
            for path, params in (
                (f"/v1/tasks/{long_id}", {}),
                (f"/v1/tasks/{long_id}", {"wait": 5}),
                ("/v1/tasks", {}),
            ):
                unavailable(client.get(path, params=params))
        time.sleep(max(OUTAGE - (time.monotonic() - down), 0))
        postgres_cluster.start()
        up = time.monotonic()
        # load goes on until the node has accepted submits again for a while
        deadline = up + 30
        while time.monotonic() < deadline and not any(
            a.status == 202 and a.sent > up + 1 for a in submitter.answers
        ):
            time.sleep(0.1)
    finally:
        submitter.stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT * 2)

    assert submitter.errors == [] and follower.errors == [], (submitter.errors, follower.errors)
    statuses = {a.status for a in submitter.answers}
    assert statuses <= {202, 503}, statuses
    refused = [a for a in submitter.answers if a.status == 503]
    assert refused, "no submit was made while the database was down"
    for answer in refused:
        unavailable(httpx.Response(answer.status, headers=answer.headers, content=answer.body))
    again = [a for a in submitter.answers if a.status == 202 and a.sent > up]
    assert again, "serve never accepted a submit after the restart"
    assert server.proc.poll() is None and server.proc.pid == pid  # not restarted
    print(
        f"\noutage: {len(refused)} submits got 503, in {max(a.took for a in refused):.3f} s"
        f" at most; the first 202 after the restart came {again[0].sent - up:.2f} s after"
        f" the database was up ({up - down:.2f} s after it went down)"
    )

    # ?wait followers get answers again; the long task ended one way or another
    assert set(follower.statuses) <= {200, 503}, follower.statuses
    assert follower.state in TERMINAL, follower.statuses
    with server.client() as client:
        for task_id in submitter.accepted():
            response = client.get(f"/v1/tasks/{task_id}")
            assert response.status_code == 200, response.text  # none lost
            assert wait_ended(client, task_id, timeout=LEASE * 15)["state"] in TERMINAL
        assert active_tasks(client) == []
    assert server.stop() == 0, server.log_text()
