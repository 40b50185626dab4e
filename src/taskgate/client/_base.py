"""What `Client` and `AsyncClient` share: building requests and reading answers.

Everything here is I/O-free. An API call is described by a `Call` (method, path, query,
body, headers, and whether it may be sent again); the clients turn it into an httpx
request, send it (retrying per `Retry`, ``_retry.py``), and hand the response back to a
reader here. The loops that need several requests (``wait``'s long polls; ``list``'s
pages are in ``_task_list.py``, a stream's reconnections in ``_streams.py``, the schedule
list's pages in ``_schedules.py``, a group's wait in ``_groups.py``) keep their state in
small classes, so that the sync and async clients differ only in how they wait for I/O.
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import orjson

from taskgate.client._models import Group, SubmittedGroup, Task
from taskgate.client._retry import parse_retry_after
from taskgate.client.errors import (
    APIError,
    FieldError,
    InvalidResponse,
    Problem,
    TaskCanceled,
    TaskError,
    TaskFailed,
    TaskTimedOut,
    error_for,
)

DEFAULT_URL = "http://127.0.0.1:8006"
URL_ENV = "TASKGATE_URL"
KEY_ENV = "TASKGATE_API_KEY"
DEFAULT_TIMEOUT = 10.0
"""Seconds for connecting and for each read of an ordinary request."""
LONG_POLL = 30.0
"""Seconds each ``?wait=`` long poll asks for (the server's default maximum is 60)."""
STREAM_READ_TIMEOUT = 60.0
"""Seconds a stream may stay silent before it is taken for dead and reopened (the
server sends a keep-alive comment every 15 s)."""
LOG_PAGE = 1000
"""Lines per request when ``log(limit=None)`` reads a whole log."""
LIST_PAGE = 100
"""Tasks (schedules) per request when ``list`` (``list_schedules``) iterates."""
MAX_KEY = 255

REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that HTTP defines as idempotent (RFC 9110 §9.2.2)."""


def _version() -> str:
    try:
        return metadata.version("taskgate")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


USER_AGENT = f"taskgate-client/{_version()}"


# -- configuration ---------------------------------------------------------------------


def resolve_base_url(base_url: str | httpx.URL | None) -> httpx.URL:
    """The API's root: ``base_url``, else ``$TASKGATE_URL``, else the local default.

    A trailing ``/v1`` (as serve's banner prints the API's address) is dropped: the SDK
    adds the version to each path itself.
    """
    raw = str(base_url) if base_url is not None else os.environ.get(URL_ENV) or DEFAULT_URL
    url = httpx.URL(raw.rstrip("/").removesuffix("/v1"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{raw!r} is not an http(s) URL like {DEFAULT_URL}")
    return url


def resolve_api_key(api_key: str | None) -> str | None:
    key = api_key if api_key is not None else os.environ.get(KEY_ENV)
    if key is None or not key.strip():
        return None
    key = key.strip()
    if not key.isprintable() or not key.isascii():
        raise ValueError("the API key must be printable ASCII text")
    return key


def default_headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key is not None:
        out["Authorization"] = f"Bearer {api_key}"
    if headers:
        out.update(headers)
    return out


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout)


# -- calls -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One API request, before it is sent."""

    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_read: float = 0.0
    """Seconds the server may hold the answer on purpose (a long poll)."""
    read_timeout: float | None = None
    """The read timeout instead of the client's (a stream's)."""

    @property
    def replayable(self) -> bool:
        """Sending it twice does what sending it once does."""
        return self.method in REPLAYABLE_METHODS or "Idempotency-Key" in self.headers

    def timeout(self, base: httpx.Timeout) -> httpx.Timeout:
        if not self.extra_read and self.read_timeout is None:
            return base
        read = base.read if self.read_timeout is None else self.read_timeout
        if read is not None:
            read += self.extra_read
        return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

    def build(
        self, http: httpx.Client | httpx.AsyncClient, timeout: httpx.Timeout
    ) -> httpx.Request:
        headers = dict(self.headers)
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return http.build_request(
            self.method,
            self.path,
            params=list(self.params) if self.params else None,
            content=self.body,
            headers=headers,
            timeout=self.timeout(timeout),
        )


TaskRef = str | Task
"""A task id, or a `Task` (its id is used)."""


def task_id_of(task: TaskRef) -> str:
    task_id = task.id if isinstance(task, Task) else task
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError(f"a task id must be a non-empty string, not {task_id!r}")
    return task_id.strip()


GroupRef = str | Group | SubmittedGroup
"""A group id, or a `Group` or `SubmittedGroup` (its id is used)."""


def group_id_of(group: GroupRef) -> str:
    group_id = group.id if isinstance(group, Group | SubmittedGroup) else group
    if not isinstance(group_id, str) or not group_id.strip():
        raise ValueError(f"a group id must be a non-empty string, not {group_id!r}")
    return group_id.strip()


def ids_of(value: TaskRef | Iterable[TaskRef] | None) -> list[str]:
    """Task ids from one id or task, or several."""
    if value is None:
        return []
    if isinstance(value, str | Task):
        return [task_id_of(value)]
    return [task_id_of(v) for v in value]


def values_of(value: str | Iterable[str] | None) -> list[str]:
    """One value or several, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def task_path(task: TaskRef, suffix: str = "") -> str:
    return f"/v1/tasks/{quote(task_id_of(task), safe='')}{suffix}"


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise TypeError(f"cannot send as JSON: {exc}") from None


def seconds_value(name: str, value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds or a timedelta")
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite")
    return float(seconds)


def _seconds(name: str, value: float | timedelta) -> str:
    return repr(seconds_value(name, value))


def time_value(name: str, value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime or an RFC 3339 string")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (with a timezone)")
    return value.isoformat()


def label_params(name: str, labels: Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in labels.items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ValueError(f"{name}: label keys must be non-empty and without '=': {key!r}")
        pairs.append(("label", f"{key}={value}"))
    return pairs


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def submit_call(
    type: str,
    params: Mapping[str, Any] | None,
    keyword_params: Mapping[str, Any],
    *,
    idempotency_key: str | None,
    object_id: str | int | None,
    priority: int | None,
    labels: Mapping[str, str] | None,
    delay: float | timedelta | None,
    scheduled_at: datetime | str | None,
    timeout: float | timedelta | None,
    max_attempts: int | None,
    group_id: GroupRef | None,
    exclusive_resources: str | Iterable[str] | None,
    shared_resources: str | Iterable[str] | None,
) -> Call:
    """``POST /v1/operations/{type}``: parameters as the body, options in the query (a
    resource list as repeated ``exclusive_resource=``/``shared_resource=``), and an
    ``Idempotency-Key`` always (made up when not given), so that it can be retried."""
    if not isinstance(type, str) or not type:
        raise ValueError(f"the operation type must be a non-empty string, not {type!r}")
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of parameter names, not {params!r}")
    merged = {**keyword_params, **(params or {})}  # an explicit dict wins
    key = new_idempotency_key() if idempotency_key is None else idempotency_key
    if not 1 <= len(key) <= MAX_KEY or not all(" " <= c <= "~" for c in key) or not key.strip():
        raise ValueError(f"idempotency_key must be 1 to {MAX_KEY} printable ASCII characters")
    query: list[tuple[str, str]] = []
    if object_id is not None:
        query.append(("object_id", str(object_id)))
    if priority is not None:
        query.append(("priority", str(int(priority))))
    if labels:
        query.extend(label_params("labels", labels))
    if delay is not None:
        query.append(("delay", _seconds("delay", delay)))
    if scheduled_at is not None:
        query.append(("scheduled_at", time_value("scheduled_at", scheduled_at)))
    if timeout is not None:
        query.append(("timeout", _seconds("timeout", timeout)))
    if max_attempts is not None:
        query.append(("max_attempts", str(int(max_attempts))))
    if group_id is not None:
        query.append(("group_id", group_id_of(group_id)))
    query.extend(repeated_param("exclusive_resource", exclusive_resources))
    query.extend(repeated_param("shared_resource", shared_resources))
    return Call(
        "POST",
        f"/v1/operations/{quote(type, safe='')}",
        query,
        dumps(merged),
        {"Idempotency-Key": key},
    )


def repeated_param(name: str, value: str | Iterable[str] | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [(name, value)]
    return [(name, str(v)) for v in value]


def log_call(task: TaskRef, start: int, limit: int) -> Call:
    if start < 0:
        raise ValueError("start must not be negative")
    return Call("GET", task_path(task, "/log"), [("start", str(start)), ("limit", str(limit))])


def acknowledge_many_call(
    ids: Iterable[TaskRef] | None,
    state: str | Iterable[str] | None,
    type: str | Iterable[str] | None,
) -> Call:
    body: dict[str, Any] = {}
    if ids is not None:
        body["ids"] = [task_id_of(t) for t in ids]
    if state is not None:
        body["state"] = [state] if isinstance(state, str) else list(state)
    if type is not None:
        body["type"] = [type] if isinstance(type, str) else list(type)
    return Call("POST", "/v1/tasks/acknowledge", (), dumps(body))


def purge_call(
    *,
    state: str | Iterable[str] | None,
    type: str | Iterable[str] | None,
    finished_before: datetime | str | timedelta | None,
    tenant: str | None,
) -> Call:
    """``DELETE /v1/tasks`` for these filters. A timedelta is an age: the cutoff is now
    minus it, fixed here, so a retried request deletes no more than the first would.
    Refused (ValueError) before anything is sent when neither a state nor a time is
    given: the server would refuse it too, and the mistake is the caller's."""
    states = repeated_param("state", state)
    if not states and finished_before is None:
        raise ValueError(
            "purge needs state= or finished_before= (to purge every ended task:"
            " finished_before=timedelta(0)); a purge without a filter is refused"
        )
    query = [*states, *repeated_param("type", type)]
    if isinstance(finished_before, timedelta):
        if finished_before < timedelta(0):
            raise ValueError("finished_before as a timedelta (an age) must not be negative")
        finished_before = datetime.now(UTC) - finished_before
    if finished_before is not None:
        query.append(("finished_before", time_value("finished_before", finished_before)))
    if tenant is not None:
        query.append(("tenant", tenant))
    return Call("DELETE", "/v1/tasks", query)


# -- answers ---------------------------------------------------------------------------


def problem_of(response: httpx.Response) -> Problem:
    """The problem document of an error answer (or one made from whatever came)."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    doc: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            doc = None
    if not isinstance(doc, dict):
        text = " ".join(response.text.split())[:200]
        return Problem(
            status=status,
            title=response.reason_phrase,
            detail=text or response.reason_phrase,
            request_id=request_id,
        )
    standard = ("type", "title", "status", "detail", "instance", "request_id", "errors")
    errors = doc.get("errors")
    return Problem(
        status=status,
        type=str(doc.get("type") or "about:blank"),
        title=str(doc.get("title") or response.reason_phrase),
        detail=str(doc.get("detail") or ""),
        instance=doc["instance"] if isinstance(doc.get("instance"), str) else None,
        request_id=doc["request_id"] if isinstance(doc.get("request_id"), str) else request_id,
        errors=tuple(
            FieldError(str(e.get("field") or ""), str(e.get("message") or ""))
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict)
        ),
        extensions={k: v for k, v in doc.items() if k not in standard},
    )


def error_of(response: httpx.Response) -> APIError:
    return error_for(
        problem_of(response), retry_after=parse_retry_after(response.headers.get("retry-after"))
    )


def check(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a success; else its `APIError`."""
    if response.status_code >= 400:
        raise error_of(response)
    return response


def json_of(response: httpx.Response) -> Any:
    check(response)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        preview = response.text[:200]
        raise InvalidResponse(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not JSON: {preview!r}"
        ) from None


def count_of(response: httpx.Response, key: str) -> int:
    """The count ``{key: N}`` of an answer (``{"purged": 3}``)."""
    doc = json_of(response)
    count = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        request = response.request
        raise InvalidResponse(
            f"{request.method} {request.url.path} answered without a count {key!r}: {doc!r}"[:300]
        )
    return count


def task_of(response: httpx.Response) -> Task:
    return Task.from_json(json_of(response))


def outcome(task: Task) -> Task:
    """The task if it succeeded; its `TaskError` otherwise (it must have ended)."""
    if task.state == "succeeded":
        return task
    error: TaskError
    if task.state == "failed":
        error = TaskFailed(task)
    elif task.state == "canceled":
        error = TaskCanceled(task)
    elif task.state == "timed_out":
        error = TaskTimedOut(task)
    else:
        error = TaskError(task)
    raise error


# -- multi-request loops -----------------------------------------------------------------

_AT_MOST = re.compile(r"at most ([0-9]+(?:\.[0-9]+)?) seconds")


class LongPoll:
    """Follows one task with ``GET /v1/tasks/{id}?wait=N`` until it ends or a deadline
    passes. Each poll asks for at most ``chunk`` seconds and sends the last ETag, so the
    server answers when the task changes (200), or a 304 when nothing did: no request is
    made except to wait on the server, and no change is missed between polls.

    Should a server (or a proxy before it) answer "unchanged" long before the time asked,
    `pause` says how long to wait before the next poll (its ``Retry-After``, else 1 s),
    so that even then the client does not poll in a tight loop.
    """

    def __init__(
        self,
        task: TaskRef,
        timeout: float | None,
        chunk: float,
        *,
        first_plain: bool,
        until_ended: bool = False,
    ) -> None:
        if timeout is not None and (not math.isfinite(timeout) or timeout < 0):
            raise ValueError("timeout must be a number of seconds >= 0, or None")
        if not chunk > 0:
            raise ValueError("the long-poll length must be positive")
        self.path = task_path(task)
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.chunk = chunk
        self.etag: str | None = None
        self.task: Task | None = None
        self.pause = 0.0
        """Seconds to wait before the next poll (0 but for a server that did not hold)."""
        self._plain = first_plain or timeout == 0
        self._until = [("until", "ended")] if until_ended else []
        """Ask the server to answer only once the task has ended (one poll, not one per
        change), for a caller that wants just the outcome."""
        self._shrunk = False
        self._asked = 0.0
        self._sent_at = 0.0

    def next_call(self) -> Call | None:
        """The next request, or None when the deadline has passed (after at least one)."""
        self._asked = 0.0
        if self._plain:
            self._plain = False
            return Call("GET", self.path)
        seconds = self.chunk
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining < 0.001:
                return None if self.task is not None else Call("GET", self.path)
            seconds = min(seconds, remaining)
        headers = {} if self.etag is None else {"If-None-Match": self.etag}
        self._asked = seconds
        self._sent_at = time.monotonic()
        query = [("wait", f"{seconds:.3f}"), *self._until]
        return Call("GET", self.path, query, None, headers, seconds)

    def feed(self, response: httpx.Response) -> Task | None:
        """The task when this answer shows it (changed), None when unchanged (304)."""
        self.pause = 0.0
        if response.status_code == 400 and self._wait_too_long(response):
            return None
        etag = response.headers.get("etag")
        if response.status_code == 304 or (etag is not None and etag == self.etag):
            self._check_held(response)
            if response.status_code == 304:
                return None
        task = task_of(response)
        self.etag = etag or self.etag
        self.task = task
        return task

    def _check_held(self, response: httpx.Response) -> None:
        """An unchanged answer: did the server hold the poll? If not, pause."""
        if not self._asked or time.monotonic() - self._sent_at >= self._asked / 2:
            return
        pause = parse_retry_after(response.headers.get("retry-after")) or 1.0
        if self.deadline is not None:
            pause = min(pause, max(0.0, self.deadline - time.monotonic()))
        self.pause = min(pause, self.chunk)

    def _wait_too_long(self, response: httpx.Response) -> bool:
        """A server whose maximum wait is below our chunk: use its maximum (once)."""
        problem = problem_of(response)
        if self._shrunk or problem.extensions.get("parameter") != "wait":
            return False
        maximum = problem.extensions.get("maximum")
        if not isinstance(maximum, int | float) or isinstance(maximum, bool):
            m = _AT_MOST.search(problem.detail)
            maximum = float(m.group(1)) if m else self.chunk / 4
        if not 0 < maximum < self.chunk:
            return False
        self.chunk = float(maximum)
        self._shrunk = True
        return True


T = TypeVar("T")


class Paging(Protocol[T]):
    """A list read a page at a time: send `next_call` (until it is None), `feed` each
    answer; the clients' ``_pages`` do that for tasks and schedules alike."""

    def next_call(self) -> Call | None: ...

    def feed(self, response: httpx.Response) -> list[T]: ...
