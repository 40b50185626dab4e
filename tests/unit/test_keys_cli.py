"""``taskgate keys create|list|revoke``, and the first key ``serve`` makes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest

from taskgate.auth import ApiKey, KeyService
from taskgate.cli import run
from taskgate.cli.keys import create_command, first_key, parse_expiry
from taskgate.errors import AuthenticationFailed
from taskgate.settings import Settings
from taskgate.storage import connect
from taskgate.storage.memory import MemoryConnector


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


def check(db: str, token: str) -> ApiKey:
    """What a server on ``db`` makes of ``token``."""

    async def go() -> ApiKey:
        connector = connect(db)
        await connector.open()
        keys = KeyService(connector)
        try:
            return await keys.authenticate(token)
        finally:
            keys.close()
            await connector.close()

    return asyncio.run(go())


def test_create_prints_the_key_alone_on_stdout(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["keys", "create", "--db", db, "--tenant", "acme", "--user", "alice"]
    assert run([*argv, "--user-id", "42", "--role", "write", "--description", "laptop"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n" and token.startswith("tgk_")
    key_id = token.split("_")[1]
    assert f"Created API key {key_id}: tenant acme, user alice (id 42), role write" in err
    assert "only time the key is shown" in err
    key = check(db, token)
    assert (key.tenant, key.user, key.user_id, key.role) == ("acme", "alice", 42, "write")
    assert key.description == "laptop" and key.expires_at is None


def test_create_with_an_expiry_and_as_json(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    argv = ["keys", "create", "--db", db, "--user", "bot", "--role", "read", "--expires", "2h"]
    assert run([*argv, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["tenant"] == "default" and made["role"] == "read" and made["status"] == "active"
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=2) <= expires - before < timedelta(hours=2, minutes=1)
    assert check(db, made["key"]).id == made["id"]


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        (["--role", "owner"], 2, "'owner' is not one of 'read', 'write', 'admin'"),
        (["--role", "read", "--expires", "soon"], 2, "neither a duration"),
        (["--role", "read", "--expires", "0d"], 2, "more than 0"),
        (["--role", "read", "--expires", "2000-01-01"], 1, "in the past"),
        (["--role", "read", "--user-id", "-3"], 2, "--user-id"),
        (["--role", "read", "--tenant", "a b"], 1, "tenant 'a b'"),
        ([], 2, "Missing option '--role'"),
    ],
)
def test_create_refuses_bad_input(
    db: str, capsys: pytest.CaptureFixture[str], extra: list[str], status: int, message: str
) -> None:
    assert run(["keys", "create", "--db", db, "--user", "alice", *extra]) == status
    out, err = capsys.readouterr()
    assert out == "" and message in err and "Traceback" not in err


def test_list_and_revoke(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "list", "--db", db]) == 0
    assert "no API keys" in capsys.readouterr().err
    tokens = []
    for tenant, user in [("acme", "alice"), ("globex", "hank"), ("acme", "carol")]:
        assert (
            run(
                [
                    "keys",
                    "create",
                    "--db",
                    db,
                    "--tenant",
                    tenant,
                    "--user",
                    user,
                    "--role",
                    "write",
                ]
            )
            == 0
        )
        tokens.append(capsys.readouterr().out.strip())
    ids = [t.split("_")[1] for t in tokens]

    assert run(["keys", "revoke", ids[0], "--db", db]) == 0
    assert f"Revoked API key {ids[0]}: tenant acme, user alice" in capsys.readouterr().out
    assert run(["keys", "revoke", tokens[1], "--db", db, "--json"]) == 0  # the whole key works too
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    with pytest.raises(AuthenticationFailed, match="revoked"):
        check(db, tokens[0])
    assert check(db, tokens[2]).user == "carol"

    assert run(["keys", "list", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "TENANT",
        "USER",
        "USER",
        "ID",
        "ROLE",
        "STATUS",
        "CREATED",
        "EXPIRES",
        "NOTE",
    ]
    assert [line.split()[0] for line in lines[1:]] == ids  # oldest first
    assert [line.split()[5] for line in lines[1:]] == ["revoked", "revoked", "active"]
    assert not any(t in "\n".join(lines) for t in tokens)  # a key is never shown again
    assert run(["keys", "list", "--db", db, "--tenant", "acme", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["user"], k["status"]) for k in listed] == [("alice", "revoked"), ("carol", "active")]

    assert run(["keys", "revoke", ids[0], "--db", db]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert run(["keys", "revoke", "0123456789ab", "--db", db]) == 1
    assert "no API key 0123456789ab" in capsys.readouterr().err
    assert run(["keys", "revoke", "nope", "--db", db]) == 1
    assert "not an API key id" in capsys.readouterr().err


def test_a_memory_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "list", "--db", "memory://"]) == 2
    assert "memory://" in capsys.readouterr().err


def test_the_keys_commands_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    assert "keys" in capsys.readouterr().out
    assert run(["keys", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("create", "list", "revoke"))


def test_parse_expiry() -> None:
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert parse_expiry("30d", now=now) == now + timedelta(days=30)
    assert parse_expiry("12h", now=now) == now + timedelta(hours=12)
    assert parse_expiry("90m", now=now) == now + timedelta(minutes=90)
    assert parse_expiry("3600s", now=now) == now + timedelta(hours=1)
    assert parse_expiry("2w", now=now) == now + timedelta(weeks=2)
    assert parse_expiry("2031-02-03") == datetime(2031, 2, 3, tzinfo=UTC)
    assert parse_expiry("2031-02-03T04:05:06Z") == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert parse_expiry("2031-02-03T04:05:06") == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    plus_two = parse_expiry("2031-02-03T06:05:06+02:00")
    assert plus_two == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert parse_expiry("never") is None
    for bad in ["soon", "30x", "-1d", "0h", "2031-13-01"]:
        with pytest.raises(click.BadParameter):
            parse_expiry(bad, now=now)


async def test_serves_first_key_is_made_once() -> None:
    store = MemoryConnector()
    await store.open()
    made = await first_key(store)
    assert made is not None
    assert (made.key.tenant, made.key.user, made.key.user_id, made.key.role) == (
        "default",
        "admin",
        1,
        "admin",
    )
    assert await first_key(store) is None
    keys = KeyService(store)
    assert (await keys.authenticate(made.token)).id == made.key.id
    keys.close()
    command = create_command(Settings(database="sqlite:///var/x.db"))
    assert command == (
        "taskgate keys create --db sqlite:///var/x.db --tenant default --user NAME --role write"
    )
