"""Recurring schedules: ISO 8601 repeating intervals and cron expressions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from taskgate.recurrence import (
    CronRecurrence,
    IntervalRecurrence,
    Recurrence,
    RecurrenceError,
    parse_recurrence,
)

CREATED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse(text: str, timezone: str | None = None) -> Recurrence:
    return parse_recurrence(text, timezone=timezone, created_at=CREATED)


def interval(text: str) -> IntervalRecurrence:
    r = parse(text)
    assert isinstance(r, IntervalRecurrence)
    return r


def runs(r: Recurrence, after: datetime, limit: int = 100) -> list[datetime]:
    """Successive runs after ``after``, as a scheduler would see them."""
    out: list[datetime] = []
    moment: datetime | None = after
    while len(out) < limit and moment is not None:
        moment = r.next_after(moment)
        if moment is not None:
            out.append(moment)
    return out


# -- ISO 8601 intervals ------------------------------------------------------------------


def test_pulp_bounded_interval_runs_n_times_then_ends() -> None:
    r = interval("R5/2026-01-01T00:00:00Z/PT1H")
    assert (r.kind, r.timezone, r.total_runs) == ("interval", "UTC", 5)
    assert r.first_run() == at("2026-01-01T00:00:00+00:00")
    start = at("2026-01-01T00:00:00+00:00")
    assert runs(r, start - timedelta(seconds=1)) == [start + timedelta(hours=k) for k in range(5)]
    last = at("2026-01-01T04:00:00+00:00")
    assert r.next_after(last) is None
    assert r.next_after(last - timedelta(microseconds=1)) == last
    assert r.next_after(at("2030-01-01T00:00:00+00:00")) is None


def test_pulp_unbounded_interval() -> None:
    for text in ("R/2026-01-01T00:00:00Z/P1D", "2026-01-01T00:00:00Z/P1D"):
        r = interval(text)
        assert r.total_runs is None
        assert r.next_after(at("2026-01-01T00:00:00+00:00")) == at("2026-01-02T00:00:00+00:00")
        assert r.next_after(at("2126-06-15T10:00:00+00:00")) == at("2126-06-16T00:00:00+00:00")


def test_interval_without_start_starts_when_created() -> None:
    r = interval("PT1H")
    assert r.total_runs is None
    assert r.first_run() == CREATED
    assert r.next_after(CREATED) == CREATED + timedelta(hours=1)

    r = interval("R3/PT10M")
    assert r.total_runs == 3
    assert runs(r, CREATED - timedelta(days=1)) == [
        CREATED,
        CREATED + timedelta(minutes=10),
        CREATED + timedelta(minutes=20),
    ]


def test_created_at_in_any_zone_is_the_same_instant() -> None:
    created = CREATED.astimezone(NEW_YORK)
    r = parse_recurrence("PT1H", created_at=created)
    assert isinstance(r, IntervalRecurrence)
    assert r.first_run() == CREATED
    assert r.first_run().tzinfo is UTC


def test_start_in_the_future_is_the_next_run() -> None:
    r = interval("R/2027-05-01T08:00:00Z/P1D")
    assert r.next_after(CREATED) == at("2027-05-01T08:00:00+00:00")
    assert r.runs_through(CREATED) == 0


def test_missed_runs_are_skipped_not_replayed() -> None:
    r = interval("R/2026-01-01T00:00:00Z/PT6H")
    # the scheduler was down from Jan 3 to Jan 5 10:17: one run comes next, the next slot
    back = at("2026-01-05T10:17:00+00:00")
    assert r.next_after(back) == at("2026-01-05T12:00:00+00:00")
    assert r.runs_through(back) == 18  # Jan 1-4 (16) and Jan 5 00:00, 06:00


def test_runs_through_counts_runs_at_or_before() -> None:
    r = interval("R5/2026-01-01T00:00:00Z/PT1H")
    assert r.runs_through(at("2025-12-31T23:59:59+00:00")) == 0
    assert r.runs_through(at("2026-01-01T00:00:00+00:00")) == 1
    assert r.runs_through(at("2026-01-01T00:59:59.999999+00:00")) == 1
    assert r.runs_through(at("2026-01-01T02:30:00+00:00")) == 3
    assert r.runs_through(at("2099-01-01T00:00:00+00:00")) == 5
    # what a scheduler stores as remaining runs (the next one included) after each run
    remaining = []
    for run in runs(r, CREATED - timedelta(days=1)):
        nxt = r.next_after(run)
        remaining.append(0 if nxt is None else 5 - r.runs_through(nxt) + 1)
    assert remaining == [4, 3, 2, 1, 0]


def test_months_clamp_the_day_and_count_from_the_start() -> None:
    r = interval("R/2026-01-31T09:00:00Z/P1M")
    assert runs(r, at("2026-01-30T00:00:00+00:00"), 6) == [
        at("2026-01-31T09:00:00+00:00"),
        at("2026-02-28T09:00:00+00:00"),
        at("2026-03-31T09:00:00+00:00"),  # not Mar 28: from the start, not the run before
        at("2026-04-30T09:00:00+00:00"),
        at("2026-05-31T09:00:00+00:00"),
        at("2026-06-30T09:00:00+00:00"),
    ]
    leap = interval("R/2028-01-31T00:00:00Z/P1M")
    assert leap.next_after(at("2028-01-31T00:00:00+00:00")) == at("2028-02-29T00:00:00+00:00")
    assert interval("R/2026-01-31T00:00:00Z/P2M").next_after(at("2026-01-31T00:00:00+00:00")) == at(
        "2026-03-31T00:00:00+00:00"
    )


def test_years_keep_feb_29_when_there_is_one() -> None:
    r = interval("R/2028-02-29T00:00:00Z/P1Y")
    assert runs(r, at("2028-03-01T00:00:00+00:00"), 4) == [
        at("2029-02-28T00:00:00+00:00"),
        at("2030-02-28T00:00:00+00:00"),
        at("2031-02-28T00:00:00+00:00"),
        at("2032-02-29T00:00:00+00:00"),
    ]


def test_mixed_calendar_and_exact_parts() -> None:
    r = interval("R/2026-01-31T00:00:00Z/P1M1DT12H")
    # run k = start + k months (clamped) + k * 1.5 days
    assert runs(r, at("2026-01-31T00:00:00+00:00"), 2) == [
        at("2026-03-01T12:00:00+00:00"),  # Feb 28 + 1.5 days
        at("2026-04-03T00:00:00+00:00"),  # Mar 31 + 3 days
    ]


def test_weeks() -> None:
    r = interval("R/2026-01-01T00:00:00Z/P2W")
    assert r.next_after(at("2026-01-01T00:00:00+00:00")) == at("2026-01-15T00:00:00+00:00")
    assert interval("P1W").first_run() == CREATED
    assert interval("P1W").next_after(CREATED) == CREATED + timedelta(weeks=1)


def test_fractional_seconds() -> None:
    r = interval("R/2026-01-01T00:00:00Z/PT0.5S")
    assert r.next_after(at("2026-01-01T00:00:10.2+00:00")) == at("2026-01-01T00:00:10.5+00:00")
    assert interval("R/2026-01-01T00:00:00Z/PT1,25S").step == timedelta(seconds=1.25)
    assert interval("PT1M0.000001S").step == timedelta(minutes=1, microseconds=1)
    r = interval("R2/2026-01-01T00:00:00.123456Z/PT1S")
    assert r.first_run() == at("2026-01-01T00:00:00.123456+00:00")


def test_start_without_seconds() -> None:
    assert interval("R/2026-01-01T06:30Z/P1D").first_run() == at("2026-01-01T06:30:00+00:00")


def test_offsets_are_normalised_to_utc() -> None:
    r = interval("R/2026-01-01T02:00:00+02:00/PT1H")
    first = r.first_run()
    assert first == at("2026-01-01T00:00:00+00:00")
    assert first.tzinfo is UTC
    nxt = r.next_after(at("2026-01-01T02:30:00+02:00"))
    assert nxt is not None and nxt.tzinfo is UTC
    assert nxt == at("2026-01-01T01:00:00+00:00")
    assert interval("R/2026-01-01T00:00:00-05:30/P1D").first_run() == at(
        "2026-01-01T05:30:00+00:00"
    )


def test_months_are_added_at_the_starts_own_offset() -> None:
    # Jan 31 00:30 at +02:00 is Jan 30 in UTC; a month later is Feb 28 at +02:00
    r = interval("R/2026-01-31T00:30:00+02:00/P1M")
    assert r.next_after(r.first_run()) == at("2026-02-28T00:30:00+02:00")


def test_moment_in_any_zone() -> None:
    r = interval("R/2026-01-01T00:00:00Z/PT1H")
    moment = at("2026-01-01T05:30:00+00:00").astimezone(BERLIN)
    assert r.next_after(moment) == at("2026-01-01T06:00:00+00:00")


def test_lowercase_designators_and_surrounding_space() -> None:
    r = parse("  r2/2026-01-01t00:00:00z/pt1h \n")
    assert r.text == "r2/2026-01-01t00:00:00z/pt1h"
    assert r.total_runs == 2
    assert r.first_run() == at("2026-01-01T00:00:00+00:00")


def test_runs_past_the_end_of_time_are_none() -> None:
    r = interval("R/9999-12-31T00:00:00Z/P1D")
    assert r.first_run() == at("9999-12-31T00:00:00+00:00")
    assert r.next_after(r.first_run()) is None
    m = interval("R/9999-11-30T00:00:00Z/P1M")
    assert m.next_after(m.first_run()) == at("9999-12-30T00:00:00+00:00")
    assert m.next_after(at("9999-12-30T00:00:00+00:00")) is None


def test_next_after_is_arithmetic_not_a_walk_from_the_start() -> None:
    # 63 billion one-second runs, and 120,000 monthly ones: a loop from the start would
    # not finish within the test's timeout
    r = interval("R/0001-01-01T00:00:00Z/PT1S")
    assert r.next_after(at("2026-06-01T12:00:00.5+00:00")) == at("2026-06-01T12:00:01+00:00")
    m = interval("R/0001-01-31T00:00:00Z/P1M")
    assert m.next_after(at("9999-02-01T00:00:00+00:00")) == at("9999-02-28T00:00:00+00:00")
    assert m.runs_through(at("9999-02-01T00:00:00+00:00")) == 9998 * 12 + 1


def test_interval_index_matches_counting_one_by_one() -> None:
    rng = random.Random(7)
    for text in (
        "R/2026-01-31T00:00:00Z/P1M",
        "R/2024-02-29T12:00:00+05:00/P1Y",
        "R/2026-01-31T23:00:00Z/P1M2DT3H",
        "R/2026-03-30T00:00:00Z/P3M",
        "R40/2026-01-01T00:00:00Z/PT7M13.5S",
    ):
        r = interval(text)
        every = runs(r, r.first_run() - timedelta(seconds=1), limit=40)
        assert every[0] == r.first_run()
        for _ in range(200):
            i = rng.randrange(len(every) - 1)
            moment = every[i] + (every[i + 1] - every[i]) * rng.random()
            if moment == every[i + 1]:
                continue
            assert r.next_after(moment) == every[i + 1], (text, moment)
            assert r.next_after(every[i]) == every[i + 1], (text, every[i])
            assert r.runs_through(moment) == i + 1
            assert r.runs_through(every[i]) == i + 1


def test_timezone_with_an_interval() -> None:
    assert parse("PT1H", timezone="UTC").timezone == "UTC"
    with pytest.raises(RecurrenceError, match="applies only to cron"):
        parse("PT1H", timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("garbage", "is not a schedule"),
        ("2026-01-01T00:00:00/P1D", "has no UTC offset: add Z"),
        ("R5/2026-01-01T00:00/PT1H", "has no UTC offset"),
        ("2026-01-01/P1D", "not of the form 2026-01-01T00:00:00Z"),
        ("2026-13-01T00:00:00Z/P1D", "not a valid date and time"),
        ("2026-02-30T00:00:00Z/P1D", "not a valid date and time"),
        ("2026-01-01T24:00:00Z/P1D", "not a valid date and time"),
        ("2026-01-01T00:00:00+24:00/P1D", "out of range"),
        ("2026-01-01T00:00:00+02:60/P1D", "out of range"),
        ("2026-01-01T00:00:00+0200/P1D", "not of the form"),
        ("P", "has no parts"),
        ("PT", "T must be followed by"),
        ("P1DT", "T must be followed by"),
        ("P1H", "go after a T"),
        ("P1S", "go after a T"),
        ("PT1.5H", "only the seconds may have a fraction"),
        ("P1.5D", "only the seconds may have a fraction"),
        ("PT0.0000001S", "at most 6 decimal places"),
        ("PT1S1M", "in that order"),
        ("P1D1Y", "in that order"),
        ("P-1D", "expected PnYnMnWnDTnHnMnS"),
        ("P0D", "is zero"),
        ("PT0S", "is zero"),
        ("R5/2026-01-01T00:00:00Z/P0Y", "is zero"),
        ("P99999999999Y", "too long"),
        ("P999999999999D", "too long"),
        ("R-1/2026-01-01T00:00:00Z/PT1H", "R followed by a whole number"),
        ("R1.5/PT1H", "R followed by a whole number"),
        ("Rx/PT1H", "R followed by a whole number"),
        ("R0/2026-01-01T00:00:00Z/PT1H", "R0 means no runs"),
        ("R5", "needs a duration"),
        ("R5/", "a duration starts with P"),
        ("R5/2026-01-01T00:00:00Z", "a duration starts with P"),
        ("2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", "an end time is not supported"),
        ("R5/2026-01-01T00:00:00Z/PT1H/X", r"expected \[Rn/\]\[start/\]duration"),
        ("* * * * * *", "has 6 fields; it needs 5"),
        ("* * * *", "has 4 fields; it needs 5"),
        ("60 * * * *", "bad minute field '60'"),
        ("* 24 * * *", "bad hour field '24'"),
        ("* * 0 * *", "bad day-of-month field '0'"),
        ("0 0 31 2 *", "bad day-of-month field '31'"),
        ("* * * 13 *", "bad month field '13'"),
        ("* * * * 8", "bad day-of-week field '8'"),
        ("* * * * FUNDAY", "bad day-of-week field"),
        ("*/0 * * * *", "bad minute field"),
        ("5-1 * * * *", "bad minute field"),
        ("1,,2 * * * *", "bad minute field"),
        ("@reboot", "@reboot has no meaning"),
        ("@fortnightly", "unknown cron alias"),
        ("0 0 */31 * 1L", "matches no time in 50 years"),  # the 1st that is a last Monday
    ],
)
def test_malformed_text_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message) as caught:
        parse(text)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("zone", ["Mars/Base", "", "Europe", "../etc/passwd", "utc"])
def test_unknown_time_zone(zone: str) -> None:
    with pytest.raises(RecurrenceError, match="unknown time zone"):
        parse("0 * * * *", timezone=zone)


def test_naive_datetimes_are_a_programming_error() -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="aware") as caught:
        parse_recurrence("PT1H", created_at=naive)
    assert not isinstance(caught.value, RecurrenceError)
    for r in (parse("PT1H"), parse("0 * * * *")):
        with pytest.raises(ValueError, match="aware"):
            r.next_after(naive)


# -- cron --------------------------------------------------------------------------------


def test_cron_in_utc() -> None:
    r = parse("*/15 * * * *")
    assert isinstance(r, CronRecurrence)
    assert (r.kind, r.timezone, r.total_runs) == ("cron", "UTC", None)
    assert r.first_run() == at("2026-01-01T12:15:00+00:00")  # strictly after created_at
    assert runs(r, at("2026-01-01T23:50:00+00:00"), 3) == [
        at("2026-01-02T00:00:00+00:00"),
        at("2026-01-02T00:15:00+00:00"),
        at("2026-01-02T00:30:00+00:00"),
    ]
    daily = parse("30 2 * * *")
    assert daily.next_after(at("2026-05-05T02:30:00+00:00")) == at("2026-05-06T02:30:00+00:00")
    assert daily.next_after(at("2026-05-05T02:29:59.999+00:00")) == at("2026-05-05T02:30:00+00:00")


def test_cron_text_is_normalised_and_names_any_case() -> None:
    r = parse("  0   9 *  * mon-fri ")
    assert r.text == "0 9 * * mon-fri"
    assert r.next_after(at("2026-01-02T09:00:00+00:00")) == at("2026-01-05T09:00:00+00:00")
    assert parse("0 0 1 jan,JUL *").next_after(CREATED) == at("2026-07-01T00:00:00+00:00")


def test_cron_result_is_utc_whatever_the_zone_of_the_moment() -> None:
    r = parse("0 9 * * *", timezone="Europe/Berlin")
    nxt = r.next_after(at("2026-07-01T12:00:00+09:00"))
    assert nxt == at("2026-07-01T07:00:00+00:00")
    assert nxt is not None and nxt.tzinfo is UTC


def test_cron_spring_forward_gap_runs_at_the_end_of_the_gap() -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist
    r = parse("30 2 * * *", timezone="Europe/Berlin")
    assert runs(r, at("2026-03-27T12:00:00+00:00"), 4) == [
        at("2026-03-28T02:30:00+01:00"),
        at("2026-03-29T03:00:00+02:00"),  # the first minute after the gap (01:00 UTC)
        at("2026-03-30T02:30:00+02:00"),
        at("2026-03-31T02:30:00+02:00"),
    ]


def test_cron_gap_run_merges_with_a_run_due_at_the_end_of_the_gap() -> None:
    r = parse("30 2,3 * * *", timezone="Europe/Berlin")
    assert runs(r, at("2026-03-29T00:00:00+00:00"), 3) == [
        at("2026-03-29T03:00:00+02:00"),
        at("2026-03-29T03:30:00+02:00"),
        at("2026-03-30T02:30:00+02:00"),
    ]


def test_cron_fall_back_night_runs_once() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    r = parse("30 2 * * *", timezone="Europe/Berlin")
    assert runs(r, at("2026-10-24T12:00:00+00:00"), 2) == [
        at("2026-10-25T02:30:00+02:00"),  # the first 02:30 (00:30 UTC), not the second
        at("2026-10-26T02:30:00+01:00"),
    ]
    # asked between the two 02:30s, or during the second one: nothing more that night
    for moment in ("2026-10-25T00:30:00+00:00", "2026-10-25T01:20:00+00:00"):
        assert r.next_after(at(moment)) == at("2026-10-26T02:30:00+01:00")


def test_cron_hourly_across_new_york_dst_changes_every_utc_hour() -> None:
    r = parse("0 * * * *", timezone="America/New_York")
    for day in ("2026-03-08", "2026-11-01"):
        start = at(f"{day}T00:00:00+00:00")
        got = runs(r, start, 30)
        assert got == [start + timedelta(hours=h) for h in range(1, 31)], day
    # the clock reads 01:00 twice in the fall-back night, and never 02:00 in spring
    fall = [t.astimezone(NEW_YORK).strftime("%H:%M%z") for t in runs(r, at("2026-11-01T04:30Z"), 3)]
    assert fall == ["01:00-0400", "01:00-0500", "02:00-0500"]
    spring = [
        t.astimezone(NEW_YORK).strftime("%H:%M%z") for t in runs(r, at("2026-03-08T05:30Z"), 2)
    ]
    assert spring == ["01:00-0500", "03:00-0400"]


def test_cron_day_of_month_or_day_of_week() -> None:
    # both restricted: the 13th or a Friday (Apr 13, 2026 is a Monday)
    r = parse("0 0 13 * FRI")
    assert [f"{t:%m-%d %a}" for t in runs(r, at("2026-04-01T00:00:00+00:00"), 5)] == [
        "04-03 Fri",
        "04-10 Fri",
        "04-13 Mon",
        "04-17 Fri",
        "04-24 Fri",
    ]
    # a field starting with * makes it "and": odd days that are Mondays
    r = parse("0 0 */2 * MON")
    assert [f"{t:%m-%d %a}" for t in runs(r, at("2026-02-01T00:00:00+00:00"), 3)] == [
        "02-09 Mon",
        "02-23 Mon",
        "03-09 Mon",
    ]


@pytest.mark.parametrize(
    ("alias", "expression"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_cron_aliases(alias: str, expression: str) -> None:
    r = parse(alias, timezone="Europe/Berlin")
    assert r.kind == "cron"
    assert r.text == alias
    same = parse(expression, timezone="Europe/Berlin")
    moment = at("2026-03-28T00:00:00+00:00")
    assert runs(r, moment, 5) == runs(same, moment, 5)


def test_cron_alias_values() -> None:
    assert parse("@weekly").next_after(CREATED) == at("2026-01-04T00:00:00+00:00")  # Sunday
    assert parse("@yearly").next_after(CREATED) == at("2027-01-01T00:00:00+00:00")


def test_cron_parsed_once_matches_a_fresh_cronsim() -> None:
    """next_after iterates a copy of a CronSim parsed once, setting its start time itself:
    this holds it to what CronSim's own constructor does, in case cronsim changes."""
    rng = random.Random(3)
    base = at("2026-01-01T00:00:00+00:00")
    for zone in ("UTC", "Europe/Berlin", "America/New_York"):
        tz = UTC if zone == "UTC" else ZoneInfo(zone)
        for expression in ("30 2 * * *", "0 * * * *", "*/7 1-5 * * MON-FRI", "0 0 13 * FRI"):
            r = parse(expression, timezone=zone)
            for _ in range(50):
                moment = base + timedelta(seconds=rng.randrange(366 * 86400), microseconds=1)
                fresh = next(CronSim(expression, moment.astimezone(tz))).astimezone(UTC)
                got = r.next_after(moment)
                assert got is not None
                if fresh > moment:  # a fresh CronSim may repeat a fall-back match
                    assert got == fresh, (zone, expression, moment)


def test_recurrences_compare_by_what_they_mean() -> None:
    assert parse("0 * * * *", "Europe/Berlin") == parse(" 0 *  * * * ", "Europe/Berlin")
    assert parse("0 * * * *", "Europe/Berlin") != parse("0 * * * *", "UTC")
    assert parse("R5/2026-01-01T00:00:00Z/PT1H") == parse("R5/2026-01-01T00:00:00Z/PT1H")
    assert "CronSim" not in repr(parse("0 * * * *"))


# -- both --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("R/2026-01-31T00:00:00Z/P1M", None),
        ("R/2026-01-01T00:00:00+05:45/PT7H13M", None),
        ("R1000/2026-01-01T00:00:00Z/P1DT0.25S", None),
        ("30 2 * * *", "Europe/Berlin"),
        ("0 * * * *", "America/New_York"),
        ("*/20 1-3 * * *", "Europe/Berlin"),
        ("0 0 13 * FRI", "Australia/Lord_Howe"),  # a 30-minute DST change
        ("@daily", "America/Santiago"),  # DST changes at midnight
    ],
)
def test_next_after_is_after_and_increasing(text: str, zone: str | None) -> None:
    r = parse(text, zone)
    rng = random.Random(text)
    moments = sorted(
        CREATED + timedelta(seconds=rng.randrange(2 * 366 * 86400), microseconds=rng.random())
        for _ in range(300)
    )
    answers = [r.next_after(m) for m in moments]
    for moment, answer in zip(moments, answers, strict=True):
        assert answer is not None
        assert answer > moment
        assert answer.tzinfo is UTC
        assert r.next_after(answer - timedelta(microseconds=1)) == answer  # nothing in between
    assert all(a <= b for a, b in pairwise(a for a in answers if a is not None))
    chain = runs(r, CREATED, 200)
    assert all(a < b for a, b in pairwise(chain))
