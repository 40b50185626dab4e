"""What a person sees when the server cannot be reached, refuses, or is not taskgate:
one line on stderr, a distinct exit status, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from taskgate.cli import cli, run
from taskgate.cli.remote import ClientOverrides

from .conftest import Invoke
from .inprocess import BASE, InProcessServer

PROBLEM = "application/problem+json"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def invoke_with(handler: Callable[[httpx.Request], httpx.Response], *args: str) -> Result:
    transport = httpx.MockTransport(handler)
    return CliRunner().invoke(
        cli, list(args), obj=ClientOverrides(transport), env={"TASKGATE_URL": BASE}
    )


def test_no_server_exits_6_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for argv in (
        ["submit", "echo", "--url", url],
        ["tasks", "ls", "--url", url],
        ["tasks", "wait", "some-id", "--url", url],
        ["tasks", "logs", "-f", "some-id", "--url", url],
    ):
        assert run(argv) == 6, argv
        out, err = capsys.readouterr()
        assert out == ""
        assert (
            err
            == f"taskgate: error: cannot reach the taskgate server at {url}: connection refused\n"
        )


def test_statuses_map_to_exit_codes() -> None:
    def answer(status: int, detail: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                status,
                json={"type": "about:blank", "title": "x", "status": status, "detail": detail},
                headers={"content-type": PROBLEM},
            )

        return handler

    for status, code, text in [
        (401, 6, "the server at http://cli.test needs an API key (no key); set TASKGATE_API_KEY"),
        (403, 6, "the API key may not do this: role read"),
        (404, 2, "no task abc"),
        (400, 2, "bad id"),
        (409, 1, "it has ended"),
        (500, 1, "boom"),
    ]:
        detail = "no key" if status == 401 else text.split(": ")[-1]
        result = invoke_with(answer(status, detail), "tasks", "cancel", "abc")
        assert result.exit_code == code, (status, result.output)
        assert result.stderr.startswith(f"taskgate: error: {text}"), (status, result.stderr)
        assert result.stdout == ""


def test_a_server_that_is_not_taskgate_exits_6() -> None:
    result = invoke_with(
        lambda request: httpx.Response(200, text="<html>hello</html>"), "tasks", "show", "abc"
    )
    assert result.exit_code == 6
    assert "does not answer like taskgate" in result.stderr
    assert "Traceback" not in result.output


def test_config_file_supplies_url_and_key(
    tg: Invoke, inproc: InProcessServer, tmp_path: Path
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{BASE}"\napi_key = "{inproc.keys["admin"]}"\n')
    env = {"TASKGATE_URL": "", "TASKGATE_API_KEY": ""}
    result = tg("submit", "echo", "--json", "--client-config", str(config), env=env)
    assert result.exit_code == 0, result.output
    assert '"user":"alice"' in result.stdout
    # the default file, when present
    default = tmp_path / "config" / "taskgate" / "client.toml"
    default.parent.mkdir(parents=True)
    default.write_text(config.read_text())
    assert '"user":"alice"' in tg("tasks", "ls", "--json", env=env).stdout
    missing = tg("tasks", "ls", "--client-config", str(tmp_path / "nope.toml"), env=env)
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr


def test_a_422_names_each_field_once() -> None:
    def invalid(detail: str, *errors: tuple[str, str]) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            body = {
                "type": "about:blank",
                "title": "Invalid parameters",
                "status": 422,
                "detail": detail,
                "errors": [{"field": f, "message": m} for f, m in errors],
            }
            return httpx.Response(422, json=body, headers={"content-type": PROBLEM})

        return handler

    for handler, line in [
        (invalid("bad cron", ("recurrence", "bad cron")), "recurrence: bad cron"),
        (
            invalid("for echo: steps (too small)", ("steps", "too small")),
            "for echo: steps (too small)",
        ),
        (invalid("invalid", ("a", "x"), ("b", "y")), "invalid (a: x; b: y)"),
    ]:
        result = invoke_with(handler, "schedules", "create", "n", "echo", "@daily")
        assert result.exit_code == 2, result.output
        assert result.stderr == f"taskgate: error: {line}\n"
