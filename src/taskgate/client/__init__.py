"""taskgate's Python SDK: follow and control tasks over the HTTP API.

    from taskgate.client import Client, TaskFailed

    with Client("http://127.0.0.1:8006", api_key="tgk_...") as client:
        task = client.submit("vzdump", vmid=100)      # 202: stored, usually queued
        try:
            done = client.wait(task, timeout=600)     # long polls, never a busy loop
            print(done.result)
        except TaskFailed as exc:
            print(exc.error_type, exc.error_message, exc.traceback)

Schedules run an operation on a recurrence (ISO 8601 or cron), each run a task:

        nightly = client.create_schedule(
            "nightly", "vzdump", "0 3 * * *", {"vmid": 100}, timezone="Europe/Paris"
        )
        client.run_schedule(nightly)                  # a run now, besides the recurrence
        for run in client.list(schedule_id=nightly):  # its runs, newest first
            print(run.id, run.state)

Groups are tasks submitted together (all or nothing), followed and changed as one:

        group = client.submit_group([{"type": "vzdump", "params": {"vmid": 100}},
                                     {"type": "vzdump", "params": {"vmid": 101}}])
        summary = client.wait_group(group, timeout=3600)  # reads its summary, backing off
        print(summary.states["succeeded"], "of", summary.total)

`AsyncClient` has the same methods for asyncio. Both take ``transport=`` (an httpx
transport: ``httpx.MockTransport``, ``httpx.ASGITransport``, ...) instead of the network.

The SDK knows only the HTTP API: it imports nothing of the server, and its records
(`Task`, `LogLine`, `TaskEvent`, `Operation`, `Page`, `Schedule`, `SchedulePage`, `Group`,
`SubmittedGroup`, ...) ignore fields they do not know, so it works against newer servers.
Its exceptions form one tree under `TaskgateClientError` (drawn in
`taskgate.client.errors`).

Module layout (as httpx's): ``_base`` builds requests and reads answers for both
clients (``_task_list`` those of the task list, ``_schedules`` those of
``/v1/schedules``, ``_groups`` those of ``/v1/groups``); ``_client`` and ``_async_client``
only send them; ``_retry`` decides when a request goes again; ``_streams`` and ``_sse``
read Server-Sent Events; ``_models`` holds the records; ``errors`` the exceptions.
"""

from __future__ import annotations

from taskgate.client._async_client import (
    AsyncClient,
    AsyncEventStream,
    AsyncLogStream,
    AsyncStream,
)
from taskgate.client._base import GroupRef, TaskRef
from taskgate.client._client import Client, EventStream, LogStream, Stream
from taskgate.client._groups import GroupTask
from taskgate.client._models import (
    ConcurrencyLimit,
    ErrorInfo,
    Group,
    Limit,
    LogLine,
    LogPage,
    Operation,
    Page,
    Reservation,
    Schedule,
    SchedulePage,
    State,
    SubmittedGroup,
    Task,
    TaskEvent,
)
from taskgate.client._overview import Bucket, Stats, Waiting, Whoami, Worker
from taskgate.client._retry import Retry
from taskgate.client._schedules import RunOptions, ScheduleChanges, ScheduleRef
from taskgate.client._sse import ServerSentEvent, SSEParser
from taskgate.client._task_list import TaskFilters
from taskgate.client.errors import (
    APIError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    FieldError,
    Forbidden,
    GroupWaitTimeout,
    InvalidResponse,
    NotFound,
    PayloadTooLarge,
    Problem,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    TaskCanceled,
    TaskError,
    TaskFailed,
    TaskgateClientError,
    TaskTimedOut,
    TransportError,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
    WaitTimeout,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncLogStream",
    "AsyncStream",
    "BadRequest",
    "Bucket",
    "Client",
    "ConcurrencyLimit",
    "Conflict",
    "ConnectionFailed",
    "ErrorInfo",
    "EventStream",
    "FieldError",
    "Forbidden",
    "Group",
    "GroupRef",
    "GroupTask",
    "GroupWaitTimeout",
    "InvalidResponse",
    "Limit",
    "LogLine",
    "LogPage",
    "LogStream",
    "NotFound",
    "Operation",
    "Page",
    "PayloadTooLarge",
    "Problem",
    "RequestTimeout",
    "Reservation",
    "Retry",
    "RunOptions",
    "SSEParser",
    "Schedule",
    "ScheduleChanges",
    "SchedulePage",
    "ScheduleRef",
    "ServerError",
    "ServerSentEvent",
    "ServiceUnavailable",
    "State",
    "Stats",
    "Stream",
    "SubmittedGroup",
    "Task",
    "TaskCanceled",
    "TaskError",
    "TaskEvent",
    "TaskFailed",
    "TaskFilters",
    "TaskRef",
    "TaskTimedOut",
    "TaskgateClientError",
    "TransportError",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "WaitTimeout",
    "Waiting",
    "Whoami",
    "Worker",
]
