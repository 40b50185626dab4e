"""Task lists (filters, cursor pages) and task logs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from taskgate.errors import InvalidFilter, InvalidRequest, StorageError, TaskNotFound
from taskgate.ids import uuid7_time
from taskgate.model import State, Task, TaskFilter
from taskgate.service import MAX_PAGE, NewLogLine, TaskService

from .helpers import running


async def ids(service: TaskService, filter: TaskFilter | None = None) -> list[str]:
    """Every id the filter selects, following cursors with a small page."""
    found: list[str] = []
    cursor = None
    while True:
        page = await service.list(filter or TaskFilter(), cursor=cursor, limit=3)
        found += [t.id for t in page.items]
        if page.next_cursor is None:
            return found
        assert len(page.items) == 3
        cursor = page.next_cursor


async def test_newest_first(service: TaskService) -> None:
    tasks = [await service.submit("noop", {"x": i}) for i in range(7)]
    page = await service.list()
    assert [t.id for t in page.items] == [t.id for t in reversed(tasks)]
    assert page.next_cursor is None
    assert page.items[0] == tasks[-1]


async def test_pages_have_no_duplicates_or_gaps(service: TaskService) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(23)])
    expected = sorted((t.id for t in tasks), reverse=True)
    sizes = []
    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list(cursor=cursor, limit=5)
        sizes.append(len(page.items))
        seen += [t.id for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert sizes == [5, 5, 5, 5, 3]


async def test_a_full_last_page_has_no_cursor(service: TaskService) -> None:
    await service.submit_many([("noop", {}) for _ in range(4)])
    page = await service.list(limit=4)
    assert len(page.items) == 4 and page.next_cursor is None


async def test_tasks_submitted_while_paging_do_not_disturb_it(service: TaskService) -> None:
    tasks = await service.submit_many([("noop", {"x": i}) for i in range(9)])
    first = await service.list(limit=4)
    await service.submit_many([("noop", {}) for _ in range(5)])
    rest = await ids_after(service, first.next_cursor)
    seen = [t.id for t in first.items] + rest
    assert seen == sorted((t.id for t in tasks), reverse=True)


async def ids_after(service: TaskService, cursor: str | None) -> list[str]:
    found: list[str] = []
    while cursor is not None:
        page = await service.list(cursor=cursor, limit=4)
        found += [t.id for t in page.items]
        cursor = page.next_cursor
    return found


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1])
async def test_limit_out_of_range(service: TaskService, limit: int) -> None:
    with pytest.raises(InvalidFilter):
        await service.list(limit=limit)


@pytest.mark.parametrize("cursor", ["", "not a cursor", "!!!!", "AAAA", "ÿÿÿÿ", "x" * 40])
async def test_invalid_cursor(service: TaskService, cursor: str) -> None:
    with pytest.raises(InvalidFilter):
        await service.list(cursor=cursor)


async def test_filters(service: TaskService) -> None:
    a = await service.submit("vzdump", {"vmid": 100}, labels={"env": "prod", "team": "db"})
    b = await service.submit("vzdump", {"vmid": 101}, labels={"env": "dev"}, tenant="acme")
    c = await service.submit("noop", {}, labels={"env": "prod"})
    d = await service.submit("noop", {}, delay=60)
    e = await running(service, "flaky")  # claims a, b, c as well
    await service.cancel(c.id)

    async def select(**fields: object) -> set[str]:
        return set(await ids(service, TaskFilter(**fields)))  # type: ignore[arg-type]

    assert await select() == {a.id, b.id, c.id, d.id, e.id}
    assert await select(states=(State.SCHEDULED,)) == {d.id}
    assert await select(states=(State.RUNNING, State.CANCELING)) == {a.id, b.id, c.id, e.id}
    assert await select(types=("vzdump",)) == {a.id, b.id}
    assert await select(types=("vzdump", "flaky")) == {a.id, b.id, e.id}
    assert await select(types=("missing",)) == set()
    assert await select(object_id="100") == {a.id}
    assert await select(tenant="acme") == {b.id}
    assert await select(tenant="default") == {a.id, c.id, d.id, e.id}
    assert await select(labels=(("env", "prod"),)) == {a.id, c.id}
    assert await select(labels=(("env", "prod"), ("team", "db"))) == {a.id}
    assert await select(labels=(("env", "test"),)) == set()
    assert await select(labels=(("team", "db"), ("env", "dev"))) == set()
    assert await select(types=("vzdump",), states=(State.RUNNING,), tenant="default") == {a.id}


async def test_label_keys_are_checked(service: TaskService) -> None:
    with pytest.raises(InvalidRequest):
        await service.list(TaskFilter(labels=(("no spaces", "x"),)))


async def test_since_and_until_select_on_creation_time(service: TaskService) -> None:
    tasks: list[Task] = []
    for i in range(4):
        tasks.append(await service.submit("noop", {"x": i}))
        await asyncio.sleep(0.002)  # a distinct millisecond for each id
    moment = [datetime.fromtimestamp(uuid7_time(t.id), UTC) for t in tasks]
    since = await ids(service, TaskFilter(created_since=moment[1]))
    assert since == [tasks[3].id, tasks[2].id, tasks[1].id]
    until = await ids(service, TaskFilter(created_until=moment[2]))
    assert until == [tasks[1].id, tasks[0].id]
    between = await ids(service, TaskFilter(created_since=moment[1], created_until=moment[3]))
    assert between == [tasks[2].id, tasks[1].id]
    with pytest.raises(InvalidFilter):
        await service.list(TaskFilter(created_since=datetime(2030, 1, 1)))  # no time zone


# -- logs ----------------------------------------------------------------------------


async def test_log_lines_are_numbered_across_batches(service: TaskService) -> None:
    task = await running(service)
    await service.append_log(task.id, [NewLogLine("a"), NewLogLine("b", "warning")])
    await service.append_log(task.id, [NewLogLine("c", "error", ts=1_700_000_000.5)])
    await service.append_log(task.id, [NewLogLine(t) for t in "def"])
    page = await service.log(task.id, limit=100)
    assert page.total == 6
    assert [(line.n, line.t) for line in page.lines] == list(enumerate("abcdef", start=1))
    assert [line.level for line in page.lines[:3]] == ["info", "warning", "error"]
    assert page.lines[2].ts == datetime.fromtimestamp(1_700_000_000.5, UTC)
    stored = await service.get(task.id)
    assert stored.log_count == 6 and stored.version > task.version


async def test_log_paging(service: TaskService) -> None:
    task = await running(service)
    await service.append_log(task.id, [NewLogLine(f"line {i}") for i in range(1, 11)])
    page = await service.log(task.id, start=2, limit=3)
    assert [line.n for line in page.lines] == [3, 4, 5]
    assert [line.t for line in page.lines] == ["line 3", "line 4", "line 5"]
    assert page.total == 10
    assert [line.n for line in (await service.log(task.id, start=8)).lines] == [9, 10]
    empty = await service.log(task.id, start=10)
    assert empty.lines == [] and empty.total == 10
    assert (await service.log((await service.submit("noop", {})).id)).total == 0


async def test_log_bad_requests(service: TaskService) -> None:
    task = await running(service)
    for start, limit in [(-1, 10), (0, 0), (0, 100_000)]:
        with pytest.raises(InvalidFilter):
            await service.log(task.id, start=start, limit=limit)
    with pytest.raises(InvalidRequest):
        await service.append_log(task.id, [NewLogLine("x", "loud")])
    with pytest.raises(TaskNotFound):
        await service.log("0190f2a4-0000-7000-8000-000000000000")
    assert (await service.log(task.id)).total == 0


async def test_a_log_for_no_task_is_refused_whole(service: TaskService) -> None:
    with pytest.raises(StorageError):
        await service.append_log(
            "0190f2a4-0000-7000-8000-000000000000", [NewLogLine("a"), NewLogLine("b")]
        )


async def test_concurrent_appends_never_share_a_number(
    service: TaskService, peer: TaskService
) -> None:
    task = await running(service)
    await asyncio.gather(
        *(
            (service if i % 2 else peer).append_log(
                task.id, [NewLogLine(f"{i}.{j}") for j in range(3)]
            )
            for i in range(10)
        )
    )
    page = await service.log(task.id, limit=100)
    assert page.total == 30
    assert [line.n for line in page.lines] == list(range(1, 31))
    assert sorted(line.t for line in page.lines) == sorted(
        f"{i}.{j}" for i in range(10) for j in range(3)
    )
    # each batch is contiguous: one append's lines are never split by another's
    for k in range(0, 30, 3):
        prefixes = {line.t.split(".")[0] for line in page.lines[k : k + 3]}
        assert len(prefixes) == 1
