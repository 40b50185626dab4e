"""``GET /metrics``: Prometheus's text format, for an admin key (or anyone, with
``metrics_public``).

Two kinds of figures (`taskgate.metrics` says why):

- what processes counted: submits, endings, run and wait times, retries, lock waits,
  HTTP requests (every process of ``taskgate serve``, workers included);
- what the store holds now, read at each scrape: tasks per type and state, the waiting
  ones that are due and how long the longest has waited, the registered workers and
  the age of each one's last heartbeat. Two indexed reads: ended tasks are not read,
  so a scrape costs the same with a million of them in the hot table.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from taskgate.http.request import Request
from taskgate.http.responses import CONTENT_TYPE, NO_STORE, Response
from taskgate.http.routing import FORBIDDEN, UNAUTHORIZED, Endpoint, Endpoints, Reply
from taskgate.metrics import CONTENT_TYPE_LATEST, exposition
from taskgate.service import TaskService

api = Endpoints("service")

CT_METRICS = (CONTENT_TYPE, CONTENT_TYPE_LATEST.encode())
PATH = "/metrics"


@api.get(
    PATH,
    name="metrics",
    summary="Prometheus metrics",
    role="admin",
    responses={
        200: Reply(
            "The metrics, in Prometheus's text exposition format", "MetricsText", "text/plain"
        )
    },
)
async def metrics(request: Request) -> Response:
    """Task, worker and HTTP metrics in Prometheus's text format. Labels are operation
    types, outcomes, states, methods, route templates and statuses: never task ids.
    Needs an admin key, unless the server runs with ``metrics_public``."""
    families = await store_families(request.service)
    body = await asyncio.to_thread(exposition, families)  # reads the other processes' files
    return Response(200, body, [CT_METRICS, NO_STORE])


def public(routes: Iterable[Endpoint]) -> list[Endpoint]:
    """``routes`` with ``GET /metrics`` answered without a key (``metrics_public``)."""
    return [
        dataclasses.replace(
            e,
            role="read",
            public=True,
            responses={s: r for s, r in e.responses.items() if r not in (UNAUTHORIZED, FORBIDDEN)},
        )
        if e.handler is metrics
        else e
        for e in routes
    ]


async def store_families(service: TaskService) -> list[Metric]:
    """The gauges read from the store, as of now."""
    counts, workers = await asyncio.gather(service.active_counts(), service.list_workers())
    now = service.clock()
    tasks = GaugeMetricFamily(
        "taskgate_tasks",
        "Tasks not ended, by type and state (queued, scheduled, suspended, running,"
        " canceling), as the store has them now.",
        labels=["type", "state"],
    )
    waiting = GaugeMetricFamily(
        "taskgate_tasks_waiting",
        "Tasks due (queued, or scheduled and their time has come) that no worker runs yet.",
        labels=["type"],
    )
    reserved = GaugeMetricFamily(
        "taskgate_tasks_waiting_reserved",
        "Of the waiting tasks, those that reserve resources or count against a"
        " concurrency limit (they may be waiting for a lock).",
        labels=["type"],
    )
    oldest = GaugeMetricFamily(
        "taskgate_oldest_waiting_seconds",
        "Seconds the longest-waiting due task of each type has waited (none waiting: 0).",
        labels=["type"],
    )
    due: dict[str, int] = {}
    due_reserved: dict[str, int] = {}
    oldest_due: dict[str, float] = {}
    for row in counts:
        type = str(row["type"])
        tasks.add_metric([type, str(row["state"])], int(row["tasks"]))
        due[type] = due.get(type, 0) + int(row["due"] or 0)
        due_reserved[type] = due_reserved.get(type, 0) + int(row["due_reserved"] or 0)
        if row["oldest_due"] is not None:
            at = float(row["oldest_due"])
            oldest_due[type] = min(oldest_due.get(type, at), at)
    for type in sorted(due):
        waiting.add_metric([type], due[type])
        reserved.add_metric([type], due_reserved[type])
        since = oldest_due.get(type)
        oldest.add_metric([type], 0.0 if since is None else max(now - since, 0.0))
    registered = GaugeMetricFamily(
        "taskgate_workers", "Worker processes registered in the store, by node.", labels=["node"]
    )
    per_node: dict[str, int] = {}
    heartbeat = GaugeMetricFamily(
        "taskgate_worker_heartbeat_age_seconds",
        "Seconds since each registered worker's last heartbeat (one that died without"
        " unregistering keeps its row, and its age grows).",
        labels=["worker"],
    )
    for row in workers:
        node = str(row["node"])
        per_node[node] = per_node.get(node, 0) + 1
        heartbeat.add_metric([str(row["id"])], max(now - float(row["heartbeat_at"]), 0.0))
    for node in sorted(per_node):
        registered.add_metric([node], per_node[node])
    return [tasks, waiting, reserved, oldest, registered, heartbeat]
