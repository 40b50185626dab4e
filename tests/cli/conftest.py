"""Fixtures of the CLI tests.

- ``tg``: the ``taskgate`` command run by click's CliRunner, its SDK client wired to the
  real ASGI app and a worker in this process (``inproc``, with API keys of each role);
- ``server``: a real ``taskgate serve`` subprocess, the acceptance tests' own fixture
  (tests/acceptance/conftest.py), with its hook that attaches the server's output to a
  failed test's report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from acceptance.conftest import (  # the acceptance tests' fixtures and report hook
    pytest_runtest_makereport,
    server,
    shared_server,
)
from taskgate.app import App
from taskgate.cli import cli
from taskgate.cli.remote import ClientOverrides
from taskgate.settings import Settings

from .app import app
from .inprocess import BASE, InProcessServer

Invoke = Callable[..., Result]

__all__ = ["pytest_runtest_makereport", "server", "shared_server"]

CLIENT_ENV = ("TASKGATE_URL", "TASKGATE_API_KEY", "TASKGATE_CLIENT_CONFIG")


@pytest.fixture(autouse=True)
def _client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No URL, key or config file of the machine running the tests leaks in."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def served_app() -> App:
    """The app the in-process server runs (test_readme.py serves the example app)."""
    return app


@pytest.fixture
def inproc(served_app: App) -> Iterator[InProcessServer]:
    settings = Settings(
        concurrency=8,
        claim_batch=8,
        lease=5.0,
        heartbeat_interval=0.2,
        poll_interval=0.5,
        reaper_interval=0.2,
        cancel_grace=0.3,
        shutdown_grace=2.0,
        flush_interval=0.01,
        max_wait=60.0,
    )
    running = InProcessServer(served_app, settings).start()
    yield running
    running.stop()


@pytest.fixture
def tg(inproc: InProcessServer) -> Invoke:
    """``tg("tasks", "ls")``: run the taskgate command against the in-process server."""
    assert inproc.transport is not None
    overrides = ClientOverrides(transport=inproc.transport)

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            list(args),
            input=input,
            obj=overrides,
            env={"TASKGATE_URL": BASE, "TASKGATE_API_KEY": inproc.keys["write"], **(env or {})},
            catch_exceptions=False,
        )

    return invoke
