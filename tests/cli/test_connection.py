"""Where the client commands find the server and the key: flags, environment, TOML."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from taskgate.cli.connection import DEFAULT_URL, Connection, default_config_path, resolve


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_without_any_source(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert resolve(env=env) == Connection(DEFAULT_URL, None)


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert default_config_path(env) == tmp_path / "taskgate" / "client.toml"
    write(tmp_path / "taskgate" / "client.toml", 'url = "http://h:1/"\napi_key = "tgk_a_b"\n')
    assert resolve(env=env) == Connection("http://h:1", "tgk_a_b")


def test_home_config_is_the_default_without_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path({}) == tmp_path / ".config" / "taskgate" / "client.toml"


def test_priority_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'url = "http://file:1"\napi_key = "file-key"\n')
    env = {"TASKGATE_CLIENT_CONFIG": str(path), "XDG_CONFIG_HOME": str(tmp_path)}
    assert resolve(env=env) == Connection("http://file:1", "file-key")
    env |= {"TASKGATE_URL": "http://env:2", "TASKGATE_API_KEY": "env-key"}
    assert resolve(env=env) == Connection("http://env:2", "env-key")
    assert resolve(url="https://flag:3/api/", api_key="flag-key", env=env) == Connection(
        "https://flag:3/api", "flag-key"
    )


def test_client_config_flag_beats_the_variable(tmp_path: Path) -> None:
    one = write(tmp_path / "one.toml", 'url = "http://one:1"\n')
    two = write(tmp_path / "two.toml", 'url = "http://two:2"\n')
    env = {"TASKGATE_CLIENT_CONFIG": str(one)}
    assert resolve(config=str(two), env=env).url == "http://two:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("url = ", "not valid TOML"),
        ('uri = "http://x"\n', "unknown setting"),
        ("url = 5\n", "url must be a non-empty string"),
        ('api_key = ""\n', "api_key must be a non-empty string"),
        ('url = "ftp://x"\n', "is not a server URL"),
        ('url = "localhost:8006"\n', "is not a server URL"),
        ('url = "http://h:99999"\n', "is not a server URL"),
        ('url = "http://h/?x=1"\n', "must not have a query"),
    ],
)
def test_bad_config_files_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(click.UsageError, match=message):
        resolve(config=str(path), env={})


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(click.UsageError, match="does not exist"):
        resolve(config=str(tmp_path / "missing.toml"), env={})
    with pytest.raises(click.UsageError, match="does not exist"):
        resolve(env={"TASKGATE_CLIENT_CONFIG": str(tmp_path / "missing.toml")})


def test_bad_url_names_its_source() -> None:
    with pytest.raises(click.UsageError, match="TASKGATE_URL"):
        resolve(env={"TASKGATE_URL": "nonsense", "XDG_CONFIG_HOME": "/nonexistent"})
    with pytest.raises(click.UsageError, match="--url"):
        resolve(url="nonsense", env={})


def test_key_must_be_printable() -> None:
    with pytest.raises(click.UsageError, match="printable"):
        resolve(api_key="a\nb", env={})
