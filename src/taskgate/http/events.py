"""Live streams: task changes (``GET /v1/events``) and a log as it grows
(``GET /v1/tasks/{id}/log?follow=true``), both as Server-Sent Events.

Both subscribe to the service's `ChangeFeed` before they read anything, so no change
falls between what they read and what they hear; and both take what the feed read
(one read per changed task per notification batch, whatever the number of streams).

Resuming ``/v1/events``: an event's id encodes (updated_at, task id) of the change it
reports. A task's row holds only its latest state, so a replay can only give that: it
reads, in (updated_at, id) order, the tasks changed since the position named by
Last-Event-ID, from `RESUME_OVERLAP` seconds before it. The margin is there because a
change is stamped before it commits: a change committed late (another process held the
database lock) may carry an earlier time than an event already sent. The price is that
a resumed stream may repeat a task the client has already seen; its ``version`` says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from taskgate.errors import InvalidId, TaskNotFound
from taskgate.feed import Change, Interest, Watch
from taskgate.http import inputs, sse
from taskgate.http.representation import task_json
from taskgate.http.request import Request
from taskgate.http.responses import Response, dumps
from taskgate.http.routing import Endpoints, Param, Reply
from taskgate.http.schemas import (
    BAD_REQUEST,
    LAST_EVENT_ID,
    NOT_FOUND_TASK,
    STRING,
    UUID,
)
from taskgate.ids import decode_change_cursor, encode_change_cursor, parse_task_id
from taskgate.model import LogLine, Task

api = Endpoints("events")

RESUME_OVERLAP = 15.0
"""Seconds before a Last-Event-ID position that a replay starts from: more than a write
can take between its timestamp and its commit (SQLite's busy timeout is 10 s)."""
REPLAY_PAGE = 500
"""Tasks read per query while replaying."""
REPLAY_DEDUPE = 10_000
"""Versions a replay remembers, to drop live changes it has already sent."""
MAX_TASK_IDS = 500
"""Most ``task_id`` values one stream takes."""
LOG_PAGE = 500
"""Log lines read per query while following."""
MAX_LINE = 2**53

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (exact, unlike floats)."""
    return (moment - _EPOCH) // _MICROSECOND


# -- GET /v1/events --------------------------------------------------------------------


def event_data(task: Task) -> dict[str, Any]:
    """The data of an ``event: task`` (the TaskEvent schema)."""
    return {
        "id": task.id,
        "type": task.type,
        "state": task.state,
        "progress": task.progress,
        "message": task.message,
        "detailed_state": task.detailed_state,
        "updated_at": task.updated_at,
        "version": task.version,
    }


def task_event(task: Task) -> bytes:
    """One ``event: task``, with the position of this change as its id."""
    cursor = encode_change_cursor(micros(task.updated_at), task.id)
    return sse.event(dumps(event_data(task)), kind="task", id=cursor)


def _shared_event(change: Change) -> bytes:
    """The event of a change, encoded once for every stream it reaches."""
    rendered = change.rendered
    if rendered is None:
        rendered = change.rendered = task_event(change.task)
    return rendered


class TaskEvents:
    """One ``/v1/events`` stream: a replay from Last-Event-ID if given, then live."""

    __slots__ = ("_caught_up", "_replayed", "request", "resume", "watch")

    def __init__(self, request: Request, watch: Watch, resume: tuple[int, str] | None) -> None:
        self.request = request
        self.watch = watch
        self.resume = resume
        self._caught_up = request.service.clock()
        """When the stream last had everything: the start of an overflow replay."""
        self._replayed: dict[str, int] | None = None

    async def run(self, channel: sse.Channel) -> None:
        watch = self.watch
        if self.resume is not None:
            since = self.resume[0] / 1e6 - RESUME_OVERLAP
            await self._replay(channel, since, skip=self.resume)
        while True:
            if watch.overflowed:  # it fell behind by more than the watch holds
                watch.overflowed = False
                watch.take()
                await self._replay(channel, self._caught_up - RESUME_OVERLAP, skip=None)
                continue
            changes = watch.take()
            if changes:
                self._caught_up = self.request.service.clock()
                replayed, self._replayed = self._replayed, None
                chunk = b"".join(
                    _shared_event(c)
                    for c in changes
                    if replayed is None or replayed.get(c.task.id, 0) < c.task.version
                )
                if chunk:
                    await channel.write(chunk)
                continue
            if watch.closed:
                return
            if not await watch.wait(sse.KEEPALIVE_INTERVAL):
                await channel.write(sse.KEEPALIVE)

    async def _replay(
        self, channel: sse.Channel, since: float, *, skip: tuple[int, str] | None
    ) -> None:
        """Every task changed since ``since`` (epoch seconds), in change order."""
        service = self.request.service
        replayed: dict[str, int] | None = {}
        position: tuple[float, str] | None = (since, "")
        while position is not None:
            self._caught_up = service.clock()
            tasks, position = await service.changes(
                position, self.watch.interest, limit=REPLAY_PAGE
            )
            events = []
            for task in tasks:
                if skip is not None and task.id == skip[1] and micros(task.updated_at) == skip[0]:
                    continue  # the very event the client named: it has it
                if replayed is not None:
                    replayed[task.id] = task.version
                    if len(replayed) > REPLAY_DEDUPE:
                        replayed = None  # too many to remember: allow repeats instead
                events.append(task_event(task))
            if events:
                await channel.write(b"".join(events))
        self._replayed = replayed

    def close(self) -> None:
        self.watch.close()


@api.get(
    "/v1/events",
    name="streamEvents",
    summary="Stream task changes",
    params=(
        Param(
            "task_id",
            "query",
            UUID,
            f"Only these tasks (repeat, or separate with commas; at most {MAX_TASK_IDS})",
            repeat=True,
        ),
        Param("type", "query", STRING, "Only tasks of these operations", repeat=True),
        Param(
            "state",
            "query",
            STRING,
            "Only changes that leave the task in one of these states",
            repeat=True,
        ),
        LAST_EVENT_ID,
    ),
    responses={
        200: Reply(
            "Server-Sent Events, one `event: task` per change, until the client leaves",
            "TaskEventStream",
            media="text/event-stream",
        ),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
    },
)
async def stream_events(request: Request) -> Response:
    """Task changes as Server-Sent Events: after each change of a task you may see (your
    tenant's; every tenant's with an admin key), an ``event: task`` whose data is the
    task's id, type, state, progress, message, detailed_state, updated_at and version
    just after the change (the TaskEvent schema). ``task_id``, ``type`` and ``state``
    narrow the stream; a ``task_id`` you cannot see is a 404.

    Changes are coalesced, not queued: a task that changes faster than the stream is
    read shows its latest state, not every state in between. ``version`` rises with
    every change: an event with a version you already have repeats what you know.

    To resume, reconnect with ``Last-Event-ID`` set to the id of the last event you
    received (EventSource does this itself). The stream first replays, in the order they
    changed, every task that changed since that event, each in its current state, then
    goes live. The replay starts a few seconds before the event, so that no change is
    missed: tasks you have already seen may come again (compare ``version``). Without
    Last-Event-ID the stream starts with the changes from now on. An id this server did
    not give out is a 400. A comment line ``: keep-alive`` comes after 15 s of silence.
    """
    query = request.query
    raw_ids = inputs.split_values("task_id", query.get("task_id", ()))
    if len(raw_ids) > MAX_TASK_IDS:
        raise inputs.invalid("task_id", f"at most {MAX_TASK_IDS} task ids per stream")
    try:
        ids = frozenset(parse_task_id(raw) for raw in raw_ids)
    except InvalidId as exc:
        raise inputs.invalid("task_id", exc.message) from None
    interest = Interest(
        ids=ids,
        types=frozenset(inputs.split_values("type", query.get("type", ()))),
        states=frozenset(inputs.parse_states("state", query.get("state", ()))),
        tenant=request.principal.scope,
    )
    resume = None
    raw_resume = sse.last_event_id(request)
    if raw_resume is not None:
        try:
            resume = decode_change_cursor(raw_resume)
        except ValueError as exc:
            raise sse.bad_last_event_id(str(exc)) from None
    watch = request.service.feed.watch(interest)
    try:
        if ids:
            found = await request.service.get_many(sorted(ids))
            visible = {t.id for t in found if interest.tenant in (None, t.tenant)}
            missing = sorted(ids - visible)
            if missing:
                raise TaskNotFound(f"no task {missing[0]}")
    except BaseException:
        watch.close()
        raise
    return sse.EventStream(request, TaskEvents(request, watch, resume))


# -- GET /v1/tasks/{id}/log?follow=true ----------------------------------------------


def line_event(line: LogLine) -> bytes:
    data = dumps({"n": line.n, "t": line.t, "ts": line.ts, "level": line.level})
    return sse.event(data, kind="line", id=str(line.n))


class LogFollow:
    """One followed log: the lines after ``start`` as they come, then the end."""

    __slots__ = ("request", "start", "task", "watch")

    def __init__(self, request: Request, task: Task, start: int, watch: Watch) -> None:
        self.request = request
        self.task = task
        self.start = start
        self.watch = watch

    async def run(self, channel: sse.Channel) -> None:
        service = self.request.service
        task, sent, watch = self.task, self.start, self.watch
        while True:
            while sent < task.log_count:
                lines = await service.lines(task.id, start=sent, limit=LOG_PAGE)
                if not lines:  # counted but not there: nothing will fill the gap
                    sent = task.log_count
                    break
                await channel.write(b"".join(line_event(line) for line in lines))
                sent = lines[-1].n
            if task.terminal and sent >= task.log_count:
                await channel.write(sse.event(task_json(task), kind="end"))
                return
            woke = await watch.wait(sse.KEEPALIVE_INTERVAL)
            if watch.closed:
                return
            if not woke:
                await channel.write(sse.KEEPALIVE)
            if not woke or watch.overflowed:  # quiet for long: a notification may be lost
                watch.overflowed = False
                try:
                    task = await service.get(task.id)
                except TaskNotFound:  # deleted meanwhile: its log is gone too
                    return
            task = watch.latest(task)

    def close(self) -> None:
        self.watch.close()


def _start(request: Request) -> int:
    """Where following starts: after Last-Event-ID (a line number), else ``start``."""
    raw = sse.last_event_id(request)
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_LINE:
            raise sse.bad_last_event_id(f"{raw!r} is not a line number")
        return int(raw)
    return inputs.int_param("start", request.query_one("start"), 0, 0, MAX_LINE)


async def follow_log(request: Request) -> Response:
    """The answer to ``GET /v1/tasks/{id}/log?follow=true``."""
    if request.query_one("limit") is not None:
        raise inputs.invalid("limit", "a followed log sends every line: leave limit out")
    start = _start(request)
    task_id = parse_task_id(request.path_params["id"])
    service = request.service
    watch = service.feed.watch(Interest(ids=frozenset((task_id,))))
    try:
        task = await service.get(task_id, tenant=request.principal.scope)
    except BaseException:
        watch.close()
        raise
    return sse.EventStream(request, LogFollow(request, task, start, watch))
