"""What the dashboard asks besides tasks: who the key is, the workers, the overview.

- ``GET /v1/whoami``: the key's tenant, user and role (a login check; which buttons the
  page shows).
- ``GET /v1/workers`` (admin): every worker with the tasks it runs and whether it is
  alive, by the reaper's rule (`TaskService.worker_statuses`).
- ``GET /v1/stats``: tasks per state, the queue, the task waiting longest and the tasks
  that ended per bucket of a window (`TaskService.stats`); throughput and failure rate
  are the client's arithmetic on ``series``.
"""

from __future__ import annotations

from typing import Any

from taskgate.http import inputs
from taskgate.http.auth import anonymous
from taskgate.http.request import Request
from taskgate.http.responses import Response, json_response
from taskgate.http.routing import Endpoints, Param, Reply
from taskgate.http.schemas import BAD_REQUEST, problem_reply
from taskgate.http.tasks import TENANT_FILTER, tenant_filter
from taskgate.overview import MAX_BUCKETS, MAX_WINDOW, Stats, WorkerStatus

api = Endpoints("overview")

DEFAULT_WINDOW = 3600
DEFAULT_BUCKETS = 60


@api.get(
    "/v1/whoami",
    name="whoami",
    summary="Who this key is",
    responses={200: Reply("The key's tenant, user and role", "Whoami")},
)
async def whoami(request: Request) -> Response:
    """The tenant, user and role requests with this key act as, and the key's id.
    ``auth`` is false when the server runs without keys (``--no-auth``): everyone is
    then the anonymous admin of tenant ``default``."""
    principal = request.principal
    return json_response(
        {
            "tenant": principal.tenant,
            "user": principal.user,
            "role": principal.role,
            "key_id": principal.key_id,
            "auth": request.app.authenticate is not anonymous,
        }
    )


def worker_dict(worker: WorkerStatus) -> dict[str, Any]:
    return {
        "id": worker.id,
        "node": worker.node,
        "pid": worker.pid,
        "concurrency": worker.concurrency,
        "started_at": worker.started_at,
        "heartbeat_at": worker.heartbeat_at,
        "heartbeat_age": worker.heartbeat_age,
        "running": worker.running,
        "alive": worker.alive,
    }


@api.get(
    "/v1/workers",
    name="listWorkers",
    summary="List workers",
    role="admin",
    responses={
        200: Reply("Every worker the store knows, by node then id", "WorkerList"),
        403: problem_reply("Not an admin key"),
    },
)
async def list_workers(request: Request) -> Response:
    """Every worker that has registered with the store (a worker that stopped cleanly
    removes itself), by node then id, with the tasks it runs now. ``alive`` is false once
    its last heartbeat is older than the lease (the server's ``lease`` setting): the
    reaper then takes its tasks back."""
    workers = await request.service.worker_statuses(lease=request.settings.lease)
    return json_response({"items": [worker_dict(w) for w in workers]})


def stats_dict(stats: Stats) -> dict[str, Any]:
    return {
        "states": {s.value: n for s, n in stats.states.items()},
        "queue_depth": stats.queue_depth,
        "oldest_waiting": None
        if stats.oldest_waiting is None
        else {
            "id": stats.oldest_waiting.id,
            "type": stats.oldest_waiting.type,
            "created_at": stats.oldest_waiting.created_at,
            "due_at": stats.oldest_waiting.due_at,
            "wait_seconds": stats.oldest_waiting.wait_seconds,
        },
        "window": {
            "start": stats.window_start,
            "end": stats.window_end,
            "bucket_seconds": stats.bucket_seconds,
        },
        "series": [
            {"start": b.start, **{s.value: n for s, n in b.counts.items()}} for b in stats.series
        ],
    }


@api.get(
    "/v1/stats",
    name="getStats",
    summary="An overview of the tasks",
    params=(
        Param(
            "window",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW, "default": DEFAULT_WINDOW},
            "Seconds of endings to count in series (at most 7 days)",
        ),
        Param(
            "buckets",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_BUCKETS, "default": DEFAULT_BUCKETS},
            "Most buckets to split the window into",
        ),
        TENANT_FILTER,
    ),
    responses={
        200: Reply("Counts per state, the queue, endings over time", "Stats"),
        400: BAD_REQUEST,
        403: problem_reply("Not an admin key, and tenant= names another tenant"),
    },
)
async def get_stats(request: Request) -> Response:
    """Tasks per state (the hot table: every task not yet moved to history), the queue
    (tasks due and waiting for a worker: queued, and scheduled whose time has come), the
    task due longest among them, and how many tasks ended in each bucket of the window,
    hot and archived alike.

    Buckets are ``bucket_seconds`` = ⌈window / buckets⌉ long and aligned to multiples of
    it since the epoch, so they stay put from one look to the next; the last one holds
    now (it is still filling), and the series covers at least ``window`` seconds."""
    seconds = inputs.int_param("window", request.query_one("window"), DEFAULT_WINDOW, 1, MAX_WINDOW)
    buckets = inputs.int_param(
        "buckets", request.query_one("buckets"), DEFAULT_BUCKETS, 1, MAX_BUCKETS
    )
    stats = await request.service.stats(
        tenant=tenant_filter(request), seconds=seconds, buckets=buckets
    )
    return json_response(stats_dict(stats))
