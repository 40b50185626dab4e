"""Named schedules on every store: runs at the right times under a clock the test moves,
missed runs once, overlap policies, failure thresholds, late runs, races between two
schedulers, and the users' side (create, list, change, pause, resume, run now)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from taskgate import App
from taskgate.errors import Conflict, InvalidParameters, OperationNotFound, ScheduleNotFound
from taskgate.model import State, Task, TaskFilter
from taskgate.schedules import Overlap, Schedule, ScheduleService
from taskgate.service import TaskService

from .helpers import LEASE, WORKER, Clock

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def schedules(service: TaskService, clock: Clock) -> ScheduleService:
    clock.now = START
    return ScheduleService(service)


async def finish_runs(service: TaskService, state: State = State.SUCCEEDED) -> list[Task]:
    """Claim every due run and end it in ``state``, as a worker would."""
    done = []
    for task in await service.claim(WORKER, 1000, LEASE):
        ended = await service.finish(task, state)
        assert ended is not None
        done.append(ended)
    return done


async def runs(service: TaskService, schedule: Schedule) -> list[Task]:
    page = await service.list(TaskFilter(schedule_id=schedule.id), limit=500)
    return sorted(page.items, key=lambda t: t.id)


# -- the recurrence ------------------------------------------------------------------


async def test_an_interval_schedule_runs_its_count_at_its_times(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create(
        "hourly", "vzdump", "R3/2026-01-01T01:00:00Z/PT1H", {"vmid": 100}
    )
    assert (schedule.next_run, schedule.first_run) == (utc("2026-01-01T01:00:00Z"),) * 2
    assert schedule.remaining_runs == 3 and schedule.enabled
    assert (await schedules.run_due()).fired == []  # not due yet
    for hour in range(1, 6):
        clock.now = START + hour * 3600
        await schedules.run_due()
        await finish_runs(service)
    done = await runs(service, schedule)
    assert [t.scheduled_at for t in done] == [at(START + h * 3600) for h in (1, 2, 3)]
    assert all(t.state is State.SUCCEEDED and t.params["vmid"] == 100 for t in done)
    assert all(t.object_id == "100" and t.priority == 2 for t in done)  # the operation's
    final = await schedules.get(schedule.id)
    assert (final.total_run_count, final.remaining_runs, final.next_run) == (3, 0, None)
    assert final.last_task_id == done[-1].id and final.last_run_at == at(START + 3 * 3600)


async def test_missed_runs_run_once_not_as_a_burst(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("often", "noop", "2026-01-01T00:10:00Z/PT10M")
    clock.now = START + 5 * 3600 + 60  # five hours down: thirty runs missed
    passed = await schedules.run_due()
    assert [t.scheduled_at for t in passed.fired] == [at(START + 600)]
    assert (await schedules.run_due()).fired == []
    after = await schedules.get(schedule.id)
    assert after.next_run == at(START + 5 * 3600 + 600)  # the first one after now
    assert after.total_run_count == 1


async def test_a_bounded_schedule_counts_missed_runs_as_gone(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("five", "noop", "R5/2026-01-01T00:00:00Z/PT1H")
    clock.now = START + 2.5 * 3600  # runs 0, 1 and 2 fell due while down
    await schedules.run_due()
    after = await schedules.get(schedule.id)
    assert after.total_run_count == 1
    assert after.remaining_runs == 2  # 03:00 and 04:00
    assert after.next_run == at(START + 3 * 3600)


async def test_cron_in_a_time_zone_keeps_the_wall_clock_across_dst(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    clock.now = utc("2026-03-27T00:00:00Z").timestamp()
    schedule = await schedules.create("berlin", "noop", "30 2 * * *", timezone="Europe/Berlin")
    # spring forward on 2026-03-29 (02:30 does not exist), fall back on 2026-10-25
    for day in range(4):
        clock.now = utc("2026-03-27T12:00:00Z").timestamp() + day * 86400
        await schedules.run_due()
        await finish_runs(service)
    clock.now = utc("2026-10-24T00:00:00Z").timestamp()
    await schedules.update(schedule.id, {"enabled": False})
    await schedules.update(schedule.id, {"enabled": True})  # next run from now
    for day in range(3):
        clock.now = utc("2026-10-24T12:00:00Z").timestamp() + day * 86400
        await schedules.run_due()
        await finish_runs(service)
    times = [t.scheduled_at for t in await runs(service, schedule)]
    assert times == [
        utc("2026-03-27T01:30:00Z"),  # 02:30 CET
        utc("2026-03-28T01:30:00Z"),
        utc("2026-03-29T01:00:00Z"),  # in the gap: at 03:00 CEST, the first minute after
        utc("2026-03-30T00:30:00Z"),  # 02:30 CEST
        utc("2026-10-24T00:30:00Z"),  # 02:30 CEST
        utc("2026-10-25T00:30:00Z"),  # 02:30 happens twice: once, the first time
        utc("2026-10-26T01:30:00Z"),  # 02:30 CET
    ]


# -- overlap, failures, lateness ----------------------------------------------------


async def test_overlap_skip_skips_runs_while_the_last_goes(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("skip", "noop", "2026-01-01T00:00:00Z/PT1M")
    await schedules.run_due()
    [first] = await service.claim(WORKER, 10, LEASE)  # running
    clock.now += 60
    passed = await schedules.run_due()
    assert (passed.fired, passed.skipped) == ([], 1)
    clock.now += 60
    assert (await schedules.run_due()).skipped == 1
    await service.finish(first, State.SUCCEEDED)
    clock.now += 60
    passed = await schedules.run_due()
    assert [t.scheduled_at for t in passed.fired] == [at(START + 180)]
    assert (await schedules.get(schedule.id)).total_run_count == 2


async def test_overlap_queue_runs_the_held_run_when_the_last_ends(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("queue", "noop", "2026-01-01T00:00:00Z/PT1M", overlap="queue")
    await schedules.run_due()
    [first] = await service.claim(WORKER, 10, LEASE)
    for _ in range(3):  # three runs fall due while the first goes: they merge into one
        clock.now += 60
        passed = await schedules.run_due()
        assert (passed.fired, passed.held) == ([], 1)
    held = await schedules.get(schedule.id)
    assert held.pending_run == at(START + 60) and held.overlap is Overlap.QUEUE
    await service.finish(first, State.SUCCEEDED)
    clock.now += 1
    passed = await schedules.run_due()
    assert [t.scheduled_at for t in passed.fired] == [at(START + 60)]
    after = await schedules.get(schedule.id)
    assert after.pending_run is None and after.total_run_count == 2
    assert after.next_run == at(START + 240)


async def test_failure_threshold_disables_and_resume_forgets(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create(
        "fragile", "noop", "2026-01-01T00:00:00Z/PT1M", failure_threshold=3
    )
    outcomes = [State.FAILED, State.SUCCEEDED, State.FAILED, State.TIMED_OUT, State.FAILED]
    for i, state in enumerate(outcomes):
        assert (await schedules.get(schedule.id)).enabled, f"disabled before run {i}"
        await schedules.run_due()
        [task] = await service.claim(WORKER, 10, LEASE)
        await service.finish(task, state)
        clock.now += 60
    await schedules.run_due()
    disabled = await schedules.get(schedule.id)
    assert not disabled.enabled
    assert disabled.consecutive_failures == 3
    assert disabled.disabled_reason == "3 runs failed in a row (failure_threshold 3)"
    clock.now += 3600
    assert (await schedules.run_due()).fired == []  # a disabled schedule does not run
    resumed = await schedules.resume(schedule.id)
    assert resumed.enabled and resumed.consecutive_failures == 0
    assert resumed.disabled_reason is None
    assert resumed.next_run is not None and resumed.next_run > at(clock.now)


async def test_a_success_resets_the_failures_and_a_cancel_counts_for_nothing(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create(
        "steady", "noop", "2026-01-01T00:00:00Z/PT1M", failure_threshold=2
    )
    for state in (State.FAILED, State.CANCELED, State.SUCCEEDED, State.FAILED):
        await schedules.run_due()
        [task] = await service.claim(WORKER, 10, LEASE)
        if state is State.CANCELED:
            task = await service.cancel(task.id)
        await service.finish(task, state)
        await schedules.run_due()  # counts it
        clock.now += 60
    after = await schedules.get(schedule.id)
    assert after.enabled and after.consecutive_failures == 1


async def test_a_late_run_says_so_in_its_log(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    await schedules.create("punctual", "noop", "2026-01-01T00:01:00Z/PT1H", schedule_threshold=30)
    clock.now = START + 60 + 10  # 10 s late: within the threshold
    [on_time] = (await schedules.run_due()).fired
    assert on_time.warnings == 0 and on_time.log_count == 0
    await finish_runs(service)
    clock.now = START + 3660 + 95.5
    [late] = (await schedules.run_due()).fired
    assert late.warnings == 1
    log = await service.log(late.id)
    assert [line.level for line in log.lines] == ["warning"]
    assert log.lines[0].t == (
        "this run of schedule punctual was due at 2026-01-01T01:01:00Z and starts 95.5 s"
        " late (schedule_threshold 30 s)"
    )
    assert log.lines[0].n == 1


async def test_two_schedulers_at_once_submit_each_run_once(
    service: TaskService, peer: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    other = ScheduleService(peer)
    made = [await schedules.create(f"s{i}", "noop", "2026-01-01T00:00:00Z/PT1M") for i in range(20)]
    for _ in range(3):
        await asyncio.gather(schedules.run_due(), other.run_due())
        await finish_runs(service)
        clock.now += 60
    for schedule in made:
        assert len(await runs(service, schedule)) == 3
        assert (await schedules.get(schedule.id)).total_run_count == 3


async def test_a_schedule_whose_operation_is_gone_is_disabled(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("orphan", "noop", "2026-01-01T00:00:00Z/PT1M")
    upgraded = TaskService(service.connector, App(), clock=clock)  # "noop" was removed
    passed = await ScheduleService(upgraded).run_due()
    assert passed.fired == []
    after = await schedules.get(schedule.id)
    assert not after.enabled
    assert after.disabled_reason == "cannot submit a run: no operation named 'noop'"


async def test_a_held_run_whose_operation_is_gone_disables_the_schedule(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("held", "noop", "2026-01-01T00:00:00Z/PT1M", overlap="queue")
    await schedules.run_due()
    [first] = await service.claim(WORKER, 10, LEASE)
    clock.now += 60
    assert (await schedules.run_due()).held == 1
    await service.finish(first, State.SUCCEEDED)
    upgraded = ScheduleService(TaskService(service.connector, App(), clock=clock))
    assert (await upgraded.run_due()).fired == []  # no error: the schedule is disabled
    after = await schedules.get(schedule.id)
    assert not after.enabled and after.disabled_reason is not None
    assert "no operation named 'noop'" in after.disabled_reason


# -- the users' side ----------------------------------------------------------------


async def test_run_now_submits_a_run_and_refuses_a_second_at_once(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("manual", "vzdump", "@daily", {"vmid": 7})
    task = await schedules.run_now(schedule.id)
    assert task.state is State.QUEUED and task.schedule_id == schedule.id
    assert task.params == {"vmid": 7, "mode": "snapshot"}
    with pytest.raises(Conflict, match="has not ended"):
        await schedules.run_now(schedule.id)
    await finish_runs(service)
    again = await schedules.run_now(schedule.id)
    assert again.id != task.id
    after = await schedules.get(schedule.id)
    assert after.total_run_count == 2 and after.next_run == schedule.next_run


async def test_create_validates_everything(schedules: ScheduleService) -> None:
    with pytest.raises(OperationNotFound):
        await schedules.create("x", "nope", "PT1H")
    cases = [
        ({"name": "bad name!"}, "name"),
        ({"recurrence": "P1H"}, "recurrence"),
        ({"recurrence": "61 * * * *"}, "recurrence"),
        ({"recurrence": "R2/2020-01-01T00:00:00Z/PT1H"}, "recurrence"),  # all in the past
        ({"timezone": "Mars/Base", "recurrence": "@daily"}, "recurrence"),
        ({"params": {"vmid": "not a number"}}, "vmid"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"schedule_threshold": -1}, "schedule_threshold"),
        ({"options": {"delay": 5}}, "options.delay"),
    ]
    for change, field in cases:
        args = {"name": "ok", "recurrence": "PT1H", "params": {"vmid": 1}, **change}
        with pytest.raises(InvalidParameters) as caught:
            await schedules.create(args.pop("name"), "vzdump", args.pop("recurrence"), **args)
        assert field in str(caught.value.errors), (change, caught.value.errors)
    assert await schedules.list() == []


async def test_names_are_unique_per_tenant(schedules: ScheduleService) -> None:
    first = await schedules.create("nightly", "noop", "@daily", tenant="a")
    await schedules.create("nightly", "noop", "@daily", tenant="b")
    with pytest.raises(Conflict, match="already has a schedule named 'nightly'"):
        await schedules.create("nightly", "noop", "@hourly", tenant="a")
    assert await schedules.get("nightly", tenant="a") == first
    with pytest.raises(ScheduleNotFound):
        await schedules.get(first.id, tenant="b")


async def test_list_pages_by_name_and_filters(schedules: ScheduleService) -> None:
    for name in ("c", "a", "e", "b", "d"):
        await schedules.create(name, "noop", "@daily", tenant="t")
    await schedules.create("z", "vzdump", "@daily", {"vmid": 1}, tenant="t", enabled=False)
    await schedules.create("other", "noop", "@daily", tenant="u")
    first = await schedules.list(tenant="t", limit=2)
    second = await schedules.list(tenant="t", limit=2, after=first[-1])
    assert [s.name for s in first + second] == ["a", "b", "c", "d"]
    assert [s.name for s in await schedules.list(tenant="t", enabled=False)] == ["z"]
    assert [s.name for s in await schedules.list(types=["vzdump"])] == ["z"]
    assert len(await schedules.list()) == 7


async def test_update_pause_resume_delete(
    service: TaskService, schedules: ScheduleService, clock: Clock
) -> None:
    schedule = await schedules.create("tune", "noop", "@daily", {"x": 1})
    assert schedule.next_run == utc("2026-01-02T00:00:00Z")
    changed = await schedules.update(schedule.id, {"recurrence": "@hourly", "params": {"x": 2}})
    assert changed.next_run == utc("2026-01-01T01:00:00Z") and changed.params == {"x": 2}
    assert changed.version > schedule.version
    paused = await schedules.pause(schedule.id)
    assert not paused.enabled and paused.disabled_reason == "paused"
    clock.now += 86400
    assert (await schedules.run_due()).fired == []
    resumed = await schedules.resume(schedule.id)
    assert resumed.next_run == at(START + 86400 + 3600)  # missed runs are not made up
    with pytest.raises(InvalidParameters, match="cannot change name"):
        await schedules.update(schedule.id, {"name": "renamed"})
    task = await schedules.run_now(schedule.id)
    await schedules.delete(schedule.id)
    with pytest.raises(ScheduleNotFound):
        await schedules.get(schedule.id)
    assert (await service.get(task.id)).schedule_id == schedule.id  # its tasks stay
    clock.now += 86400
    assert (await schedules.run_due()).fired == []
