"""`Client`: the blocking SDK. `AsyncClient` (``_async_client.py``) is its twin; both
build their requests and read their answers with ``_base.py`` and ``_streams.py``."""

from __future__ import annotations

import builtins
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, Unpack

import httpx

from taskgate.client import _base, _groups, _overview, _retry, _schedules, _task_list
from taskgate.client._base import (
    DEFAULT_TIMEOUT,
    LIST_PAGE,
    LOG_PAGE,
    LONG_POLL,
    Call,
    GroupRef,
    LongPoll,
    Paging,
    TaskRef,
)
from taskgate.client._groups import GROUP_POLL, GroupPoll, GroupTask
from taskgate.client._models import (
    Group,
    LogLine,
    LogPage,
    Operation,
    Page,
    Schedule,
    SchedulePage,
    SubmittedGroup,
    Task,
    TaskEvent,
)
from taskgate.client._overview import Stats, Whoami, Worker
from taskgate.client._retry import Retry
from taskgate.client._schedules import RunOptions, ScheduleChanges, SchedulePager, ScheduleRef
from taskgate.client._streams import EventFollow, Follow, LogFollow
from taskgate.client._task_list import Pager, TaskFilters
from taskgate.client.errors import GroupWaitTimeout, InvalidResponse, WaitTimeout

T = TypeVar("T")

_sleep = time.sleep  # one name for tests to replace


class Stream(Generic[T]):
    """An iterator over a server-sent event stream that reconnects by itself.

    Close it (or use it in a ``with`` block) when leaving it before its end: that closes
    the connection. ``last_event_id`` is where a new stream could resume.
    """

    def __init__(self, follow: Follow[T], iterator: Generator[T, None, None]) -> None:
        self._follow = follow
        self._iterator = iterator

    @property
    def last_event_id(self) -> str | None:
        return self._follow.last_event_id

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._iterator)

    def close(self) -> None:
        """Stop following: the connection is closed."""
        self._iterator.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogStream(Stream[LogLine]):
    """A task's log lines as they are written; ends when the task has ended and every
    line has come. ``task`` is then the ended task."""

    @property
    def task(self) -> Task | None:
        assert isinstance(self._follow, LogFollow)
        return self._follow.task


class EventStream(Stream[TaskEvent]):
    """Task changes as they happen; it does not end by itself."""


class Client:
    """A taskgate API client (blocking).

        with Client("http://127.0.0.1:8006", api_key="tgk_...") as client:
            task = client.submit("vzdump", vmid=100)
            done = client.wait(task)          # the succeeded task, or TaskFailed, ...

    ``base_url`` defaults to ``$TASKGATE_URL`` (else http://127.0.0.1:8006) and
    ``api_key`` to ``$TASKGATE_API_KEY``; the key goes out as ``Authorization: Bearer``.
    ``timeout`` bounds connecting and each read (long polls and streams add what they
    wait on purpose). ``transport`` replaces the network (``httpx.MockTransport``, an
    ASGI transport, ...). ``retry`` says how connection errors and 503s are retried
    (`Retry`); ``long_poll`` is the length of each ``?wait=`` request of `wait`.
    """

    def __init__(
        self,
        base_url: str | httpx.URL | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        long_poll: float = LONG_POLL,
    ) -> None:
        self.base_url = _base.resolve_base_url(base_url)
        self.retry = Retry() if retry is None else retry
        self.long_poll = long_poll
        self._timeout = _base.make_timeout(timeout)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_base.default_headers(_base.resolve_api_key(api_key), headers),
            timeout=self._timeout,
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------

    def _send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """Send ``call``, retrying as `Retry` allows; the response (not yet checked)."""
        failures = 0
        while True:
            request = call.build(self._http, self._timeout)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failures += 1
                delay = _retry.retry_delay(self.retry, call.replayable, failures, error=exc)
                if delay is None:
                    raise _retry.transport_error(exc) from exc
            else:
                if response.status_code < 400:
                    return response
                failures += 1
                delay = _retry.retry_delay(self.retry, call.replayable, failures, response=response)
                if delay is None:
                    if stream:
                        response.read()
                    return response
                response.close()
            _sleep(delay)

    def _json(self, call: Call) -> Any:
        return _base.json_of(self._send(call))

    def _task(self, call: Call) -> Task:
        return _base.task_of(self._send(call))

    def _schedule(self, call: Call) -> Schedule:
        return _schedules.schedule_of(self._send(call))

    def _group(self, call: Call) -> Group:
        return _groups.group_of(self._send(call))

    # -- submitting --------------------------------------------------------------------

    def submit(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        object_id: str | int | None = None,
        priority: int | None = None,
        labels: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        scheduled_at: datetime | str | None = None,
        timeout: float | timedelta | None = None,
        max_attempts: int | None = None,
        group_id: GroupRef | None = None,
        exclusive_resources: str | Iterable[str] | None = None,
        shared_resources: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Submit a task of operation ``type``; the task as stored (usually queued).

        Parameters come as keyword arguments (``submit("vzdump", vmid=100)``) or as a
        dict (``submit("vzdump", {"vmid": 100})``, which wins for a parameter named like
        an option). The options set the task's object id, priority, labels, start
        (``delay`` seconds from now, or ``scheduled_at``), ``timeout`` (seconds the
        handler may run) and ``max_attempts``; ``group_id`` the group it joins (any id:
        one of `submit_group`'s, or a name of yours); ``exclusive_resources`` and
        ``shared_resources`` what it reserves besides its operation's own (it does not
        run while a task holding one of them in a conflicting mode runs).

        An ``Idempotency-Key`` is always sent (a new one when not given), so a submit
        retried after a dropped connection cannot create a second task; the same key
        given again returns the first task.
        """
        call = _base.submit_call(
            type,
            params,
            kwargs,
            idempotency_key=idempotency_key,
            object_id=object_id,
            priority=priority,
            labels=labels,
            delay=delay,
            scheduled_at=scheduled_at,
            timeout=timeout,
            max_attempts=max_attempts,
            group_id=group_id,
            exclusive_resources=exclusive_resources,
            shared_resources=shared_resources,
        )
        return self._task(call)

    def submit_and_wait(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        wait_timeout: float | None = None,
        idempotency_key: str | None = None,
        object_id: str | int | None = None,
        priority: int | None = None,
        labels: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        scheduled_at: datetime | str | None = None,
        timeout: float | timedelta | None = None,
        max_attempts: int | None = None,
        group_id: GroupRef | None = None,
        exclusive_resources: str | Iterable[str] | None = None,
        shared_resources: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> Task:
        """`submit`, then `wait` (for at most ``wait_timeout`` seconds)."""
        task = self.submit(
            type,
            params,
            idempotency_key=idempotency_key,
            object_id=object_id,
            priority=priority,
            labels=labels,
            delay=delay,
            scheduled_at=scheduled_at,
            timeout=timeout,
            max_attempts=max_attempts,
            group_id=group_id,
            exclusive_resources=exclusive_resources,
            shared_resources=shared_resources,
            **kwargs,
        )
        return self.wait(task, timeout=wait_timeout)

    # -- reading -----------------------------------------------------------------------

    def get(self, task: TaskRef) -> Task:
        """The task now. `NotFound` if there is no such task (or it is another
        tenant's)."""
        return self._task(Call("GET", _base.task_path(task)))

    def list(
        self,
        *,
        limit: int | None = None,
        page_size: int = LIST_PAGE,
        **filters: Unpack[TaskFilters],
    ) -> Generator[Task, None, None]:
        """Every task that matches the `TaskFilters`, newest first, fetched a page at a
        time as the iteration goes (at most ``limit`` tasks when given). ``state`` and
        ``type`` take one value or several; ``labels`` must all match; ``tenant`` is for
        admin keys; ``schedule_id`` (a schedule's id, or the `Schedule`) keeps its runs,
        ``group_id`` a group's tasks, ``parent_id`` a task's children, ``resource`` the
        tasks reserving it. Tasks moved to history are left out unless
        ``archived=True`` (only them) or ``archived="any"`` (both)."""
        query = _task_list.list_filters(filters)
        if limit is not None:
            page_size = max(1, min(page_size, limit))
        pager = Pager(query, page_size)
        return self._pages(pager, limit)

    def _pages(self, pager: Paging[T], limit: int | None) -> Generator[T, None, None]:
        count = 0
        while (call := pager.next_call()) is not None:
            for item in pager.feed(self._send(call)):
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item

    def list_page(
        self,
        *,
        cursor: str | None = None,
        page_size: int = LIST_PAGE,
        **filters: Unpack[TaskFilters],
    ) -> Page:
        """One page of the task list (`list` iterates them all); pass the page's
        ``next_cursor`` as ``cursor`` for the next."""
        query = _task_list.list_filters(filters)
        return Page.from_json(self._json(_task_list.list_call(query, cursor, page_size)))

    def log(self, task: TaskRef, start: int = 0, limit: int | None = None) -> LogPage:
        """Log lines ``start+1 ..`` (``n`` counts from 1): at most ``limit`` of them, or
        every line written so far when ``limit`` is None."""
        if limit is not None:
            return LogPage.from_json(self._json(_base.log_call(task, start, limit)))
        first = LogPage.from_json(self._json(_base.log_call(task, start, LOG_PAGE)))
        lines = list(first.lines)
        while lines and start + len(lines) < first.total:
            page = LogPage.from_json(self._json(_base.log_call(task, start + len(lines), LOG_PAGE)))
            if not page.lines:
                break
            lines.extend(page.lines)
        return LogPage(first.task_id, start, max(first.total, start + len(lines)), lines)

    def follow_log(self, task: TaskRef, start: int = 0) -> LogStream:
        """The log lines from ``start+1`` on, as they are written, until the task has
        ended (Server-Sent Events; a dropped connection is resumed where it stopped).
        The stream's ``task`` is then the ended task."""
        follow = LogFollow(task, start)
        return LogStream(follow, self._follow(follow))

    def events(
        self,
        *,
        task_id: TaskRef | Iterable[TaskRef] | None = None,
        type: str | Iterable[str] | None = None,
        state: str | Iterable[str] | None = None,
        last_event_id: str | None = None,
    ) -> EventStream:
        """Changes of the tasks you can see (filtered by task ids, types or states) as
        they happen, as Server-Sent Events; resumed after a dropped connection, or from
        ``last_event_id`` (an event's ``event_id``). It does not end by itself."""
        follow = EventFollow(
            _base.ids_of(task_id),
            _base.values_of(type),
            _base.values_of(state),
            last_event_id=last_event_id,
        )
        return EventStream(follow, self._follow(follow))

    def _follow(self, follow: Follow[T]) -> Generator[T, None, None]:
        failures = 0
        while not follow.finished:
            response = self._send(follow.call(), stream=True)
            try:
                _base.check(response)
                follow.connected(response.headers.get("content-type", ""))
                for chunk in response.iter_bytes():
                    items = follow.feed(chunk)
                    if items or follow.finished:
                        failures = 0
                    yield from items
                    if follow.finished:
                        return
            except httpx.TransportError as exc:
                failures += 1
                if failures >= self.retry.attempts:
                    raise _retry.transport_error(exc) from exc
            else:
                failures += 1  # closed before its end: count it, so a loop cannot spin
                if failures >= self.retry.attempts:
                    raise InvalidResponse(f"{follow.path}: the stream keeps closing early")
            finally:
                response.close()
            _sleep(follow.reconnect_delay(self.retry, failures))

    def operations(self) -> builtins.list[Operation]:
        """The operations the server runs, with their parameters' JSON Schema."""
        doc = self._json(Call("GET", "/v1/operations"))
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, builtins.list):
            raise InvalidResponse("GET /v1/operations answered without 'items'")
        return [Operation.from_json(item) for item in items]

    def whoami(self) -> Whoami:
        """The tenant, user and role this client's key acts as (a check of the key)."""
        return Whoami.from_json(self._json(_overview.WHOAMI))

    def workers(self) -> builtins.list[Worker]:
        """Every worker the store knows, with its running tasks (admin keys)."""
        return _overview.workers_of(self._json(_overview.WORKERS))

    def stats(
        self,
        *,
        window: float | timedelta | None = None,
        buckets: int | None = None,
        tenant: str | None = None,
    ) -> Stats:
        """Tasks per state, the queue, the task waiting longest, and the tasks that
        ended per bucket over the last ``window`` (default an hour, at most 7 days) in at
        most ``buckets`` buckets (default 60); ``tenant`` is for admin keys."""
        seconds = None if window is None else _base.seconds_value("window", window)
        return Stats.from_json(self._json(_overview.stats_call(seconds, buckets, tenant)))

    # -- changing ----------------------------------------------------------------------

    def cancel(self, task: TaskRef) -> Task:
        """Cancel: a task not started yet ends canceled at once; a running one becomes
        ``canceling`` and its handler is asked to stop. `Conflict` if it has ended."""
        return self._task(Call("POST", _base.task_path(task, "/cancel")))

    def suspend(self, task: TaskRef) -> Task:
        """Hold a queued or scheduled task: it keeps its place in time but no worker
        claims it until `resume`. `Conflict` if it has started or ended."""
        return self._task(Call("POST", _base.task_path(task, "/suspend")))

    def resume(self, task: TaskRef) -> Task:
        """Let a suspended task wait again (queued, or scheduled if its time is still to
        come). `Conflict` if it is not suspended."""
        return self._task(Call("POST", _base.task_path(task, "/resume")))

    def acknowledge(self, task: TaskRef) -> Task:
        """Mark the task as seen (acknowledged_at/by); its state does not change."""
        return self._task(Call("POST", _base.task_path(task, "/acknowledge")))

    def retry_task(self, task: TaskRef) -> Task:
        """Run a task that ended failed, canceled or timed out again, as a new task (same
        type, parameters, object id, priority and labels, plus label ``retry_of``); the
        new task. `Conflict` if the task has not ended or succeeded. (Not ``retry``: that
        is the client's policy for retrying requests.)"""
        return self._task(Call("POST", _base.task_path(task, "/retry")))

    def acknowledge_many(
        self,
        ids: Iterable[TaskRef] | None = None,
        *,
        state: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
    ) -> int:
        """Acknowledge these tasks, or every task matching ``state``/``type``; how many
        were acknowledged."""
        doc = self._json(_base.acknowledge_many_call(ids, state, type))
        count = doc.get("acknowledged") if isinstance(doc, dict) else None
        if not isinstance(count, int):
            raise InvalidResponse("acknowledge answered without a count")
        return count

    def delete(self, task: TaskRef) -> None:
        """Delete an ended task and its log. `Conflict` if it is still going."""
        _base.check(self._send(Call("DELETE", _base.task_path(task))))

    def purge(
        self,
        *,
        state: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        finished_before: datetime | str | timedelta | None = None,
        tenant: str | None = None,
    ) -> int:
        """Delete, with their logs, the ended tasks that match; how many were deleted.
        For admin keys (`Forbidden` otherwise).

        ``state`` (ended states only: succeeded, failed, canceled, timed_out) and
        ``type`` take one value or several; ``finished_before`` is an aware datetime, an
        RFC 3339 string, or a timedelta meaning "finished longer ago than this";
        ``tenant`` narrows it to one tenant (default: every tenant). At least one of
        ``state`` and ``finished_before`` is required (ValueError before anything is
        sent); ``finished_before=timedelta(0)`` selects every ended task. Tasks still
        waiting or running are never deleted.

            client.purge(state="succeeded", finished_before=timedelta(days=7))
        """
        call = _base.purge_call(
            state=state, type=type, finished_before=finished_before, tenant=tenant
        )
        return _base.count_of(self._send(call), "purged")

    # -- schedules ---------------------------------------------------------------------

    def create_schedule(
        self,
        name: str,
        type: str,
        recurrence: str,
        params: Mapping[str, Any] | None = None,
        *,
        timezone: str | None = None,
        enabled: bool | None = None,
        overlap: str | None = None,
        failure_threshold: int | None = None,
        schedule_threshold: float | timedelta | None = None,
        options: RunOptions | Mapping[str, Any] | None = None,
    ) -> Schedule:
        """Create schedule ``name`` (unique in your tenant) that runs operation ``type``
        with ``params`` on ``recurrence``: an ISO 8601 repeating interval
        (``"R5/2026-01-01T00:00:00Z/PT1H"``, ``"PT10M"``) or a cron expression
        (``"0 3 * * *"``, ``"@daily"``) evaluated in ``timezone`` (default UTC).

        ``overlap`` is ``"skip"`` (the default: a run due while the last one goes is
        skipped) or ``"queue"`` (it runs after). ``failure_threshold`` disables the
        schedule after that many failed runs in a row; a run more than
        ``schedule_threshold`` seconds late notes it in its log. ``options`` are the
        task options of every run (`RunOptions`: object_id, priority, labels, timeout,
        max_attempts). ``enabled=False`` creates it paused.

        `Conflict` if the name is taken, `NotFound` for an unknown operation,
        `UnprocessableEntity` naming each bad field (a recurrence that does not parse).
        """
        call = _schedules.create_schedule_call(
            name,
            type,
            recurrence,
            params,
            timezone=timezone,
            enabled=enabled,
            overlap=overlap,
            failure_threshold=failure_threshold,
            schedule_threshold=schedule_threshold,
            options=options,
        )
        return self._schedule(call)

    def get_schedule(self, schedule: ScheduleRef) -> Schedule:
        """The schedule (by id, or by name in your tenant) now, with its counters and
        next run. `NotFound` if there is none."""
        return self._schedule(Call("GET", _schedules.schedule_path(schedule)))

    def list_schedules(
        self,
        *,
        type: str | Iterable[str] | None = None,
        enabled: bool | None = None,
        limit: int | None = None,
        page_size: int = LIST_PAGE,
    ) -> Generator[Schedule, None, None]:
        """Every schedule that matches, by name, fetched a page at a time as the
        iteration goes (at most ``limit`` when given). ``type`` takes one operation or
        several; ``enabled`` keeps the enabled (or the disabled) ones."""
        filters = _schedules.schedule_filters(type=type, enabled=enabled)
        if limit is not None:
            page_size = max(1, min(page_size, limit))
        return self._pages(SchedulePager(filters, page_size), limit)

    def list_schedules_page(
        self,
        *,
        after: str | None = None,
        page_size: int = LIST_PAGE,
        type: str | Iterable[str] | None = None,
        enabled: bool | None = None,
    ) -> SchedulePage:
        """One page of the schedule list (`list_schedules` iterates them all); pass the
        page's ``next_after`` as ``after`` for the next."""
        filters = _schedules.schedule_filters(type=type, enabled=enabled)
        call = _schedules.schedule_list_call(filters, after, page_size)
        return SchedulePage.from_json(self._json(call))

    def update_schedule(
        self, schedule: ScheduleRef, **changes: Unpack[ScheduleChanges]
    ) -> Schedule:
        """Change some of the schedule's fields (`ScheduleChanges`); the others stay.
        ``update_schedule("nightly", recurrence="0 4 * * *", failure_threshold=None)``.

        ``params`` and ``options`` replace the old ones whole. A new recurrence or time
        zone (or enabling it) computes the next run from now. `UnprocessableEntity`
        naming each bad field."""
        return self._schedule(_schedules.update_schedule_call(schedule, changes))

    def pause_schedule(self, schedule: ScheduleRef) -> Schedule:
        """Disable the schedule: no run starts until `resume_schedule` (a running one
        goes on)."""
        return self._schedule(Call("POST", _schedules.schedule_path(schedule, "/pause")))

    def resume_schedule(self, schedule: ScheduleRef) -> Schedule:
        """Enable the schedule again: its next run is the first one after now (runs
        missed while paused are not made up), and past failures are forgotten."""
        return self._schedule(Call("POST", _schedules.schedule_path(schedule, "/resume")))

    def run_schedule(self, schedule: ScheduleRef) -> Task:
        """Submit a run of the schedule now, besides its recurrence; the run's task
        (`wait` for it like any other). `Conflict` while its last run has not ended: a
        schedule never runs twice at once."""
        return self._task(Call("POST", _schedules.schedule_path(schedule, "/run")))

    def delete_schedule(self, schedule: ScheduleRef) -> None:
        """Delete the schedule; its tasks, ended or running, stay."""
        _base.check(self._send(Call("DELETE", _schedules.schedule_path(schedule))))

    # -- groups ------------------------------------------------------------------------

    def submit_group(self, tasks: Iterable[GroupTask | Mapping[str, Any]]) -> SubmittedGroup:
        """Submit several tasks as one new group, all or nothing; the group's id and its
        tasks, in the order given. Each item is a `GroupTask`: what ``POST /v1/tasks``
        takes (``{"type": "vzdump", "params": {"vmid": 100}, "priority": 5}``), without
        a group id. `UnprocessableEntity` naming the item and field at fault
        (``tasks.1.params.vmid``), and then no task is stored.

        Not retried once it may have reached the server: the API takes no idempotency key
        for a group."""
        return _groups.submitted_group_of(self._send(_groups.submit_group_call(tasks)))

    def get_group(self, group: GroupRef) -> Group:
        """The group's summary now: how many of its tasks are in each state, counting
        those in history. `NotFound` if no task of yours is in it."""
        return self._group(Call("GET", _groups.group_path(group)))

    def cancel_group(self, group: GroupRef) -> Group:
        """Cancel every task of the group still going (as `cancel` does one); the
        summary after."""
        return self._group(Call("POST", _groups.group_path(group, "/cancel")))

    def suspend_group(self, group: GroupRef) -> Group:
        """Suspend every waiting task of the group (running ones go on); the summary
        after."""
        return self._group(Call("POST", _groups.group_path(group, "/suspend")))

    def resume_group(self, group: GroupRef) -> Group:
        """Resume every suspended task of the group; the summary after."""
        return self._group(Call("POST", _groups.group_path(group, "/resume")))

    def watch_group(
        self, group: GroupRef, *, timeout: float | None = None, poll: float = GROUP_POLL
    ) -> Generator[Group, None, None]:
        """The group's summary now, then again each time it changes, until every task of
        it has ended (the last one yielded is ``ended``). The summary is read at growing
        intervals, at most ``poll`` seconds apart. Raises `GroupWaitTimeout` if
        ``timeout`` seconds pass first."""
        return self._watch_group(GroupPoll(group, timeout, poll))

    def _watch_group(self, poll: GroupPoll) -> Generator[Group, None, None]:
        while (call := poll.next_call()) is not None:
            seen = poll.feed(self._send(call))
            if seen is not None:
                yield seen
                if seen.ended:
                    return
            _sleep(poll.pause)
        assert poll.group is not None
        raise GroupWaitTimeout(poll.group, poll.timeout or 0.0)

    def wait_group(
        self, group: GroupRef, timeout: float | None = None, poll: float = GROUP_POLL
    ) -> Group:
        """Wait until every task of the group has ended; its summary then (its
        ``states`` say how they ended: a failed task raises nothing here). Raises
        `GroupWaitTimeout` if ``timeout`` seconds pass first. See `watch_group`."""
        last: Group | None = None
        for last in self.watch_group(group, timeout=timeout, poll=poll):  # noqa: B007
            pass
        assert last is not None
        return last

    # -- waiting -----------------------------------------------------------------------

    def watch(self, task: TaskRef, *, timeout: float | None = None) -> Generator[Task, None, None]:
        """The task now, then again each time it changes (state, progress, message),
        until it has ended: the last one yielded is the ended task. Follows it with
        long polls (``?wait=``), so it never polls in a loop. Raises `WaitTimeout` if
        ``timeout`` seconds pass first."""
        poll = LongPoll(task, timeout, self.long_poll, first_plain=True)
        return self._watch(poll)

    def _watch(self, poll: LongPoll) -> Generator[Task, None, None]:
        while (call := poll.next_call()) is not None:
            seen = poll.feed(self._send(call))
            if poll.pause:
                _sleep(poll.pause)
            if seen is not None:
                yield seen
                if seen.terminal:
                    return
        assert poll.task is not None
        raise WaitTimeout(poll.task, poll.timeout or 0.0)

    def wait(self, task: TaskRef, timeout: float | None = None) -> Task:
        """Wait until the task has ended; the task if it succeeded.

        Raises `TaskFailed` (with the remote error's type, message and traceback),
        `TaskCanceled` or `TaskTimedOut` if it ended otherwise, and `WaitTimeout` if
        ``timeout`` seconds pass first (None: wait as long as it takes). Each request is
        a long poll of at most ``long_poll`` seconds that the server answers as soon as
        the task changes.
        """
        poll = LongPoll(task, timeout, self.long_poll, first_plain=False, until_ended=True)
        last: Task | None = None
        for last in self._watch(poll):  # noqa: B007 - the last one is the ended task
            pass
        assert last is not None
        return _base.outcome(last)
