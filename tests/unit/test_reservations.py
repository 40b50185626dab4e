"""`reservations.choose`: which due reserved tasks may start, and `reserve`: what a task
reserves from its operation's templates and its submit."""

from __future__ import annotations

import pytest

from taskgate import App, ConcurrencyLimit, Context
from taskgate.errors import ConfigurationError, InvalidRequest
from taskgate.model import Limit, Reservation
from taskgate.reservations import Candidate, candidates, choose, reserve


def task(
    n: int, *holds: tuple[str, str, int | None], priority: int = 0, due: float = 0.0
) -> Candidate:
    return Candidate(f"t{n:02d}", priority, due, holds)


X, S, L = "exclusive", "shared", "limit"


def test_exclusive_holders_go_one_at_a_time_in_submit_order() -> None:
    waiting = [task(1, (X, "r", None)), task(2, (X, "r", None)), task(3, (X, "q", None))]
    assert choose(waiting, {}, 10) == ["t01", "t03"]
    assert choose(waiting, {(X, "r"): 1}, 10) == ["t03"]  # one runs: both wait
    assert choose(waiting[1:], {}, 10) == ["t02", "t03"]


def test_sharers_go_together_but_an_exclusive_holder_waits_for_them_and_blocks_those_behind() -> (
    None
):
    waiting = [
        task(1, (S, "r", None)),
        task(2, (S, "r", None)),
        task(3, (X, "r", None)),
        task(4, (S, "r", None)),
    ]
    assert choose(waiting, {}, 10) == ["t01", "t02"]
    assert choose(waiting[2:], {}, 10) == ["t03"]
    assert choose(waiting[3:], {(X, "r"): 1}, 10) == []
    assert choose(waiting[2:], {(S, "r"): 2}, 10) == []  # sharers run: the writer waits


def test_a_limit_counts_what_runs_and_what_is_chosen() -> None:
    waiting = [task(n, (L, "op:", 3)) for n in range(1, 6)]
    assert choose(waiting, {}, 10) == ["t01", "t02", "t03"]
    assert choose(waiting, {(L, "op:"): 2}, 10) == ["t01"]
    assert choose(waiting, {(L, "op:"): 3}, 10) == []


def test_a_task_waiting_for_one_limit_takes_no_place_under_another() -> None:
    # 3 at once in all, 1 per tenant; tenant a has a queue: b's task is not held back
    waiting = [
        task(1, (L, "op:", 3), (L, "tenant:a", 1)),
        task(2, (L, "op:", 3), (L, "tenant:a", 1)),
        task(3, (L, "op:", 3), (L, "tenant:a", 1)),
        task(4, (L, "op:", 3), (L, "tenant:b", 1)),
    ]
    assert choose(waiting, {}, 10) == ["t01", "t04"]


def test_of_those_that_may_start_the_highest_priorities_are_taken() -> None:
    waiting = [
        task(1, (X, "a", None), priority=0, due=1),
        task(2, (X, "b", None), priority=5, due=3),
        task(3, (X, "c", None), priority=5, due=2),
        task(4, (X, "a", None), priority=9),  # behind t01 on a: waits whatever its priority
    ]
    assert choose(waiting, {}, 2) == ["t02", "t03"]
    assert choose(waiting, {}, 10) == ["t01", "t02", "t03"]


def test_rows_become_candidates_in_order() -> None:
    rows = [
        {"id": "t1", "priority": 0, "due_at": 5.0, "mode": X, "resource": "r", "capacity": None},
        {"id": "t1", "priority": 0, "due_at": 5.0, "mode": L, "resource": "op:", "capacity": 2},
        {"id": "t2", "priority": 1, "due_at": 6.0, "mode": S, "resource": "r", "capacity": None},
    ]
    assert candidates(rows) == [
        Candidate("t1", 0, 5.0, ((X, "r", None), (L, "op:", 2))),
        Candidate("t2", 1, 6.0, ((S, "r", None),)),
    ]


def make_app() -> App:
    app = App()

    @app.operation(
        "sync",
        exclusive=["repository:{repository}", "tenant:{tenant}"],
        shared=["remote:{remote}", "repository:{repository}"],
        concurrency=4,
        limits=[ConcurrencyLimit(2, per="{remote}"), ConcurrencyLimit(1, name="shared-pool")],
    )
    def sync(ctx: Context, repository: int, remote: int | None = None) -> None:
        """A sync."""

    return app


def test_reserve_fills_the_templates() -> None:
    op = make_app().get("sync")
    values = {"repository": 4, "remote": 7, "tenant": "acme", "user": "u", "type": "sync"}
    assert reserve(op, values, exclusive=["extra"]) == Reservation(
        exclusive=("repository:4", "tenant:acme", "extra"),
        shared=("remote:7",),  # repository:4 is exclusive already
        limits=(Limit("sync:", 4), Limit("sync:7", 2), Limit("shared-pool:", 1)),
    )
    no_remote = reserve(op, {**values, "remote": None})
    assert no_remote is not None and no_remote.shared == ()
    assert [lim.key for lim in no_remote.limits] == ["sync:", "shared-pool:"]


def test_bad_templates_and_limits_are_configuration_errors() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="may name only"):
        app.operation("a", exclusive=["repo:{nope}"])(lambda ctx, x=1: None)
    with pytest.raises(ConfigurationError, match="at least 1"):
        app.operation("b", concurrency=0)(lambda ctx: None)
    with pytest.raises(ConfigurationError, match="purge_after is before"):
        app.operation("c", archive_after=10, purge_after=5)(lambda ctx: None)
    with pytest.raises(ConfigurationError, match="template"):
        app.operation("d", shared=["repo:{x!r}"])(lambda ctx, x=1: None)


def test_reserve_refuses_bad_names() -> None:
    op = make_app().get("sync")
    values = {"repository": 4, "remote": None, "tenant": "t", "user": "u", "type": "sync"}
    with pytest.raises(InvalidRequest, match="exclusive_resources"):
        reserve(op, values, exclusive=[""])
    with pytest.raises(InvalidRequest, match="a list"):
        reserve(op, values, shared="r")  # type: ignore[arg-type]
