"""The states and their transitions, checked against the design's table (DESIGN.md §3,
§4) written out here independently of `taskgate.model`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from taskgate.model import (
    ACTIVE,
    PENDING,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    ErrorInfo,
    State,
    Task,
    can_transition,
    epoch,
    sources,
    utc,
)

Q, S, R, C = State.QUEUED, State.SCHEDULED, State.RUNNING, State.CANCELING
SUS = State.SUSPENDED
OK, FAIL, CXL, TO = State.SUCCEEDED, State.FAILED, State.CANCELED, State.TIMED_OUT

ALLOWED = {
    (Q, R),  # claimed
    (Q, CXL),  # canceled before it ran
    (S, R),
    (S, CXL),
    (S, Q),  # its time came
    (Q, SUS),  # suspended before it ran
    (S, SUS),
    (SUS, Q),  # resumed
    (SUS, S),  # resumed before its time
    (SUS, CXL),
    (R, OK),
    (R, FAIL),
    (R, TO),
    (R, C),  # cancel asked while running
    (R, CXL),
    (R, Q),  # worker lost, safe to retry
    (R, S),  # retry after a backoff
    (C, CXL),
    (C, OK),  # the handler finished before it saw the cancel
    (C, FAIL),
    (C, TO),
}


def test_the_nine_states() -> None:
    assert [s.value for s in State] == [
        "queued",
        "scheduled",
        "suspended",
        "running",
        "canceling",
        "succeeded",
        "failed",
        "canceled",
        "timed_out",
    ]
    assert set(TRANSITIONS) == set(State)


def test_terminal_active_and_waiting_sets() -> None:
    assert {OK, FAIL, CXL, TO} == TERMINAL
    assert {R, C} == ACTIVE
    assert {Q, S} == WAITING
    assert {Q, S, SUS} == PENDING
    assert all(s.terminal == (s in TERMINAL) for s in State)
    assert not (TERMINAL & ACTIVE) and not (TERMINAL & PENDING) and not (ACTIVE & PENDING)


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(State, State)), ids=lambda s: s.value
)
def test_every_pair(current: State, target: State) -> None:
    expected = (current, target) in ALLOWED
    assert can_transition(current, target) is expected
    assert (target in TRANSITIONS[current]) is expected
    assert (current in sources(target)) is expected


def test_nothing_leaves_a_terminal_state_and_nothing_stays() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    for state in State:
        assert not can_transition(state, state)


def test_sources_in_declaration_order() -> None:
    assert sources(CXL) == (Q, S, SUS, R, C)
    assert sources(R) == (Q, S)
    assert sources(Q) == (S, SUS, R)


def test_times_round_trip() -> None:
    assert utc(None) is None and epoch(None) is None
    moment = utc(1_700_000_000.25)
    assert moment == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert epoch(moment) == 1_700_000_000.25


def test_error_info_round_trip() -> None:
    error = ErrorInfo("ValueError", "bad", "Traceback")
    assert ErrorInfo.from_dict(error.to_dict()) == error
    assert ErrorInfo.from_dict({}) == ErrorInfo("Error", "")


def test_task_etag_changes_with_the_version() -> None:
    now = datetime.now(UTC)
    task = Task("0190f2a4-0000-7000-8000-00000000abcd", "UPID", "t", Q, {}, now, now)
    later = Task("0190f2a4-0000-7000-8000-00000000abcd", "UPID", "t", R, {}, now, now, version=2)
    assert task.etag.startswith('"') and task.etag.endswith('"')
    assert task.etag != later.etag
    assert not task.terminal and Task(task.id, "U", "t", FAIL, {}, now, now).terminal
