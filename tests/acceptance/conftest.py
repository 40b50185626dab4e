"""Fixtures that start real ``taskgate serve`` processes (see server.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest

from .server import Server

_SERVERS = pytest.StashKey[list[Server]]()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that do not kill or stop it."""
    folder = tmp_path_factory.mktemp("shared-serve")
    server = Server(folder / "tasks.db", folder).start()
    yield server
    assert server.stop() == 0, server.log_text()


@pytest.fixture
def server(shared_server: Server, request: pytest.FixtureRequest) -> Server:
    request.node.stash.setdefault(_SERVERS, []).append(shared_server)
    return shared_server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def make_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    """Servers of this test's own, on one database; whatever is left running is stopped."""
    made: list[Server] = []

    def make(*, workers: int = 2, args: tuple[str, ...] = ()) -> Server:
        server = Server(tmp_path / "tasks.db", tmp_path, workers=workers, args=args)
        made.append(server)
        request.node.stash.setdefault(_SERVERS, []).append(server)
        return server

    yield make
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            with contextlib.suppress(AssertionError):
                server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the server's output to a failed test's report."""
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"taskgate serve ({server.log_path.name})", server.log_text()))
    return report
