"""``taskgate schedules ...``: named schedules on a server, through the SDK only.

A schedule runs an operation with fixed parameters on a recurrence; each run is a task.
The commands take the same ``--url``, ``--api-key``, ``--client-config`` and ``--json``
flags as ``taskgate tasks ...``, render with `taskgate.cli.render`, and exit with the
statuses listed in `taskgate.cli.remote` (a run refused because the last one goes on
is a 409: status 1; an unknown schedule a 404: status 2; a recurrence the server cannot
read a 422 naming the field: status 2).

    taskgate schedules create nightly vzdump '0 3 * * *' vmid=100 --timezone Europe/Paris
    taskgate schedules run nightly --wait
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from rich.text import Text

from taskgate.cli import render
from taskgate.cli.arguments import (
    duration_callback,
    not_blank,
    parse_duration,
    parse_labels,
    parse_params,
)
from taskgate.cli.client_commands import (
    DEFAULT_LIMIT,
    VERBOSE,
    follow_to_end,
    print_submitted,
    print_tasks,
    split_values,
)
from taskgate.cli.remote import EXIT_HELP, EXIT_OK, connection_options, session
from taskgate.client import Schedule

F = TypeVar("F", bound=Callable[..., Any])

OFF = "off"
"""What ``--failure-threshold`` and ``--schedule-threshold`` take to remove a threshold."""
MAX_PAGE = 500
"""The most schedules the server returns per page (its own limit)."""


class _Group(click.Group):
    """The ``schedules`` group; ``ls`` is another name of ``list``, as in ``tasks ls``."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, "list" if cmd_name == "ls" else cmd_name)


@click.group(cls=_Group, epilog=EXIT_HELP)
def schedules() -> None:
    """Create, list, change, pause, resume, run and delete schedules.

    A schedule runs an operation with fixed parameters on a recurrence: an ISO 8601
    repeating interval (R5/2026-01-01T00:00:00Z/PT1H, or PT10M: every 10 minutes from
    now) or a cron expression ('0 3 * * *', @daily) in a time zone. Each run is a task.
    REF is a schedule's id or its name.
    """


# -- values -------------------------------------------------------------------------------


def _failure_threshold(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | str | None:
    if value is None or value.strip().lower() == OFF:
        return None if value is None else OFF
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter(f"{value!r} is not a whole number >= 1, or {OFF}")
    return count


def _schedule_threshold(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | str | None:
    if value is None or value.strip().lower() == OFF:
        return None if value is None else OFF
    return parse_duration(value, option="--schedule-threshold")


def _params(items: Iterable[str]) -> dict[str, Any]:
    """``key=value`` parameters, as ``taskgate submit`` reads them."""
    for item in items:
        if "=" not in item:
            raise click.BadParameter(
                f"{item!r} is not key=value (a cron expression is one argument,"
                " in quotes: '0 3 * * *')",
                param_hint="PARAMS",
            )
    return parse_params(items)


def _run_options(fn: F) -> F:
    """The flags of ``create`` and ``update``: when and how each run goes."""
    for option in reversed(
        (
            click.option(
                "--timezone",
                metavar="ZONE",
                help="IANA time zone a cron expression runs in [default: UTC].",
            ),
            click.option(
                "--overlap",
                type=click.Choice(["skip", "queue"]),
                help="A run due while the last one goes: skip it, or run it after [default: skip].",
            ),
            click.option(
                "--failure-threshold",
                callback=_failure_threshold,
                metavar="N",
                help=f"Disable the schedule after N failed runs in a row ({OFF}: never).",
            ),
            click.option(
                "--schedule-threshold",
                callback=_schedule_threshold,
                metavar="DURATION",
                help=f"A run starting later than this says so in its log ({OFF}: never).",
            ),
            click.option("--object-id", metavar="ID", help="What each run acts on."),
            click.option("--priority", type=int, help="Each run's priority."),
            click.option(
                "--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label (repeat)."
            ),
            click.option(
                "--task-timeout",
                "--timeout",
                "task_timeout",
                callback=duration_callback,
                metavar="DURATION",
                help="Each run's own time limit [default: the operation's].",
            ),
            click.option(
                "--max-attempts", type=click.IntRange(1), help="Attempts, counting retries."
            ),
        )
    ):
        fn = option(fn)
    return fn


def _task_options(
    object_id: str | None,
    priority: int | None,
    labels: tuple[str, ...],
    task_timeout: float | None,
    max_attempts: int | None,
) -> dict[str, Any]:
    """The run options given on the command line."""
    options: dict[str, Any] = {}
    if object_id is not None:
        options["object_id"] = object_id
    if priority is not None:
        options["priority"] = priority
    if labels:
        options["labels"] = parse_labels(labels)
    if task_timeout is not None:
        options["timeout"] = task_timeout
    if max_attempts is not None:
        options["max_attempts"] = max_attempts
    return options


def _print(schedule: Schedule, done: str, *, as_json: bool) -> None:
    if as_json:
        render.json_line(schedule)
    else:
        render.console().print(render.schedule_line(schedule, done))


# -- reading ------------------------------------------------------------------------------


@schedules.command("list")
@click.option(
    "--type", "types", multiple=True, metavar="TYPE", help="Only these operations (repeat, or a,b)."
)
@click.option("--enabled/--disabled", default=None, help="Only enabled (or disabled) schedules.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Most schedules to show.",
)
@click.option("-a", "--all", "everything", is_flag=True, help="Every matching schedule.")
@connection_options
def list_command(
    types: tuple[str, ...],
    enabled: bool | None,
    limit: int,
    everything: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """List schedules by name: a table (name, operation, recurrence and time zone, enabled,
    next and last run, runs, failures in a row), or one JSON object per line with --json.
    """
    filters: dict[str, Any] = {}
    if types:
        filters["type"] = split_values(types)
    if enabled is not None:
        filters["enabled"] = enabled
    with session(**connection) as client:
        if everything:
            found = client.list_schedules(page_size=MAX_PAGE, **filters)
        else:
            found = client.list_schedules(
                limit=limit + 1, page_size=min(limit + 1, MAX_PAGE), **filters
            )
        if as_json:
            for schedule in itertools.islice(found, None if everything else limit):
                render.json_line(schedule)
            return EXIT_OK
        rows = list(found)
        more = not everything and len(rows) > limit
        out = render.console()
        if not rows:
            out.print("no schedules", style="dim")
            return EXIT_OK
        out.print(render.schedule_table(rows[:limit] if more else rows))
        if more:
            render.console(stderr=True).print(
                f"(the first {limit} shown; --limit N or --all for more)", style="dim"
            )
    return EXIT_OK


@schedules.command()
@click.argument("ref", metavar="REF", callback=not_blank)
@connection_options
def show(ref: str, as_json: bool, **connection: Any) -> int:
    """Show every field of a schedule."""
    with session(**connection) as client:
        schedule = client.get_schedule(ref)
        if as_json:
            render.json_line(schedule)
        else:
            render.console().print(render.schedule_details(schedule))
    return EXIT_OK


@schedules.command()
@click.argument("ref", metavar="REF", callback=not_blank)
@click.option(
    "--state", "states", multiple=True, metavar="STATE", help="Only these states (repeat, or a,b)."
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Most runs to show.",
)
@click.option("-a", "--all", "everything", is_flag=True, help="Every run (no limit).")
@connection_options
def runs(
    ref: str,
    states: tuple[str, ...],
    limit: int,
    everything: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """List a schedule's runs (its tasks), newest first, as `taskgate tasks ls` does."""
    with session(**connection) as client:
        schedule = client.get_schedule(ref)
        filters: dict[str, Any] = {"schedule_id": schedule.id}
        if states:
            filters["state"] = split_values(states)
        return print_tasks(client, filters, limit=None if everything else limit, as_json=as_json)


# -- changing -----------------------------------------------------------------------------


@schedules.command(epilog=EXIT_HELP)
@click.argument("name")
@click.argument("operation")
@click.argument("recurrence")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@_run_options
@click.option("--disabled", is_flag=True, help="Create it paused (`schedules resume` starts it).")
@connection_options
def create(
    name: str,
    operation: str,
    recurrence: str,
    params: tuple[str, ...],
    timezone: str | None,
    overlap: str | None,
    failure_threshold: int | str | None,
    schedule_threshold: float | str | None,
    object_id: str | None,
    priority: int | None,
    labels: tuple[str, ...],
    task_timeout: float | None,
    max_attempts: int | None,
    disabled: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """Create schedule NAME: OPERATION with parameters KEY=VALUE ... on RECURRENCE.

    RECURRENCE is an ISO 8601 repeating interval (R5/2026-01-01T00:00:00Z/PT1H; PT10M is
    every 10 minutes from now) or a cron expression in --timezone, quoted as one argument
    ('0 3 * * *', @daily). Parameters are read as `taskgate submit` reads them. Prints the
    schedule's id (on a terminal: its name and next run).

    \b
        taskgate schedules create nightly vzdump '0 3 * * *' vmid=100 --timezone Europe/Paris
        taskgate schedules create updates aptupdate PT6H --failure-threshold 3
    """
    values = _params(params)
    options = _task_options(object_id, priority, labels, task_timeout, max_attempts)
    with session(**connection) as client:
        schedule = client.create_schedule(
            name,
            operation,
            recurrence,
            values,
            timezone=timezone,
            enabled=False if disabled else None,
            overlap=overlap,
            failure_threshold=failure_threshold if isinstance(failure_threshold, int) else None,
            schedule_threshold=schedule_threshold
            if isinstance(schedule_threshold, float)
            else None,
            options=options or None,
        )
        if as_json:
            render.json_line(schedule)
            return EXIT_OK
        out = render.console()
        if out.is_terminal:
            out.print(render.schedule_line(schedule, "created"))
        else:
            out.print(schedule.id, markup=False, highlight=False)
    return EXIT_OK


@schedules.command(epilog=EXIT_HELP)
@click.argument("ref", metavar="REF", callback=not_blank)
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--recurrence",
    metavar="RECURRENCE",
    help="A new ISO 8601 interval or cron expression; the next run is computed from now.",
)
@_run_options
@click.option("--enabled/--disabled", default=None, help="Enable or disable it (resume, pause).")
@connection_options
def update(
    ref: str,
    params: tuple[str, ...],
    recurrence: str | None,
    timezone: str | None,
    overlap: str | None,
    failure_threshold: int | str | None,
    schedule_threshold: float | str | None,
    object_id: str | None,
    priority: int | None,
    labels: tuple[str, ...],
    task_timeout: float | None,
    max_attempts: int | None,
    enabled: bool | None,
    as_json: bool,
    **connection: Any,
) -> int:
    """Change a schedule: what is given changes, the rest stays.

    KEY=VALUE parameters replace all of its parameters. Run options (--priority,
    --timeout, ...) change one at a time; --label replaces the labels. 'off' removes a
    threshold (--failure-threshold off).
    """
    changes: dict[str, Any] = {}
    if params:
        changes["params"] = _params(params)
    for key, value in (
        ("recurrence", recurrence),
        ("timezone", timezone),
        ("overlap", overlap),
        ("enabled", enabled),
        ("failure_threshold", failure_threshold),
        ("schedule_threshold", schedule_threshold),
    ):
        if value is not None:
            changes[key] = None if value == OFF else value
    options = _task_options(object_id, priority, labels, task_timeout, max_attempts)
    if not changes and not options:
        raise click.UsageError("nothing to change: give KEY=VALUE parameters or options")
    with session(**connection) as client:
        target: str | Schedule = ref
        if options:  # the API replaces the options whole: keep those not given
            target = client.get_schedule(ref)
            changes["options"] = {**target.options, **options}
        _print(client.update_schedule(target, **changes), "updated", as_json=as_json)
    return EXIT_OK


@schedules.command()
@click.argument("ref", metavar="REF", callback=not_blank)
@connection_options
def pause(ref: str, as_json: bool, **connection: Any) -> int:
    """Pause a schedule: no run starts until it is resumed (a running one goes on)."""
    with session(**connection) as client:
        _print(client.pause_schedule(ref), "paused", as_json=as_json)
    return EXIT_OK


@schedules.command()
@click.argument("ref", metavar="REF", callback=not_blank)
@connection_options
def resume(ref: str, as_json: bool, **connection: Any) -> int:
    """Resume a schedule: its next run is the first one from now (runs missed while it
    was paused are not made up), and its failures so far are forgotten."""
    with session(**connection) as client:
        _print(client.resume_schedule(ref), "resumed", as_json=as_json)
    return EXIT_OK


@schedules.command("run", epilog=EXIT_HELP)
@click.argument("ref", metavar="REF", callback=not_blank)
@click.option("-w", "--wait", is_flag=True, help="Follow the run until it ends.")
@click.option(
    "--wait-timeout",
    callback=duration_callback,
    metavar="DURATION",
    help="With --wait: stop waiting after this long (exit status 5); the run goes on.",
)
@VERBOSE
@connection_options
def run_command(
    ref: str,
    wait: bool,
    wait_timeout: float | None,
    verbose: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """Run a schedule now, besides its recurrence; print the run's task id.

    With --wait, follow the run as `taskgate tasks wait` does: the exit status says how
    it ended. A schedule never runs twice at once: while its last run goes on this is
    refused (exit status 1).
    """
    if wait_timeout is not None and not wait:
        raise click.UsageError("--wait-timeout needs --wait")
    with session(**connection) as client:
        task = client.run_schedule(ref)
        if wait:
            return follow_to_end(
                client, task, timeout=wait_timeout, as_json=as_json, verbose=verbose
            )
        print_submitted(task, as_json=as_json)
    return EXIT_OK


@schedules.command()
@click.argument("ref", metavar="REF", callback=not_blank)
@connection_options
def delete(ref: str, as_json: bool, **connection: Any) -> int:
    """Delete a schedule; its tasks, ended or running, stay. --json prints the schedule as
    it was."""
    with session(**connection) as client:
        schedule = client.get_schedule(ref)
        client.delete_schedule(schedule)
        if as_json:
            render.json_line(schedule)
        else:
            render.console().print(
                Text.assemble("schedule ", (schedule.name, "bold"), " deleted; its tasks stay")
            )
    return EXIT_OK
