"""The ``taskgate`` command: ``serve``, ``worker``, ``migrate``, ``keys``, ``version``.

Errors a person can fix (a bad flag, a bad setting, an app that does not import) print
one line on stderr and exit with status 2; other taskgate errors exit with status 1.
Settings come from flags, ``TASKGATE_*`` variables and a TOML file
(`taskgate.settings`); every command that takes settings accepts ``--config``.

``submit``, ``tasks ...``, ``schedules ...`` and ``groups ...`` are clients of a running
server, through the SDK only (`taskgate.cli.client_commands`,
`taskgate.cli.schedule_commands`, `taskgate.cli.group_commands`); their exit statuses are
listed in `taskgate.cli.remote`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

import taskgate
from taskgate.cli.client_commands import submit, tasks
from taskgate.cli.group_commands import groups
from taskgate.cli.keys import keys
from taskgate.cli.migrate import migrate
from taskgate.cli.schedule_commands import schedules
from taskgate.cli.serve import serve
from taskgate.cli.worker import worker
from taskgate.errors import ConfigurationError, TaskgateError

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(taskgate.__version__, "-V", "--version", prog_name="taskgate")
def cli() -> None:
    """taskgate: durable asynchronous tasks for HTTP APIs.

    Start with `taskgate serve` (the bundled example app, SQLite in ./taskgate.db,
    http://127.0.0.1:8006) and open the docs page it prints. Then, with the key it
    prints in TASKGATE_API_KEY, `taskgate submit vzdump vmid=100 --wait` and
    `taskgate tasks ls` use it.
    """


@cli.command()
def version() -> int:
    """Print taskgate's version."""
    click.echo(f"taskgate {taskgate.__version__}")
    return 0


cli.add_command(serve)
cli.add_command(worker)
cli.add_command(migrate)
cli.add_command(keys)
cli.add_command(submit)
cli.add_command(tasks)
cli.add_command(schedules)
cli.add_command(groups)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``taskgate`` script and of ``python -m taskgate``."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        result = cli.main(args=argv, prog_name="taskgate", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message())
        return 0
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "taskgate"
        message = exc.format_message().rstrip(".")
        click.echo(f"{where}: error: {message} (see '{where} --help')", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"taskgate: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.Abort:
        return 130
    except ConfigurationError as exc:
        click.echo(f"taskgate: error: {_one_line(exc.message)}", err=True)
        return EXIT_USAGE
    except TaskgateError as exc:
        click.echo(f"taskgate: error: {_one_line(exc.message)}", err=True)
        return 1
    except OSError as exc:  # e.g. a database directory that cannot be created
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"taskgate: error: {exc.strerror or exc}{where}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["cli", "main", "run"]
