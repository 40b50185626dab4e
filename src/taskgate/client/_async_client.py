"""`AsyncClient`: the asyncio SDK, method for method the twin of `Client`
(``_client.py``); requests are built and answers read by the same ``_base.py`` and
``_streams.py``, so only the waiting differs."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
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

_sleep = asyncio.sleep  # one name for tests to replace


class AsyncStream(Generic[T]):
    """An async iterator over a server-sent event stream that reconnects by itself.

    Close it (``await stream.aclose()``, or ``async with``) when leaving it before its
    end: that closes the connection.
    """

    def __init__(self, follow: Follow[T], iterator: AsyncGenerator[T, None]) -> None:
        self._follow = follow
        self._iterator = iterator

    @property
    def last_event_id(self) -> str | None:
        return self._follow.last_event_id

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop following: the connection is closed."""
        await self._iterator.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncLogStream(AsyncStream[LogLine]):
    """A task's log lines as they are written; ends when the task has ended and every
    line has come. ``task`` is then the ended task."""

    @property
    def task(self) -> Task | None:
        assert isinstance(self._follow, LogFollow)
        return self._follow.task


class AsyncEventStream(AsyncStream[TaskEvent]):
    """Task changes as they happen; it does not end by itself."""


class AsyncClient:
    """A taskgate API client for asyncio; see `Client` for the arguments.

    async with AsyncClient("http://127.0.0.1:8006", api_key="tgk_...") as client:
        task = await client.submit("vzdump", vmid=100)
        done = await client.wait(task)
    """

    def __init__(
        self,
        base_url: str | httpx.URL | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        long_poll: float = LONG_POLL,
    ) -> None:
        self.base_url = _base.resolve_base_url(base_url)
        self.retry = Retry() if retry is None else retry
        self.long_poll = long_poll
        self._timeout = _base.make_timeout(timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_base.default_headers(_base.resolve_api_key(api_key), headers),
            timeout=self._timeout,
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- sending -----------------------------------------------------------------------

    async def _send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """Send ``call``, retrying as `Retry` allows; the response (not yet checked)."""
        failures = 0
        while True:
            request = call.build(self._http, self._timeout)
            try:
                response = await self._http.send(request, stream=stream)
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
                        await response.aread()
                    return response
                await response.aclose()
            await _sleep(delay)

    async def _json(self, call: Call) -> Any:
        return _base.json_of(await self._send(call))

    async def _task(self, call: Call) -> Task:
        return _base.task_of(await self._send(call))

    async def _schedule(self, call: Call) -> Schedule:
        return _schedules.schedule_of(await self._send(call))

    async def _group(self, call: Call) -> Group:
        return _groups.group_of(await self._send(call))

    # -- submitting --------------------------------------------------------------------

    async def submit(
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
        """Submit a task of operation ``type``; see `Client.submit`."""
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
        return await self._task(call)

    async def submit_and_wait(
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
        task = await self.submit(
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
        return await self.wait(task, timeout=wait_timeout)

    # -- reading -----------------------------------------------------------------------

    async def get(self, task: TaskRef) -> Task:
        """The task now; see `Client.get`."""
        return await self._task(Call("GET", _base.task_path(task)))

    def list(
        self,
        *,
        limit: int | None = None,
        page_size: int = LIST_PAGE,
        **filters: Unpack[TaskFilters],
    ) -> AsyncGenerator[Task, None]:
        """Every task that matches, newest first, a page at a time (``async for``);
        see `Client.list`."""
        query = _task_list.list_filters(filters)
        if limit is not None:
            page_size = max(1, min(page_size, limit))
        return self._pages(Pager(query, page_size), limit)

    async def _pages(self, pager: Paging[T], limit: int | None) -> AsyncGenerator[T, None]:
        count = 0
        while (call := pager.next_call()) is not None:
            for item in pager.feed(await self._send(call)):
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item

    async def list_page(
        self,
        *,
        cursor: str | None = None,
        page_size: int = LIST_PAGE,
        **filters: Unpack[TaskFilters],
    ) -> Page:
        """One page of the task list; see `Client.list_page`."""
        query = _task_list.list_filters(filters)
        return Page.from_json(await self._json(_task_list.list_call(query, cursor, page_size)))

    async def log(self, task: TaskRef, start: int = 0, limit: int | None = None) -> LogPage:
        """Log lines ``start+1 ..``; see `Client.log`."""
        if limit is not None:
            return LogPage.from_json(await self._json(_base.log_call(task, start, limit)))
        first = LogPage.from_json(await self._json(_base.log_call(task, start, LOG_PAGE)))
        lines = list(first.lines)
        while lines and start + len(lines) < first.total:
            page = LogPage.from_json(
                await self._json(_base.log_call(task, start + len(lines), LOG_PAGE))
            )
            if not page.lines:
                break
            lines.extend(page.lines)
        return LogPage(first.task_id, start, max(first.total, start + len(lines)), lines)

    def follow_log(self, task: TaskRef, start: int = 0) -> AsyncLogStream:
        """The log lines as they are written, until the task has ended (``async for``);
        see `Client.follow_log`."""
        follow = LogFollow(task, start)
        return AsyncLogStream(follow, self._follow(follow))

    def events(
        self,
        *,
        task_id: TaskRef | Iterable[TaskRef] | None = None,
        type: str | Iterable[str] | None = None,
        state: str | Iterable[str] | None = None,
        last_event_id: str | None = None,
    ) -> AsyncEventStream:
        """Task changes as they happen (``async for``); see `Client.events`."""
        follow = EventFollow(
            _base.ids_of(task_id),
            _base.values_of(type),
            _base.values_of(state),
            last_event_id=last_event_id,
        )
        return AsyncEventStream(follow, self._follow(follow))

    async def _follow(self, follow: Follow[T]) -> AsyncGenerator[T, None]:
        failures = 0
        while not follow.finished:
            response = await self._send(follow.call(), stream=True)
            try:
                _base.check(response)
                follow.connected(response.headers.get("content-type", ""))
                async for chunk in response.aiter_bytes():
                    items = follow.feed(chunk)
                    if items or follow.finished:
                        failures = 0
                    for item in items:
                        yield item
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
                await response.aclose()
            await _sleep(follow.reconnect_delay(self.retry, failures))

    async def operations(self) -> builtins.list[Operation]:
        """The operations the server runs; see `Client.operations`."""
        doc = await self._json(Call("GET", "/v1/operations"))
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, builtins.list):
            raise InvalidResponse("GET /v1/operations answered without 'items'")
        return [Operation.from_json(item) for item in items]

    async def whoami(self) -> Whoami:
        """Who this client's key acts as; see `Client.whoami`."""
        return Whoami.from_json(await self._json(_overview.WHOAMI))

    async def workers(self) -> builtins.list[Worker]:
        """Every worker with its running tasks (admin keys); see `Client.workers`."""
        return _overview.workers_of(await self._json(_overview.WORKERS))

    async def stats(
        self,
        *,
        window: float | timedelta | None = None,
        buckets: int | None = None,
        tenant: str | None = None,
    ) -> Stats:
        """The overview of the tasks; see `Client.stats`."""
        seconds = None if window is None else _base.seconds_value("window", window)
        return Stats.from_json(await self._json(_overview.stats_call(seconds, buckets, tenant)))

    # -- changing ----------------------------------------------------------------------

    async def cancel(self, task: TaskRef) -> Task:
        """Cancel the task; see `Client.cancel`."""
        return await self._task(Call("POST", _base.task_path(task, "/cancel")))

    async def suspend(self, task: TaskRef) -> Task:
        """Hold a queued or scheduled task until `resume`; see `Client.suspend`."""
        return await self._task(Call("POST", _base.task_path(task, "/suspend")))

    async def resume(self, task: TaskRef) -> Task:
        """Let a suspended task wait again; see `Client.resume`."""
        return await self._task(Call("POST", _base.task_path(task, "/resume")))

    async def acknowledge(self, task: TaskRef) -> Task:
        """Mark the task as seen; see `Client.acknowledge`."""
        return await self._task(Call("POST", _base.task_path(task, "/acknowledge")))

    async def retry_task(self, task: TaskRef) -> Task:
        """Run an ended task again as a new task; see `Client.retry_task`."""
        return await self._task(Call("POST", _base.task_path(task, "/retry")))

    async def acknowledge_many(
        self,
        ids: Iterable[TaskRef] | None = None,
        *,
        state: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
    ) -> int:
        """Acknowledge several tasks; see `Client.acknowledge_many`."""
        doc = await self._json(_base.acknowledge_many_call(ids, state, type))
        count = doc.get("acknowledged") if isinstance(doc, dict) else None
        if not isinstance(count, int):
            raise InvalidResponse("acknowledge answered without a count")
        return count

    async def delete(self, task: TaskRef) -> None:
        """Delete an ended task and its log; see `Client.delete`."""
        _base.check(await self._send(Call("DELETE", _base.task_path(task))))

    async def purge(
        self,
        *,
        state: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        finished_before: datetime | str | timedelta | None = None,
        tenant: str | None = None,
    ) -> int:
        """Delete the ended tasks that match, with their logs; how many were deleted.
        See `Client.purge`."""
        call = _base.purge_call(
            state=state, type=type, finished_before=finished_before, tenant=tenant
        )
        return _base.count_of(await self._send(call), "purged")

    # -- schedules ---------------------------------------------------------------------

    async def create_schedule(
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
        """Create a schedule; see `Client.create_schedule`."""
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
        return await self._schedule(call)

    async def get_schedule(self, schedule: ScheduleRef) -> Schedule:
        """The schedule now (by id or name); see `Client.get_schedule`."""
        return await self._schedule(Call("GET", _schedules.schedule_path(schedule)))

    def list_schedules(
        self,
        *,
        type: str | Iterable[str] | None = None,
        enabled: bool | None = None,
        limit: int | None = None,
        page_size: int = LIST_PAGE,
    ) -> AsyncGenerator[Schedule, None]:
        """Every schedule that matches, by name, a page at a time (``async for``); see
        `Client.list_schedules`."""
        filters = _schedules.schedule_filters(type=type, enabled=enabled)
        if limit is not None:
            page_size = max(1, min(page_size, limit))
        return self._pages(SchedulePager(filters, page_size), limit)

    async def list_schedules_page(
        self,
        *,
        after: str | None = None,
        page_size: int = LIST_PAGE,
        type: str | Iterable[str] | None = None,
        enabled: bool | None = None,
    ) -> SchedulePage:
        """One page of the schedule list; see `Client.list_schedules_page`."""
        filters = _schedules.schedule_filters(type=type, enabled=enabled)
        call = _schedules.schedule_list_call(filters, after, page_size)
        return SchedulePage.from_json(await self._json(call))

    async def update_schedule(
        self, schedule: ScheduleRef, **changes: Unpack[ScheduleChanges]
    ) -> Schedule:
        """Change some of the schedule's fields; see `Client.update_schedule`."""
        return await self._schedule(_schedules.update_schedule_call(schedule, changes))

    async def pause_schedule(self, schedule: ScheduleRef) -> Schedule:
        """Disable the schedule; see `Client.pause_schedule`."""
        return await self._schedule(Call("POST", _schedules.schedule_path(schedule, "/pause")))

    async def resume_schedule(self, schedule: ScheduleRef) -> Schedule:
        """Enable the schedule again; see `Client.resume_schedule`."""
        return await self._schedule(Call("POST", _schedules.schedule_path(schedule, "/resume")))

    async def run_schedule(self, schedule: ScheduleRef) -> Task:
        """Submit a run now; its task. See `Client.run_schedule`."""
        return await self._task(Call("POST", _schedules.schedule_path(schedule, "/run")))

    async def delete_schedule(self, schedule: ScheduleRef) -> None:
        """Delete the schedule (its tasks stay); see `Client.delete_schedule`."""
        _base.check(await self._send(Call("DELETE", _schedules.schedule_path(schedule))))

    # -- groups ------------------------------------------------------------------------

    async def submit_group(self, tasks: Iterable[GroupTask | Mapping[str, Any]]) -> SubmittedGroup:
        """Submit several tasks as one new group, all or nothing; see
        `Client.submit_group`."""
        call = _groups.submit_group_call(tasks)
        return _groups.submitted_group_of(await self._send(call))

    async def get_group(self, group: GroupRef) -> Group:
        """The group's summary now; see `Client.get_group`."""
        return await self._group(Call("GET", _groups.group_path(group)))

    async def cancel_group(self, group: GroupRef) -> Group:
        """Cancel every task of the group still going; the summary after."""
        return await self._group(Call("POST", _groups.group_path(group, "/cancel")))

    async def suspend_group(self, group: GroupRef) -> Group:
        """Suspend every waiting task of the group; the summary after."""
        return await self._group(Call("POST", _groups.group_path(group, "/suspend")))

    async def resume_group(self, group: GroupRef) -> Group:
        """Resume every suspended task of the group; the summary after."""
        return await self._group(Call("POST", _groups.group_path(group, "/resume")))

    def watch_group(
        self, group: GroupRef, *, timeout: float | None = None, poll: float = GROUP_POLL
    ) -> AsyncGenerator[Group, None]:
        """The group's summary now, then each time it changes, until every task of it
        has ended (``async for``); see `Client.watch_group`."""
        return self._watch_group(GroupPoll(group, timeout, poll))

    async def _watch_group(self, poll: GroupPoll) -> AsyncGenerator[Group, None]:
        while (call := poll.next_call()) is not None:
            seen = poll.feed(await self._send(call))
            if seen is not None:
                yield seen
                if seen.ended:
                    return
            await _sleep(poll.pause)
        assert poll.group is not None
        raise GroupWaitTimeout(poll.group, poll.timeout or 0.0)

    async def wait_group(
        self, group: GroupRef, timeout: float | None = None, poll: float = GROUP_POLL
    ) -> Group:
        """Wait until every task of the group has ended; its summary then, or
        `GroupWaitTimeout`. See `Client.wait_group`."""
        last: Group | None = None
        async for last in self.watch_group(group, timeout=timeout, poll=poll):  # noqa: B007
            pass
        assert last is not None
        return last

    # -- waiting -----------------------------------------------------------------------

    def watch(self, task: TaskRef, *, timeout: float | None = None) -> AsyncGenerator[Task, None]:
        """The task now, then each time it changes, until it has ended (``async for``);
        see `Client.watch`."""
        return self._watch(LongPoll(task, timeout, self.long_poll, first_plain=True))

    async def _watch(self, poll: LongPoll) -> AsyncGenerator[Task, None]:
        while (call := poll.next_call()) is not None:
            seen = poll.feed(await self._send(call))
            if poll.pause:
                await _sleep(poll.pause)
            if seen is not None:
                yield seen
                if seen.terminal:
                    return
        assert poll.task is not None
        raise WaitTimeout(poll.task, poll.timeout or 0.0)

    async def wait(self, task: TaskRef, timeout: float | None = None) -> Task:
        """Wait until the task has ended; the task if it succeeded, else `TaskFailed`,
        `TaskCanceled`, `TaskTimedOut`, or `WaitTimeout`; see `Client.wait`."""
        poll = LongPoll(task, timeout, self.long_poll, first_plain=False, until_ended=True)
        last: Task | None = None
        async for last in self._watch(poll):  # noqa: B007 - the last one is the ended task
            pass
        assert last is not None
        return _base.outcome(last)
