"""Fixtures that start real ``taskgate serve`` processes (see server.py).

Every acceptance test runs on each store of `STORES`: SQLite (a file in the test's
folder) and PostgreSQL (a fresh database made from the session's template, see
tests/postgres.py; marked ``postgres``). `pytest_generate_tests` parametrizes the server
fixture a test uses; other folders that import these fixtures (tests/cli) get SQLite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest

from postgres import Databases, postgres_databases

from .server import Server

__all__ = ["postgres_databases"]  # a fixture (tests/postgres.py), asked for by `_database`

_SERVERS = pytest.StashKey[list[Server]]()
SQLITE = "sqlite"
POSTGRES = "postgres"
STORES = [
    pytest.param(SQLITE, id=SQLITE),
    pytest.param(POSTGRES, id=POSTGRES, marks=pytest.mark.postgres),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that starts servers once per store."""
    if "make_server" in metafunc.fixturenames:
        metafunc.parametrize("make_server", STORES, indirect=True)
    elif "shared_server" in metafunc.fixturenames:
        metafunc.parametrize("shared_server", STORES, indirect=True, scope="session")


def _store(request: pytest.FixtureRequest) -> str:
    """The store this test runs on (SQLite where not parametrized)."""
    store: str = getattr(request, "param", SQLITE)
    return store


@contextlib.contextmanager
def _database(store: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[Path | str]:
    """A new database on ``store``: a file in ``folder``, or a PostgreSQL database
    dropped afterwards."""
    if store == SQLITE:
        yield folder / "tasks.db"
        return
    databases: Databases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture(scope="session")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """One server per store for the tests that do not kill or stop it."""
    store = _store(request)
    folder = tmp_path_factory.mktemp(f"shared-serve-{store}")
    with _database(store, folder, request) as database:
        server = Server(database, folder).start()
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
def serve_on(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    """``serve_on(database, workers=2, args=(), env=None)``: servers of this test's own on
    a given database (not started yet); whatever is left running is stopped."""
    made: list[Server] = []

    def make(
        database: Path | str,
        *,
        workers: int = 2,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Server:
        server = Server(database, tmp_path, workers=workers, args=args, env=env)
        made.append(server)
        request.node.stash.setdefault(_SERVERS, []).append(server)
        return server

    yield make
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            with contextlib.suppress(AssertionError):
                server.stop()


@pytest.fixture
def make_server(
    tmp_path: Path, request: pytest.FixtureRequest, serve_on: Callable[..., Server]
) -> Iterator[Callable[..., Server]]:
    """``make_server(workers=2, args=(), env=None)``: servers of this test's own, all on
    one new database of the store the test runs on (not started yet)."""
    with _database(_store(request), tmp_path, request) as database:

        def make(
            *, workers: int = 2, args: tuple[str, ...] = (), env: dict[str, str] | None = None
        ) -> Server:
            return serve_on(database, workers=workers, args=args, env=env)

        yield make


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
