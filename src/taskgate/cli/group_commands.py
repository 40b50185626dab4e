"""``taskgate groups ...``: groups of tasks on a server, through the SDK only.

A group is the tasks that share a group id: those submitted together by ``groups
submit`` (all or nothing, under a new id), and those given ``submit --group ID``. It is
followed, suspended, resumed and canceled as one. The commands take the same ``--url``,
``--api-key``, ``--client-config`` and ``--json`` flags as ``taskgate tasks ...``, render
with `taskgate.cli.render`, and exit with the statuses listed in `taskgate.cli.remote`
(a group no task of yours is in is a 404: status 2; a task the server refuses a 422
naming it, ``tasks.1.params.vmid``: status 2).

    echo '[{"type": "vzdump", "params": {"vmid": 100}}]' | taskgate groups submit -
    taskgate groups wait 01a2...
"""

from __future__ import annotations

from typing import IO, Any

import click
import orjson
from rich.text import Text

from taskgate.cli import render
from taskgate.cli.arguments import duration_callback, not_blank
from taskgate.cli.client_commands import EXIT_INTERRUPTED
from taskgate.cli.remote import (
    EXIT_CANCELED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    connection_options,
    fail,
    session,
)
from taskgate.cli.watch import follow_group, group_display_for
from taskgate.client import Group, GroupWaitTimeout

WAIT_HELP = (
    "Exit status: 0 every task succeeded, 1 one failed or timed out (or another error),"
    " 2 usage error or no such group, 3 one was canceled (none failed), 5 wait timeout,"
    " 6 server unreachable or API key refused."
)
GROUP_ID = click.argument("group_id", metavar="ID", callback=not_blank)


@click.group()
def groups() -> None:
    """Submit groups of tasks, and follow, suspend, resume or cancel them as one.

    A group is the tasks that share a group id: `groups submit` submits several under a
    new one, all or nothing; `taskgate submit --group ID` adds a task to one (any id of
    letters, digits and ._:@-). ID is a group's id.
    """


# -- values -------------------------------------------------------------------------------


def read_tasks(file: IO[bytes]) -> list[dict[str, Any]]:
    """The tasks of a group file: ``{"tasks": [...]}`` or a bare list, each task an
    object as ``POST /v1/tasks`` takes it (``{"type": "vzdump", "params": {...}}``).
    The shape is checked here; the fields are the server's to check."""
    name = getattr(file, "name", "<stdin>")
    name = "stdin" if name == "<stdin>" else name
    try:
        doc = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"{name} is not JSON: {exc}", param_hint="FILE") from None
    if isinstance(doc, dict):
        unknown = sorted(set(doc) - {"tasks"})
        if unknown:
            raise click.BadParameter(
                f"{name}: unknown field {unknown[0]!r} (accepted: tasks)", param_hint="FILE"
            )
        doc = doc.get("tasks")
    if not isinstance(doc, list):
        raise click.BadParameter(
            f'{name} holds neither {{"tasks": [...]}} nor a list of tasks', param_hint="FILE"
        )
    if not doc:
        raise click.BadParameter(f"{name} holds no tasks", param_hint="FILE")
    for n, item in enumerate(doc):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise click.BadParameter(
                f'{name}: tasks.{n} is not an object with a "type" (an operation)',
                param_hint="FILE",
            )
    return doc


def _print(group: Group, done: str, *, as_json: bool) -> None:
    if as_json:
        render.json_line(group)
    else:
        render.console().print(render.group_line(group, done))


def exit_status(group: Group) -> int:
    """How an ended group ended: 1 if a task failed or timed out, else 3 if one was
    canceled, else 0."""
    if group.count("failed") or group.count("timed_out"):
        return EXIT_FAILED
    if group.count("canceled"):
        return EXIT_CANCELED
    return EXIT_OK


# -- commands -----------------------------------------------------------------------------


@groups.command()
@click.argument("file", metavar="FILE", type=click.File("rb"))
@connection_options
def submit(file: IO[bytes], as_json: bool, **connection: Any) -> int:
    """Submit the tasks in FILE (JSON; - reads stdin) as one new group; print its id.

    FILE holds {"tasks": [...]} or a bare list, each task as POST /v1/tasks takes it:
    {"type": "vzdump", "params": {"vmid": 100}, "priority": 5, ...}, without a group_id.
    Every task is stored, or none is: a task the server refuses is named with its place
    (tasks.1.params.vmid) and nothing is submitted.

    \b
        GROUP=$(taskgate groups submit backups.json)
        echo '[{"type": "aptupdate"}]' | taskgate groups submit -
    """
    items = read_tasks(file)
    with session(**connection) as client:
        submitted = client.submit_group(items)
        if as_json:
            render.json_line(submitted)
            return EXIT_OK
        out = render.console()
        if not out.is_terminal:
            out.print(submitted.id, markup=False, highlight=False)
            return EXIT_OK
        count = len(submitted.tasks)
        out.print(Text(submitted.id, style="bold"))
        out.print(
            f"{count} task{'' if count == 1 else 's'} submitted;"
            f" follow them: taskgate groups wait {submitted.id}",
            style="dim",
        )
    return EXIT_OK


@groups.command()
@GROUP_ID
@connection_options
def show(group_id: str, as_json: bool, **connection: Any) -> int:
    """Show how many of a group's tasks are in each state (those in history too), its
    total, and whether every task has ended."""
    with session(**connection) as client:
        group = client.get_group(group_id)
        if as_json:
            render.json_line(group)
        else:
            render.console().print(render.group_details(group))
    return EXIT_OK


@groups.command()
@GROUP_ID
@connection_options
def cancel(group_id: str, as_json: bool, **connection: Any) -> int:
    """Cancel every task of a group still going: waiting ones end at once, running ones
    are asked to stop. Prints the group's counts after."""
    with session(**connection) as client:
        _print(client.cancel_group(group_id), "canceled", as_json=as_json)
    return EXIT_OK


@groups.command()
@GROUP_ID
@connection_options
def suspend(group_id: str, as_json: bool, **connection: Any) -> int:
    """Suspend every waiting task of a group (running ones go on) until it is resumed."""
    with session(**connection) as client:
        _print(client.suspend_group(group_id), "suspended", as_json=as_json)
    return EXIT_OK


@groups.command()
@GROUP_ID
@connection_options
def resume(group_id: str, as_json: bool, **connection: Any) -> int:
    """Resume every suspended task of a group."""
    with session(**connection) as client:
        _print(client.resume_group(group_id), "resumed", as_json=as_json)
    return EXIT_OK


@groups.command("wait", epilog=WAIT_HELP)
@GROUP_ID
@click.option(
    "--timeout",
    callback=duration_callback,
    metavar="DURATION",
    help="Stop waiting after this long (exit status 5); the tasks go on.",
)
@connection_options
def wait_command(group_id: str, timeout: float | None, as_json: bool, **connection: Any) -> int:
    """Follow a group until every task of it has ended: a progress bar (its tasks ended
    out of its total) on a terminal, a line per change when piped. Then print how they
    ended; the exit status says it: 0 all succeeded, 1 one failed or timed out, 3 one
    was canceled."""
    with session(**connection) as client:
        try:
            group = follow_group(
                client, group_id, timeout=timeout, display=group_display_for(as_json=as_json)
            )
        except GroupWaitTimeout as exc:
            if as_json:
                render.json_line(exc.group)
            going = exc.group.total - exc.group.finished
            fail(
                f"group {exc.group.id}: {going} of {exc.group.total} tasks still going after"
                f" waiting {render.duration(timeout or 0.0)}",
                EXIT_WAIT_TIMEOUT,
            )
        except KeyboardInterrupt:  # Ctrl+C stops the waiting, not the tasks
            click.echo(
                f"taskgate: stopped waiting; group {group_id} goes on"
                f" (to stop it: taskgate groups cancel {group_id})",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        code = exit_status(group)
        if as_json:
            render.json_line(group)
        else:
            out = render.console()
            out.print(render.group_line(group, "ended"))
            if code == EXIT_FAILED:
                out.print(
                    f"(which: taskgate tasks ls --group {group.id} --archived any"
                    " --state failed,timed_out)",
                    style="dim",
                )
    if code != EXIT_OK:
        raise click.exceptions.Exit(code)
    return code
