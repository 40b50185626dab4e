"""Schedules through `AsyncClient` and `Client`, against the real ASGI app and a worker
in process: create, read by id or name, list page by page, change, pause, resume, run
now, list a schedule's runs, delete; and the problems each can answer."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from taskgate.client import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    Schedule,
    SchedulePage,
    State,
    Task,
    UnprocessableEntity,
)

from .conftest import BASE, FAST_RETRY, Stack

LATER = "R/2099-01-01T00:00:00Z/P1D"
"""A recurrence whose first run is far off: the worker's scheduler leaves it alone."""


class Counting(httpx.ASGITransport):
    """The ASGI transport, recording each request's path and query."""

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)


# -- AsyncClient -----------------------------------------------------------------------


async def test_create_with_every_field_and_get_by_id_name_or_record(
    aclient: AsyncClient, stack: Stack
) -> None:
    made = await aclient.create_schedule(
        "nightly",
        "add",
        "0 3 * * *",
        {"a": 1},
        timezone="Europe/Paris",
        enabled=False,  # paused: the worker's scheduler must not fire it
        overlap="queue",
        failure_threshold=3,
        schedule_threshold=timedelta(minutes=5),
        options={
            "object_id": "vm-1",
            "priority": 7,
            "labels": {"team": "ops"},
            "timeout": timedelta(minutes=10),
            "max_attempts": 2,
        },
    )
    assert isinstance(made, Schedule)
    assert (made.name, made.type, made.recurrence, made.timezone) == (
        "nightly",
        "add",
        "0 3 * * *",
        "Europe/Paris",
    )
    assert made.params == {"a": 1, "b": 0}  # validated by the operation, with defaults
    assert made.options == {
        "object_id": "vm-1",
        "priority": 7,
        "labels": {"team": "ops"},
        "timeout": 600,
        "max_attempts": 2,
    }
    assert not made.enabled and made.next_run is None
    assert (made.overlap, made.failure_threshold, made.schedule_threshold) == ("queue", 3, 300)
    assert made.created_at is not None and made.created_at.tzinfo is not None
    assert made.tenant == "default" and made.version >= 1
    for ref in (made.id, "nightly", made):
        assert await aclient.get_schedule(ref) == made

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.api), base_url=BASE
    ) as raw:
        doc = (await raw.get(f"/v1/schedules/{made.id}")).json()
    fields = set(Schedule.__dataclass_fields__)
    assert set(doc) <= fields, set(doc) - fields  # every field the server sends


async def test_list_schedules_pages_lazily_with_filters(stack: Stack) -> None:
    counting = Counting(stack.api)
    async with AsyncClient(BASE, transport=counting, retry=FAST_RETRY) as client:
        for name in ("c", "a", "e", "b"):
            await client.create_schedule(name, "add", LATER, {"a": 1})
        await client.create_schedule("d", "noop", LATER, enabled=False)
        counting.requests.clear()
        listed = [s.name async for s in client.list_schedules(page_size=2)]
        assert listed == ["a", "b", "c", "d", "e"]  # by name, every page
        assert len(counting.requests) == 3
        assert [s.name async for s in client.list_schedules(limit=2)] == ["a", "b"]
        assert [s.name async for s in client.list_schedules(type="noop")] == ["d"]
        assert [s.name async for s in client.list_schedules(type=["noop", "add"])] == listed
        assert [s.name async for s in client.list_schedules(enabled=False)] == ["d"]
        enabled = [s.name async for s in client.list_schedules(enabled=True, page_size=3)]
        assert enabled == ["a", "b", "c", "e"]

        page = await client.list_schedules_page(page_size=3)
        assert isinstance(page, SchedulePage)
        assert [s.name for s in page.items] == ["a", "b", "c"] and page.next_after
        rest = await client.list_schedules_page(page_size=3, after=page.next_after)
        assert [s.name for s in rest.items] == ["d", "e"] and rest.next_after is None


async def test_update_pause_resume_run_and_delete(aclient: AsyncClient) -> None:
    made = await aclient.create_schedule(
        "sleeper", "sleep", LATER, {"seconds": 60}, failure_threshold=2
    )
    changed = await aclient.update_schedule(
        made, recurrence="R/2099-06-01T00:00:00Z/PT12H", failure_threshold=None, overlap="queue"
    )
    assert changed.recurrence == "R/2099-06-01T00:00:00Z/PT12H"
    assert changed.failure_threshold is None and changed.overlap == "queue"
    assert changed.params == {"seconds": 60}  # not given: unchanged
    assert changed.version > made.version

    paused = await aclient.pause_schedule("sleeper")
    assert not paused.enabled and paused.next_run is None
    resumed = await aclient.resume_schedule(made.id)
    assert resumed.enabled and resumed.next_run is not None

    run = await aclient.run_schedule("sleeper")
    assert isinstance(run, Task) and run.schedule_id == made.id and run.type == "sleep"
    with pytest.raises(Conflict) as busy:
        await aclient.run_schedule(made)  # its last run has not ended
    assert busy.value.status == 409 and run.id in busy.value.detail
    assert [t.id async for t in aclient.list(schedule_id=made)] == [run.id]
    assert [t.id for t in (await aclient.list_page(schedule_id=made.id)).items] == [run.id]
    after = await aclient.get_schedule("sleeper")
    assert after.total_run_count == 1 and after.last_task_id == run.id

    await aclient.cancel(run)
    await aclient.delete_schedule("sleeper")
    with pytest.raises(NotFound):
        await aclient.get_schedule(made.id)
    assert (await aclient.get(run)).schedule_id == made.id  # its tasks stay


async def test_schedule_problems_become_typed_errors(aclient: AsyncClient) -> None:
    for call in (
        aclient.get_schedule("nope"),
        aclient.run_schedule(str(uuid.uuid4())),
        aclient.pause_schedule("nope"),
        aclient.delete_schedule("nope"),
    ):
        with pytest.raises(NotFound) as missing:
            await call
        assert missing.value.type.endswith("/schedule-not-found")
    with pytest.raises(UnprocessableEntity) as bad:
        await aclient.create_schedule("bad", "add", "every tuesday", {"a": 1})
    assert [e.field for e in bad.value.errors] == ["recurrence"]
    assert "cron expression" in bad.value.errors[0].message
    with pytest.raises(NotFound) as no_op:
        await aclient.create_schedule("bad", "no.such.operation", LATER)
    assert no_op.value.type.endswith("/operation-not-found")
    await aclient.create_schedule("taken", "noop", LATER)
    with pytest.raises(Conflict):
        await aclient.create_schedule("taken", "noop", LATER)
    with pytest.raises(UnprocessableEntity) as invalid:
        await aclient.update_schedule("taken", overlap="maybe", timezone="Atlantis/Capital")
    assert {e.field for e in invalid.value.errors} <= {"overlap", "recurrence", "timezone"}
    with pytest.raises(TypeError, match="cannot change 'name'"):
        await aclient.update_schedule("taken", name="other")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        await aclient.get_schedule(" ")
    with pytest.raises(ValueError):
        await aclient.create_schedule("x", "noop", "")


# -- Client ----------------------------------------------------------------------------


def test_sync_client_schedules(client: Client) -> None:
    made = client.create_schedule("every-day", "sleep", LATER, {"seconds": 60})
    assert client.get_schedule("every-day") == made
    client.create_schedule("other", "noop", LATER, enabled=False)
    assert [s.name for s in client.list_schedules(page_size=1)] == ["every-day", "other"]
    assert [s.name for s in client.list_schedules(enabled=False)] == ["other"]
    page = client.list_schedules_page(page_size=1)
    assert [s.name for s in page.items] == ["every-day"] and page.next_after == made.id

    changed = client.update_schedule(made, schedule_threshold=30, options={"priority": 3})
    assert changed.schedule_threshold == 30 and changed.options == {"priority": 3}
    assert not client.pause_schedule(made).enabled
    assert client.resume_schedule(made).enabled

    run = client.run_schedule("every-day")
    assert run.schedule_id == made.id and run.priority == 3
    with pytest.raises(Conflict):
        client.run_schedule("every-day")
    assert [t.id for t in client.list(schedule_id=made.id)] == [run.id]
    assert client.cancel(run).state in (State.CANCELED, State.CANCELING)
    client.delete_schedule(made)
    with pytest.raises(NotFound):
        client.delete_schedule(made)
    with pytest.raises(UnprocessableEntity) as bad:
        client.update_schedule("other", recurrence="R/2099-01-01T00:00:00/P1D")
    assert [e.field for e in bad.value.errors] == ["recurrence"]  # a start without an offset
