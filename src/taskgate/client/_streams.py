"""The two event streams of the API, as I/O-free state: what to request, what each
Server-Sent Event means, and where to resume after a dropped connection.

- `LogFollow`: ``GET /v1/tasks/{id}/log?follow=true``; ``line`` events are log lines
  (their ``id`` is the line number), and one ``end`` event carries the ended task and
  closes the stream.
- `EventFollow`: ``GET /v1/events``; ``task`` events are task changes, with an opaque
  ``id``. The stream has no end.

Either resumes with ``Last-Event-ID`` (the last id received), so a reconnection loses
nothing; a task change the resumed ``/v1/events`` repeats (its replay starts a little
early) is recognised by its ``version`` and dropped. The clients run the loop (`Client._follow`,
`AsyncClient._follow`): connect, feed the body to a fresh `SSEParser`, hand each event
to `handle`, and on a dropped connection wait `reconnect_delay` and connect again.
"""

from __future__ import annotations

import codecs
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

import orjson

from taskgate.client._base import STREAM_READ_TIMEOUT, Call, TaskRef, task_path
from taskgate.client._models import LogLine, Task, TaskEvent
from taskgate.client._retry import Retry
from taskgate.client._sse import ServerSentEvent, SSEParser
from taskgate.client.errors import InvalidResponse

T = TypeVar("T")

EVENT_STREAM = "text/event-stream"
REMEMBERED_VERSIONS = 10_000
"""Tasks whose last delivered version an event stream remembers, to drop repeats."""


class Follow(Generic[T]):
    """One stream being followed, across however many connections it takes."""

    def __init__(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        last_event_id: str | None,
        read_timeout: float = STREAM_READ_TIMEOUT,
    ) -> None:
        self.path = path
        self.params = params
        self.last_event_id = last_event_id or None
        """The id of the last event received: sent as ``Last-Event-ID`` on reconnecting."""
        self.read_timeout = read_timeout
        self.finished = False
        self.retry_ms: int | None = None
        self.parser = SSEParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def call(self) -> Call:
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return Call(
            "GET", self.path, self.first_params(), None, headers, read_timeout=self.read_timeout
        )

    def first_params(self) -> Sequence[tuple[str, str]]:
        return self.params

    def connected(self, content_type: str) -> None:
        """A new connection answered 200: start parsing its body afresh."""
        if not content_type.startswith(EVENT_STREAM):
            raise InvalidResponse(f"{self.path} answered {content_type!r}, not an event stream")
        self.parser = SSEParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, chunk: bytes) -> list[T]:
        """The items completed by this piece of the body."""
        items: list[T] = []
        for event in self.parser.feed(self._decoder.decode(chunk)):
            if self.parser.retry is not None:
                self.retry_ms = self.parser.retry
            item = self.handle(event)
            if event.id:
                self.last_event_id = event.id
            if item is not None:
                items.append(item)
            if self.finished:
                break
        return items

    def handle(self, event: ServerSentEvent) -> T | None:
        raise NotImplementedError

    def reconnect_delay(self, retry: Retry, failures: int) -> float:
        """Seconds before reconnecting: what the stream asked (``retry:``), else the
        backoff for this many failures in a row."""
        if self.retry_ms is not None and failures <= 1:
            return min(self.retry_ms / 1000, retry.max_backoff)
        return retry.backoff_delay(max(failures, 1))


def _json(event: ServerSentEvent) -> object:
    try:
        return orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise InvalidResponse(
            f"an SSE {event.event!r} event whose data is not JSON: {event.data[:200]!r}"
        ) from None


class LogFollow(Follow[LogLine]):
    """``GET /v1/tasks/{id}/log?follow=true`` from line ``start + 1``."""

    def __init__(self, task: TaskRef, start: int, read_timeout: float = STREAM_READ_TIMEOUT):
        if start < 0:
            raise ValueError("start must not be negative")
        super().__init__(task_path(task, "/log"), (), None, read_timeout)
        self.start = start
        self.task: Task | None = None
        """The task as it ended, once the ``end`` event has come."""

    def first_params(self) -> Sequence[tuple[str, str]]:
        # after a line has come, Last-Event-ID says where to resume
        start = self.start
        if self.last_event_id is not None and self.last_event_id.isdigit():
            start = int(self.last_event_id)
        return [("follow", "true"), ("start", str(start))]

    def handle(self, event: ServerSentEvent) -> LogLine | None:
        if event.event == "line":
            line = LogLine.from_json(_json(event))
            if not event.id:  # the server should number lines; resume by n if not
                self.last_event_id = str(line.n)
            return line
        if event.event == "end":
            self.task = Task.from_json(_json(event))
            self.finished = True
        return None  # other event types: from a newer server, not ours to read


class EventFollow(Follow[TaskEvent]):
    """``GET /v1/events`` with filters."""

    def __init__(
        self,
        task_ids: Iterable[str],
        types: Iterable[str],
        states: Iterable[str],
        last_event_id: str | None,
        read_timeout: float = STREAM_READ_TIMEOUT,
    ) -> None:
        params = [
            *(("task_id", t) for t in task_ids),
            *(("type", t) for t in types),
            *(("state", s) for s in states),
        ]
        super().__init__("/v1/events", params, last_event_id, read_timeout)
        self._versions: OrderedDict[str, int] = OrderedDict()

    def handle(self, event: ServerSentEvent) -> TaskEvent | None:
        if event.event != "task":
            return None
        change = TaskEvent.from_json(_json(event), event.id or None)
        if change.version is not None:
            # a resumed stream replays from a little before where it stopped, so it may
            # repeat a change already delivered: its version says so
            seen = self._versions.get(change.task_id)
            if seen is not None and change.version <= seen:
                return None
            self._versions[change.task_id] = change.version
            self._versions.move_to_end(change.task_id)
            if len(self._versions) > REMEMBERED_VERSIONS:
                self._versions.popitem(last=False)
        return change
