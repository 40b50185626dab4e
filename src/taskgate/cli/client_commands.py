"""The commands for people at a terminal: ``taskgate submit`` and ``taskgate tasks ...``
(``taskgate schedules ...`` is in `taskgate.cli.schedule_commands`, ``taskgate groups
...`` in `taskgate.cli.group_commands`).

They use the SDK (`taskgate.client`) and nothing of the server's. Output is a rich
table, panel or progress bar on a terminal, plain text when piped, and JSON only with
``--json``. Exit statuses are listed in `taskgate.cli.remote`.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

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
from taskgate.cli.remote import (
    EXIT_FAILED,
    EXIT_HELP,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    STATE_EXITS,
    connection_options,
    fail,
    session,
)
from taskgate.cli.watch import display_for, follow
from taskgate.client import Client, State, Task, WaitTimeout

DEFAULT_LIMIT = 20
ARCHIVED: dict[str, bool | str] = {"false": False, "true": True, "any": "any"}
"""``tasks ls --archived``: the SDK's value for each choice."""
EXIT_INTERRUPTED = 130
"""Ctrl+C, as a shell reports a command ended by SIGINT (128 + 2)."""
MAX_PAGE = 500
"""The most tasks the server returns per page (its own limit)."""

VERBOSE = click.option(
    "-v", "--verbose", is_flag=True, help="Show the remote traceback when the task failed."
)


def follow_to_end(
    client: Client, task: Task, *, timeout: float | None, as_json: bool, verbose: bool
) -> int:
    """Follow ``task`` to its end, show how it ended; the exit status for it."""
    try:
        task = follow(client, task, timeout=timeout, display=display_for(as_json=as_json))
    except WaitTimeout as exc:
        if as_json:
            render.json_line(exc.task)
        fail(
            f"task {exc.task.id} is still {exc.task.state} after waiting"
            f" {render.duration(timeout or 0.0)}",
            EXIT_WAIT_TIMEOUT,
        )
    except KeyboardInterrupt:  # Ctrl+C stops the waiting, not the task
        click.echo(
            f"taskgate: stopped waiting; task {task.id} goes on"
            f" (to stop it: taskgate tasks cancel {task.id})",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        render.json_line(task)
    else:
        render.console().print(render.outcome(task, traceback=verbose))
    code = STATE_EXITS.get(str(task.state), EXIT_FAILED)
    if code != EXIT_OK:
        raise click.exceptions.Exit(code)  # a return value is not the status under click
    return code


# -- submit -------------------------------------------------------------------------------


@click.command(epilog=EXIT_HELP)
@click.argument("operation", metavar="TYPE")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("-w", "--wait", is_flag=True, help="Follow the task until it ends.")
@click.option(
    "--wait-timeout",
    callback=duration_callback,
    metavar="DURATION",
    help="With --wait: stop waiting after this long (exit status 5); the task goes on.",
)
@click.option("--object-id", metavar="ID", help="What the task acts on (for filtering).")
@click.option("--priority", type=int, help="Higher runs first [default: the operation's].")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label (repeat).")
@click.option(
    "--delay",
    callback=duration_callback,
    metavar="DURATION",
    help="Run no earlier than this from now.",
)
@click.option("--scheduled-at", metavar="TIME", help="Run no earlier than this RFC 3339 time.")
@click.option(
    "--task-timeout",
    callback=duration_callback,
    metavar="DURATION",
    help="The task's own time limit [default: the operation's].",
)
@click.option("--max-attempts", type=click.IntRange(1), help="Attempts, counting retries.")
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Submitting again with the same key returns the same task.",
)
@click.option(
    "--group",
    "group_id",
    callback=not_blank,
    metavar="ID",
    help="The group the task joins (one `groups submit` made, or a name of yours).",
)
@click.option(
    "--exclusive",
    multiple=True,
    callback=not_blank,
    metavar="NAME",
    help="A resource the task holds alone while it runs (repeat).",
)
@click.option(
    "--shared",
    multiple=True,
    callback=not_blank,
    metavar="NAME",
    help="A resource it shares with other --shared holders, never beside an --exclusive one.",
)
@VERBOSE
@connection_options
def submit(
    operation: str,
    params: tuple[str, ...],
    wait: bool,
    wait_timeout: float | None,
    object_id: str | None,
    priority: int | None,
    labels: tuple[str, ...],
    delay: float | None,
    scheduled_at: str | None,
    task_timeout: float | None,
    max_attempts: int | None,
    idempotency_key: str | None,
    group_id: str | None,
    exclusive: tuple[str, ...],
    shared: tuple[str, ...],
    verbose: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """Submit a task of operation TYPE with parameters KEY=VALUE ...

    A value is JSON when it parses as JSON (vmid=100 is a number, flag=true a boolean,
    tags='["a"]' a list), else text; KEY:=JSON demands JSON (note:='"007"'). Prints the
    task id; with --wait, follows the task with a progress bar and prints its result or
    its error, and the exit status says how it ended.

    \b
        taskgate submit vzdump vmid=100 storage=local --wait
        ID=$(taskgate submit long_running seconds=30)
    """
    if wait_timeout is not None and not wait:
        raise click.UsageError("--wait-timeout needs --wait")
    values = parse_params(params)
    task_labels = parse_labels(labels)
    with session(**connection) as client:
        task = client.submit(
            operation,
            values,
            idempotency_key=idempotency_key,
            object_id=object_id,
            priority=priority,
            labels=task_labels or None,
            delay=delay,
            scheduled_at=scheduled_at,
            timeout=task_timeout,
            max_attempts=max_attempts,
            group_id=group_id,
            exclusive_resources=exclusive or None,
            shared_resources=shared or None,
        )
        if wait:
            return follow_to_end(
                client, task, timeout=wait_timeout, as_json=as_json, verbose=verbose
            )
        print_submitted(task, as_json=as_json)
    return EXIT_OK


def print_submitted(task: Task, *, as_json: bool) -> None:
    """A new task: its id alone when piped (``ID=$(taskgate submit ...)``), with what it
    is and how to follow it on a terminal."""
    if as_json:
        render.json_line(task)
        return
    out = render.console()
    if not out.is_terminal:
        out.print(task.id, markup=False, highlight=False)
        return
    out.print(Text(task.id, style="bold"))
    summary = Text.assemble(task.type, " ", render.state_text(task.state))
    if task.object_id:
        summary.append(f" (object {task.object_id})")
    out.print(summary.append(f"; follow it: taskgate tasks wait {task.id}", style="dim"))


# -- tasks --------------------------------------------------------------------------------


@click.group(epilog=EXIT_HELP)
def tasks() -> None:
    """List, show, follow, cancel, suspend, resume, retry, acknowledge and purge tasks."""


def split_values(values: Iterable[str]) -> list[str]:
    """Repeated and comma-separated values, as one list."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@tasks.command("ls")
@click.option(
    "--state", "states", multiple=True, metavar="STATE", help="Only these states (repeat, or a,b)."
)
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only these operations.")
@click.option("--object-id", metavar="ID", help="Only tasks acting on this object.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only with this label.")
@click.option("--tenant", metavar="TENANT", help="Only this tenant's tasks (admin keys).")
@click.option(
    "-q",
    "--search",
    callback=not_blank,
    metavar="TEXT",
    help="Only the task with this id, tasks acting on this object id, or with a label of"
    " this value (or this key=value label): exact matches.",
)
@click.option(
    "--acknowledged/--unacknowledged",
    default=None,
    help="Only acknowledged (or not yet acknowledged) tasks.",
)
@click.option(
    "--group", "group_id", callback=not_blank, metavar="ID", help="Only this group's tasks."
)
@click.option(
    "--parent", "parent_id", callback=not_blank, metavar="ID", help="Only this task's children."
)
@click.option(
    "--resource", callback=not_blank, metavar="NAME", help="Only tasks reserving this resource."
)
@click.option(
    "--archived",
    type=click.Choice(list(ARCHIVED)),
    default="false",
    show_default=True,
    help="Tasks not yet moved to history (false), only those in history (true), or both.",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Most tasks to show.",
)
@click.option("-a", "--all", "everything", is_flag=True, help="Every matching task (no limit).")
@connection_options
def ls(
    states: tuple[str, ...],
    types: tuple[str, ...],
    object_id: str | None,
    labels: tuple[str, ...],
    tenant: str | None,
    search: str | None,
    acknowledged: bool | None,
    group_id: str | None,
    parent_id: str | None,
    resource: str | None,
    archived: str,
    limit: int,
    everything: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """List tasks, newest first: a table, or one JSON object per line with --json.

    Tasks that ended long ago move to history (how long after is each operation's
    archive_after); --archived true or any lists them."""
    filters: dict[str, Any] = {
        "group_id": group_id,
        "parent_id": parent_id,
        "resource": resource,
        "archived": ARCHIVED[archived],
    }
    if states:
        filters["state"] = split_values(states)
    if types:
        filters["type"] = split_values(types)
    if object_id is not None:
        filters["object_id"] = object_id
    if labels:
        filters["labels"] = parse_labels(labels)
    if acknowledged is not None:
        filters["acknowledged"] = acknowledged
    if tenant is not None:
        filters["tenant"] = tenant
    if search is not None:
        filters["q"] = search
    with session(**connection) as client:
        return print_tasks(client, filters, limit=None if everything else limit, as_json=as_json)


def print_tasks(
    client: Client, filters: dict[str, Any], *, limit: int | None, as_json: bool
) -> int:
    """The tasks ``filters`` select, newest first: a table (the newest ``limit``, and a
    note on stderr when there are more), or JSON lines."""
    if limit is None:
        found = client.list(page_size=MAX_PAGE, **filters)
    else:
        found = client.list(limit=limit + 1, page_size=min(limit + 1, MAX_PAGE), **filters)
    if as_json:
        for task in itertools.islice(found, limit):
            render.json_line(task)
        return EXIT_OK
    rows = list(found)
    more = limit is not None and len(rows) > limit
    out = render.console()
    if not rows:
        out.print("no tasks", style="dim")
        return EXIT_OK
    out.print(render.task_table(rows[:limit] if more else rows))
    if more:
        render.console(stderr=True).print(
            f"(the newest {limit} shown; --limit N or --all for more)", style="dim"
        )
    return EXIT_OK


def _task_line(task: Task, note: str = "") -> Text:
    return Text.assemble("task ", (task.id, "bold"), " ", render.state_text(task.state), note)


def _print_task(task: Task, *, as_json: bool, note: str = "") -> None:
    """A changed task: its JSON, or ``task ID STATE`` and ``note``."""
    if as_json:
        render.json_line(task)
    else:
        render.console().print(_task_line(task, note))


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def show(task_id: str, as_json: bool, **connection: Any) -> int:
    """Show every field of a task, and its error's traceback."""
    with session(**connection) as client:
        task = client.get(task_id)
        if as_json:
            render.json_line(task)
        else:
            render.console().print(render.task_details(task))
    return EXIT_OK


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the task ends.")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time.")
@connection_options
def logs(task_id: str, follow: bool, timestamps: bool, as_json: bool, **connection: Any) -> int:
    """Print a task's log (with -f: and new lines as they come, until the task ends)."""
    out = render.console()
    with session(**connection) as client:
        lines = client.follow_log(task_id) if follow else client.log(task_id).lines
        for line in lines:
            if as_json:
                render.json_line(line)
            else:
                out.print(render.log_text(line, timestamps=timestamps))
    return EXIT_OK


@tasks.command("wait", epilog=EXIT_HELP)
@click.argument("task_id", metavar="ID", callback=not_blank)
@click.option(
    "--timeout",
    callback=duration_callback,
    metavar="DURATION",
    help="Stop waiting after this long (exit status 5); the task goes on.",
)
@VERBOSE
@connection_options
def wait_command(
    task_id: str, timeout: float | None, verbose: bool, as_json: bool, **connection: Any
) -> int:
    """Follow a task until it ends, with a progress bar; print its result or error.

    The exit status says how it ended: 0 succeeded, 1 failed, 3 canceled, 4 timed out.
    """
    with session(**connection) as client:
        task = client.get(task_id)
        return follow_to_end(client, task, timeout=timeout, as_json=as_json, verbose=verbose)


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def cancel(task_id: str, as_json: bool, **connection: Any) -> int:
    """Cancel a task: a waiting one ends at once, a running one is asked to stop."""
    with session(**connection) as client:
        _print_task(client.cancel(task_id), as_json=as_json)
    return EXIT_OK


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def suspend(task_id: str, as_json: bool, **connection: Any) -> int:
    """Hold a waiting (queued or scheduled) task: no worker starts it until it is
    resumed. A task that has started or ended cannot be (exit status 1)."""
    with session(**connection) as client:
        _print_task(client.suspend(task_id), as_json=as_json)
    return EXIT_OK


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def resume(task_id: str, as_json: bool, **connection: Any) -> int:
    """Let a suspended task wait again (queued, or scheduled if its time is to come)."""
    with session(**connection) as client:
        _print_task(client.resume(task_id), as_json=as_json)
    return EXIT_OK


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def retry(task_id: str, as_json: bool, **connection: Any) -> int:
    """Run a task that failed, was canceled or timed out again, as a new task (same
    operation, parameters, object and labels, plus the label retry_of); prints the new
    task. A task still going, or one that succeeded, cannot be (exit status 1)."""
    with session(**connection) as client:
        _print_task(client.retry_task(task_id), as_json=as_json, note=f", a retry of {task_id}")
    return EXIT_OK


@tasks.command()
@click.argument("task_id", metavar="ID", callback=not_blank)
@connection_options
def ack(task_id: str, as_json: bool, **connection: Any) -> int:
    """Acknowledge a task (mark it as seen); its state does not change."""
    with session(**connection) as client:
        task = client.acknowledge(task_id)
        by = f" by {task.acknowledged_by}" if task.acknowledged_by else ""
        _print_task(task, as_json=as_json, note=f", acknowledged{by}")
    return EXIT_OK


# -- purge --------------------------------------------------------------------------------

ENDED = (State.SUCCEEDED, State.FAILED, State.CANCELED, State.TIMED_OUT)
"""The states a purge may name: tasks still waiting or running are never purged."""


def interactive() -> bool:
    """Whether a person can answer a question: stdin is a terminal (not a pipe, a file,
    or a test runner's input)."""
    return sys.stdin.isatty()


def parse_time(text: str, *, option: str) -> datetime:
    """An RFC 3339 time with its offset (``2026-01-31T00:00:00Z``); a naive one is
    refused rather than guessed, as the server refuses it."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an RFC 3339 time (like 2026-01-31T00:00:00Z)", param_hint=option
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            f"{text!r} has no time zone (add Z for UTC, or +02:00 ...)", param_hint=option
        )
    return moment


def _or(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def describe_purge(
    states: list[str], types: list[str], when: str | None, tenant: str | None
) -> str:
    """What a purge selects, in words, for the confirmation question: ``the failed
    tasks of type vzdump that finished more than 7d ago, in every tenant``."""
    what = f"the {_or(states)} tasks" if states else "the ended tasks"
    if types:
        what += f" of type {_or(types)}"
    if when is not None:
        what += f" that {when}"
    return what + (f", in tenant {tenant}" if tenant is not None else ", in every tenant")


@tasks.command(epilog=EXIT_HELP)
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    help="Only tasks that ended so: succeeded, failed, canceled, timed_out (repeat, or a,b).",
)
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only these operations.")
@click.option(
    "--finished-before", metavar="TIME", help="Only tasks that ended before this RFC 3339 time."
)
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Only tasks that ended longer ago than this (7d, 12h, 30m, 90s).",
)
@click.option(
    "--tenant", metavar="TENANT", help="Only this tenant's tasks [default: every tenant]."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask; needed when stdin is not a terminal.")
@connection_options
def purge(
    states: tuple[str, ...],
    types: tuple[str, ...],
    finished_before: str | None,
    older_than: str | None,
    tenant: str | None,
    yes: bool,
    as_json: bool,
    **connection: Any,
) -> int:
    """Delete ended tasks and their logs, for good (admin keys only).

    Give --state, or a time (--finished-before or --older-than), or both; with neither,
    nothing is purged. Tasks still waiting or running are never deleted. Asks first,
    unless --yes (which it needs when stdin is not a terminal). Prints how many tasks
    were deleted.

    \b
        taskgate tasks purge --state succeeded --older-than 7d
        taskgate tasks purge --older-than 0s --yes    # every ended task
    """
    wanted = split_values(states)
    unended = [s for s in wanted if s not in ENDED]
    if unended:
        raise click.BadParameter(
            f"{_or(unended)}: only ended tasks can be purged ({', '.join(ENDED)})",
            param_hint="--state",
        )
    if finished_before is not None and older_than is not None:
        raise click.UsageError("give --finished-before or --older-than, not both")
    cutoff: datetime | timedelta | None = None
    when: str | None = None
    if finished_before is not None:
        cutoff = parse_time(finished_before, option="--finished-before")
        when = f"finished before {finished_before.strip()}"
    elif older_than is not None:
        cutoff = timedelta(seconds=parse_duration(older_than, option="--older-than"))
        when = f"finished more than {older_than.strip()} ago"
    if not wanted and cutoff is None:
        raise click.UsageError(
            "give --state, --finished-before or --older-than (every ended task: --older-than"
            " 0s); a purge without a filter is refused"
        )
    if not yes and not interactive():
        raise click.UsageError("stdin is not a terminal, so nobody can confirm: add --yes")
    found_types = split_values(types)
    with session(**connection) as client:
        if not yes:
            question = (
                f"Delete {describe_purge(wanted, found_types, when, tenant)},"
                f" with their logs, on {client.base_url}?"
            )
            if not click.confirm(question, default=False, err=True):
                click.echo("taskgate: nothing purged", err=True)
                raise click.exceptions.Exit(EXIT_FAILED)
        count = client.purge(
            state=wanted or None, type=found_types or None, finished_before=cutoff, tenant=tenant
        )
        if as_json:
            render.json_line({"purged": count})
        else:
            render.console().print(f"purged {count} task{'' if count == 1 else 's'}")
    return EXIT_OK
