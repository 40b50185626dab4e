"""Settings: defaults < TOML file < TASKGATE_* environment < command-line flags."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from taskgate.errors import ConfigurationError
from taskgate.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a folder with no taskgate.toml, whatever the caller's folder holds."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings.model_validate({})
    assert (settings.host, settings.port, settings.synchronous) == ("127.0.0.1", 8006, "FULL")
    assert settings.database == "sqlite:///taskgate.db"
    assert settings.heartbeat_every == settings.lease / 3


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    config = toml(
        tmp_path / "c.toml", 'port = 7000\nhost = "0.0.0.0"\nlease = 9\nconcurrency = 3\n'
    )
    environ = {"TASKGATE_PORT": "7100", "TASKGATE_HOST": "10.0.0.1", "TASKGATE_LEASE": "12"}
    flags = {"port": 7200, "host": None}  # None: the flag was not given
    settings = load_settings(flags, config=config, environ=environ)
    assert settings.port == 7200  # flag
    assert settings.host == "10.0.0.1"  # environment (the flag was not given)
    assert settings.lease == 12.0  # environment over the file
    assert settings.concurrency == 3  # file over the default
    assert settings.max_wait == 60.0  # default


def test_the_file_may_use_a_taskgate_table(tmp_path: Path) -> None:
    config = toml(tmp_path / "c.toml", '[taskgate]\nport = 9000\ndatabase = "memory://"\n')
    settings = load_settings(config=config, environ={})
    assert (settings.port, settings.database) == (9000, "memory://")


def test_the_file_is_found_by_env_or_in_the_current_folder(tmp_path: Path) -> None:
    named = toml(tmp_path / "named.toml", "port = 1111\n")
    assert load_settings(environ={"TASKGATE_CONFIG": str(named)}).port == 1111
    toml(tmp_path / "taskgate.toml", "port = 2222\n")
    assert load_settings(environ={}).port == 2222
    assert load_settings(config=named, environ={}).port == 1111  # --config wins


def test_environment_null_means_none() -> None:
    assert load_settings(environ={"TASKGATE_WORKERS": "4"}).workers == 4
    assert load_settings(environ={"TASKGATE_WORKERS": "none"}).workers is None
    assert load_settings(environ={"TASKGATE_HEARTBEAT_INTERVAL": ""}).heartbeat_interval is None


def test_flags_only_count_when_given() -> None:
    settings = load_settings({"port": None, "config": None}, environ={"TASKGATE_PORT": "4000"})
    assert settings.port == 4000


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"flags": {"port": 70000}}, "port"),
        ({"flags": {"lease": 0}}, "lease"),
        ({"flags": {"synchronous": "SOMETIMES"}}, "synchronous"),
        ({"environ": {"TASKGATE_CONCURRENCY": "many"}}, "concurrency"),
        ({"environ": {"TASKGATE_LOG_JSON": "perhaps"}}, "log_json"),
        ({"toml": "max_body_size = 10\n"}, "max_body_size"),
        ({"toml": "no_such_setting = 1\n"}, "no_such_setting"),
        ({"toml": 'workers = "two"\n'}, "workers"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, source: dict[str, object], field: str) -> None:
    config = toml(tmp_path / "c.toml", str(source["toml"])) if "toml" in source else None
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            source.get("flags"),  # type: ignore[arg-type]
            config=config,
            environ=source.get("environ", {}),  # type: ignore[arg-type]
        )
    assert field in str(info.value)


def test_a_broken_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(config=tmp_path / "missing.toml", environ={})
    broken = toml(tmp_path / "broken.toml", "port = = 1\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml"):
        load_settings(config=broken, environ={})
    not_a_table = toml(tmp_path / "t.toml", 'taskgate = "x"\n')
    with pytest.raises(ConfigurationError, match="table"):
        load_settings(config=not_a_table, environ={})


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(pydantic.ValidationError):  # frozen
        settings.port = 1


def test_dialects_come_as_a_list_or_a_comma_separated_variable() -> None:
    env = {"TASKGATE_DIALECTS": "proxmox, gcore"}
    assert load_settings(environ=env).dialects == ("proxmox", "gcore")
    assert load_settings({"dialects": ["gcore"]}, environ={}).dialects == ("gcore",)
    assert load_settings(environ={"TASKGATE_DIALECTS": ""}).dialects == ()


def test_an_unknown_dialect_is_named() -> None:
    known = "cloudcoin, gcore, proxmox, pulp, rediscloud"
    with pytest.raises(ConfigurationError, match=rf"unknown dialect\(s\) celery; known: {known}"):
        load_settings({"dialects": "proxmox,celery"}, environ={})


def test_dialect_prefixes_are_paths_and_may_be_the_root() -> None:
    settings = load_settings({"proxmox_prefix": "/pve/api2/json/"}, environ={})
    assert settings.proxmox_prefix == "/pve/api2/json"
    assert load_settings(environ={"TASKGATE_GCORE_PREFIX": ""}).gcore_prefix == ""
    with pytest.raises(ConfigurationError, match="proxmox_prefix"):
        load_settings({"proxmox_prefix": "api2"}, environ={})
