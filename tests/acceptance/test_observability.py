"""Observability through a real ``taskgate serve``: what the worker processes count
reaches the API's /metrics, which needs an admin key and shows no task id; and the
request id of a submit follows its task into the workers' JSON log lines."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from .server import Server, submit, wait_ended


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


def test_metrics_count_what_the_workers_did(make_server: Callable[..., Server]) -> None:
    server = make_server(args=("--log-json",)).start()
    with server.client() as client:
        echoes = [submit(client, "echo", {"steps": 1}) for _ in range(3)]
        response = client.post(
            "/v1/operations/flaky",
            json={"failures": 5},
            headers={"X-Request-ID": "req-flaky-7"},
        )
        assert response.status_code == 202, response.text
        flaky = response.json()["id"]
        for task_id in echoes:
            assert wait_ended(client, task_id)["state"] == "succeeded"
        assert wait_ended(client, flaky)["state"] == "failed"
        text = client.get("/metrics").text
    assert httpx.get(server.url + "/metrics").status_code == 401

    # counted in the worker processes, read by the API's /metrics
    assert value(text, "taskgate_tasks_finished_total", type="echo", outcome="succeeded") == 3
    assert value(text, "taskgate_tasks_finished_total", type="flaky", outcome="failed") == 1
    assert value(text, "taskgate_task_retries_total", type="flaky") == 2
    assert value(text, "taskgate_task_run_seconds_count", type="flaky") == 3
    # counted in the API process
    assert value(text, "taskgate_tasks_submitted_total", type="echo") == 3
    submits = {"method": "POST", "route": "/v1/operations/{type}", "status": "202"}
    assert value(text, "taskgate_http_requests_total", **submits) == 4
    # read from the store (a worker that ran a task has registered; the other may not yet)
    assert value(text, "taskgate_workers", node=_node(text)) >= 1
    for task_id in [*echoes, flaky]:
        assert task_id not in text

    # one request id from the submit to the worker's last word about the task
    about = [
        entry
        for entry in map(orjson.loads, _json_lines(server.log_text()))
        if entry.get("task_id") == flaky
    ]
    assert about, server.log_text()
    assert {entry["request_id"] for entry in about} == {"req-flaky-7"}
    assert any(entry["message"].startswith(f"task {flaky} (flaky): failed") for entry in about)
    assert all(entry["task_type"] == "flaky" and entry["tenant"] for entry in about)


def _json_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("{")]


def _node(text: str) -> str:
    for family in text_string_to_metric_families(text):
        if family.name == "taskgate_workers":
            return str(family.samples[0].labels["node"])
    raise AssertionError("no taskgate_workers in the metrics")
