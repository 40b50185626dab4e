"""The ``taskgate`` command line: exit statuses, one-line errors, settings plumbing."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskgate
from taskgate.cli import run
from taskgate.cli.serve import base_url, bind_socket, settings_env, worker_count
from taskgate.errors import ConfigurationError
from taskgate.settings import Settings, load_settings
from taskgate.storage import migrations


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure the root logger, as they should in their own process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version"]) == 0
    assert capsys.readouterr().out == f"taskgate {taskgate.__version__}\n"
    assert run(["--version"]) == 0
    assert taskgate.__version__ in capsys.readouterr().out


def test_no_arguments_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "worker", "migrate", "version"):
        assert command in out


def test_help_of_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "worker", "migrate", "version"):
        assert run([command, "--help"]) == 0
        assert "Usage: taskgate " + command in capsys.readouterr().out


def test_migrate_applies_once_then_is_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sub" / "tasks.db"
    assert run(["migrate", "--db", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "applied 0001_initial" in out
    latest = migrations.latest("sqlite")
    assert f"schema version {latest} ({db})" in out
    assert run(["migrate", "--database", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("already up to date\n")
    assert f"schema version {latest}" in out


def test_migrate_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("TASKGATE_DATABASE", f"sqlite:///{db}")
    assert run(["migrate"]) == 0
    assert str(db) in capsys.readouterr().out
    assert db.exists()


def test_migrate_reads_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "toml.db"
    config = tmp_path / "taskgate.toml"
    config.write_text(f'[taskgate]\ndatabase = "sqlite:///{db}"\n')
    assert run(["migrate", "--config", str(config)]) == 0
    assert str(db) in capsys.readouterr().out


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--bogus"], "No such option '--bogus'"),
        (["serve", "--port", "abc"], "'abc' is not a valid integer"),
        (["serve", "--log-level", "loud"], "'loud' is not one of"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["serve", "--port", "70000"], "invalid settings: port"),
        (["serve", "--workers", "-1"], "invalid settings: workers"),
        (["serve", "--lease", "0"], "invalid settings: lease"),
        (["serve", "tg_no_such_module:app"], "no module named 'tg_no_such_module'"),
        (["serve", "taskgate.example:nothing"], "has no attribute 'nothing'"),
        (["serve", "taskgate:App"], "expected a taskgate.App"),
        (["serve", "--db", "memory://", "--workers", "1"], "memory:// lives inside one process"),
        (["serve", "--no-workers", "--workers", "2"], "--no-workers starts no worker"),
        (["worker", "--db", "memory://"], "memory:// lives inside one process"),
        (["migrate", "--db", "ftp://x"], "unknown database URL scheme 'ftp'"),
        (["serve", "--config", "/nonexistent/taskgate.toml"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    err = _error_line(capsys)
    assert expected in err
    assert "Traceback" not in err


def test_a_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = [\n")
    assert run(["serve", "--config", str(config)]) == 2
    assert "bad.toml" in _error_line(capsys)
    config.write_text("colour = 'blue'\n")
    assert run(["serve", "--config", str(config)]) == 2
    assert "colour" in _error_line(capsys)


def test_the_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()


def test_python_dash_m_taskgate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taskgate", "version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout == f"taskgate {taskgate.__version__}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "taskgate", "serve", "--port", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1


def test_settings_survive_the_trip_to_a_worker_process() -> None:
    settings = load_settings(
        {
            "database": "sqlite:////tmp/x.db",
            "workers": None,
            "lease": 2.5,
            "heartbeat_interval": None,
            "log_json": True,
            "synchronous": "NORMAL",
            "app": "tests.acceptance.app:app",
        },
        environ={},
    )
    env = settings_env(settings)
    assert all(key.startswith("TASKGATE_") for key in env)
    assert load_settings(environ=env) == settings
    assert load_settings(environ=settings_env(Settings())) == Settings()


def test_worker_count_defaults_to_the_cores() -> None:
    assert worker_count(Settings(workers=3)) == 3
    assert worker_count(Settings(workers=0)) == 0
    assert worker_count(Settings()) >= 1


def test_base_url() -> None:
    assert base_url("127.0.0.1", 8006) == "http://127.0.0.1:8006"
    assert base_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert base_url("::", 8006) == "http://[::1]:8006"
    assert base_url("example.org", 1) == "http://example.org:1"


def test_an_unusable_database_path_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["migrate", "--db", "sqlite:////proc/taskgate-nope/x.db"]) == 1
    err = _error_line(capsys)
    assert "/proc/taskgate-nope" in err
    assert "Traceback" not in err
