"""What every client command shares: its flags, its SDK client, its exit statuses.

The client commands (``submit``, ``tasks ...``, ``schedules ...``, ``groups ...``) talk
to a server through the SDK (`taskgate.client.Client`) only. `session` opens the client
and turns every error the SDK raises into one line on stderr and an exit status, so that
no traceback reaches a person at a terminal:

====  ==========================================================================
0     done; for a waited task: it succeeded (for a group: every task did)
1     the task failed (a task of the group failed or timed out); or another
      error (the server failed, the task's state forbids the action)
2     usage error: a bad flag or value, or what it names does not exist (404),
      or the server refused the parameters (400, 422: each field named)
3     the task was canceled (a task of the group was, and none failed)
4     the task timed out (its own timeout)
5     the wait timed out (``--timeout``) before the task ended
6     the server cannot be reached, or refused the API key (401, 403)
130   Ctrl+C while waiting (the task goes on)
====  ==========================================================================
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
import httpx

from taskgate.cli.connection import Connection, resolve
from taskgate.cli.render import reader_gone
from taskgate.client import (
    APIError,
    BadRequest,
    Client,
    Forbidden,
    InvalidResponse,
    NotFound,
    Retry,
    TaskgateClientError,
    TransportError,
    Unauthorized,
    UnprocessableEntity,
)

F = TypeVar("F", bound=Callable[..., Any])

_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 3
EXIT_TIMED_OUT = 4
EXIT_WAIT_TIMEOUT = 5
EXIT_UNREACHABLE = 6

STATE_EXITS = {
    "succeeded": EXIT_OK,
    "failed": EXIT_FAILED,
    "canceled": EXIT_CANCELED,
    "timed_out": EXIT_TIMED_OUT,
}

RETRY = Retry(attempts=3, backoff=0.2, max_backoff=2.0)
"""Fewer retries than the SDK's default: a person at a terminal should hear within about
half a second that the server is down, rather than after a longer backoff."""

EXIT_HELP = (
    "Exit status: 0 succeeded, 1 failed (or another error), 2 usage error, 3 canceled,"
    " 4 timed out, 5 wait timeout, 6 server unreachable or API key refused."
)


@dataclass(frozen=True, slots=True)
class ClientOverrides:
    """What a caller of the command line (a test) may put in click's ``obj``: the httpx
    transport every client command then uses instead of the network."""

    transport: httpx.BaseTransport | None = None


def connection_options(fn: F) -> F:
    """``--url``, ``--api-key``, ``--client-config`` and ``--json``."""
    for option in reversed(
        (
            click.option(
                "--url",
                metavar="URL",
                help="The taskgate server [default: $TASKGATE_URL, else the config file's"
                " url, else http://127.0.0.1:8006].",
            ),
            click.option(
                "--api-key",
                metavar="KEY",
                help="API key sent as a Bearer token [default: $TASKGATE_API_KEY, else the"
                " config file's api_key]. Prefer the variable: a flag shows in `ps`.",
            ),
            click.option(
                "--client-config",
                metavar="PATH",
                help="TOML file with url and api_key [default: $TASKGATE_CLIENT_CONFIG,"
                " else ~/.config/taskgate/client.toml if present].",
            ),
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print JSON only: one object, or one per line for streams.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    click.echo(f"taskgate: error: {_one_line(message)}", err=True)
    raise click.exceptions.Exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def session(*, url: str | None, api_key: str | None, client_config: str | None) -> Iterator[Client]:
    """An SDK client for the resolved connection; SDK errors become exit statuses.

    Commands print inside the block, so that a closed stdout pipe ends them quietly."""
    connection = resolve(url=url, api_key=api_key, config=client_config)
    ctx = click.get_current_context(silent=True)
    overrides = ctx.find_object(ClientOverrides) if ctx is not None else None
    transport = overrides.transport if overrides is not None else None
    try:
        with Client(
            connection.url, api_key=connection.api_key, transport=transport, retry=RETRY
        ) as client:
            yield client
    except TaskgateClientError as exc:
        report(exc, connection)
    except BrokenPipeError:  # `taskgate tasks logs -f ID | head`: the reader has had enough
        reader_gone()


def report(exc: TaskgateClientError, connection: Connection) -> NoReturn:
    """One line for an SDK error, and the exit status it means."""
    if isinstance(exc, TransportError):
        fail(f"cannot reach the taskgate server at {connection.url}: {_reason(exc)}", 6)
    if isinstance(exc, InvalidResponse):
        fail(f"the server at {connection.url} does not answer like taskgate: {exc.message}", 6)
    if isinstance(exc, Unauthorized):
        if connection.api_key is None:
            fail(
                f"the server at {connection.url} needs an API key ({exc.detail or exc.title});"
                " set TASKGATE_API_KEY or pass --api-key",
                EXIT_UNREACHABLE,
            )
        fail(f"the server refused the API key: {exc.detail or exc.title}", EXIT_UNREACHABLE)
    if isinstance(exc, Forbidden):
        fail(f"the API key may not do this: {exc.detail or exc.title}", EXIT_UNREACHABLE)
    if isinstance(exc, UnprocessableEntity):
        fields = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors)
        if len(exc.errors) == 1 and exc.errors[0].message == exc.detail:
            fail(fields, EXIT_USAGE)  # the detail is the field's message: say it once
        if exc.detail and all(
            e.field in exc.detail and e.message in exc.detail for e in exc.errors
        ):
            fields = ""  # the detail says it all already
        fail(f"{exc.detail or exc.title}" + (f" ({fields})" if fields else ""), EXIT_USAGE)
    if isinstance(exc, NotFound | BadRequest):
        fail(exc.detail or exc.message, EXIT_USAGE)
    if isinstance(exc, APIError):
        fail(exc.detail or exc.message, EXIT_FAILED)
    fail(exc.message, EXIT_FAILED)


def _reason(exc: TaskgateClientError) -> str:
    """The root cause of a transport error (``connection refused``), without the SDK's
    prefix or Python's ``[Errno N]``."""
    seen: BaseException | None = exc
    for _ in range(10):  # cause/context chains are short; never loop on a cycle
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = exc.message.removeprefix("cannot reach the taskgate server: ")
    text = _ERRNO.sub("", text).strip()
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__
