"""API keys: the format, the stored hash (never the secret), the constant-time check,
and `KeyService` (making, listing, revoking, checking, its cache and expiry), on the
memory store and on SQLite, within one process and across two connectors."""

from __future__ import annotations

import asyncio
import hmac
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskgate.auth import KeyService, keys, service
from taskgate.auth.keys import ApiKey, format_key, generate, hash_secret, parse, verify_secret
from taskgate.errors import AuthenticationFailed, Conflict, InvalidRequest, KeyNotFound
from taskgate.storage.connector import CHANNEL_KEYS, Connector
from taskgate.storage.memory import MemoryConnector
from taskgate.storage.sqlite import SQLiteConnector

CHEAP = 2**4
"""scrypt's cost for most keys here: the same code, in microseconds."""
KEY = re.compile(r"^tgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def memory() -> AsyncIterator[MemoryConnector]:
    connector = MemoryConnector()
    await connector.open()
    yield connector
    await connector.close()


@pytest.fixture
def ks(memory: MemoryConnector, clock: Clock) -> KeyService:
    return KeyService(memory, clock=clock, hash_cost=CHEAP)


class Counting:
    """Counts the hashes `KeyService` computes to check keys."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        monkeypatch.setattr(service, "verify_secret", self)

    def __call__(self, secret: str, stored: str) -> bool:
        self.calls += 1
        return verify_secret(secret, stored)


# -- the format ---------------------------------------------------------------------


def test_a_key_is_tgk_id_secret() -> None:
    seen = set()
    for _ in range(200):
        key_id, secret = generate()
        key = format_key(key_id, secret)
        assert KEY.match(key) and len(key) == 4 + 12 + 1 + 43
        assert parse(key) == (key_id, secret)  # also when the secret holds '_' or '-'
        seen.add(key)
    assert len(seen) == 200


def test_parse_refuses_anything_else() -> None:
    key_id, secret = generate()
    good = format_key(key_id, secret)
    for bad in [
        "",
        good[:-1],
        good + "A",
        good.replace("tgk_", "tgx_"),
        good.replace("tgk_", "TGK_"),
        f"tgk_{key_id.upper()}_{secret}" if key_id.upper() != key_id else "tgk_ABCDEF_x",
        f"tgk_{key_id}-{secret}",
        f"tgk_{key_id[:-1]}_{secret}a",
        f"tgk_{key_id}_{secret[:-1]}=",
        f" {good}",
        f"{good}\n",
        f"tgk_{key_id}_{secret[:-1]}é",
    ]:
        assert parse(bad) is None, bad


# -- the hash -----------------------------------------------------------------------


def test_the_hash_is_salted_scrypt_and_checks_the_secret() -> None:
    _, secret = generate()
    stored = hash_secret(secret)
    scheme, n, r, p, *_ = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(keys.SCRYPT_N), "8", "1")
    assert secret not in stored
    assert hash_secret(secret) != stored  # a new salt each time
    assert verify_secret(secret, stored)
    assert not verify_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert verify_secret(secret, hash_secret(secret, n=CHEAP))  # the cost travels along
    for damaged in [
        "",
        "md5$x",
        stored.replace("scrypt", "bcrypt"),
        stored + "$x",
        "scrypt$a$b$c$d$e",
    ]:
        assert not verify_secret(secret, damaged)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", compare_digest)
    _, secret = generate()
    stored = hash_secret(secret, n=CHEAP)
    assert verify_secret(secret, stored) and not verify_secret("x" * 43, stored)
    assert len(compared) == 2 and all(len(a) == len(b) == 32 for a, b in compared)


def files_of(folder: Path, prefix: str) -> bytes:
    """The bytes of every file whose name starts with ``prefix`` (the database, its WAL)."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith(prefix))


async def test_the_store_never_holds_the_secret(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    connector = SQLiteConnector(db, bus=False)
    await connector.open()
    made = await KeyService(connector).create(tenant="acme", user="alice", role="write")
    await connector.close()  # the WAL is checkpointed into the file; look at both anyway
    _, secret = parse(made.token) or ("", "")
    stored = files_of(tmp_path, "keys.db")
    assert made.key.id.encode() in stored  # the row is there...
    assert secret.encode() not in stored and made.token.encode() not in stored  # ...not this
    assert b"scrypt$16384$8$1$" in stored


# -- making, listing, revoking ------------------------------------------------------


async def test_create_list_get_revoke(ks: KeyService, clock: Clock) -> None:
    expires = datetime.fromtimestamp(clock.now + 3600, UTC)
    a = await ks.create(tenant="acme", user="alice", role="write", user_id=42, expires_at=expires)
    assert KEY.match(a.token) and a.token.split("_")[1] == a.key.id
    assert (a.key.tenant, a.key.user, a.key.user_id, a.key.role) == ("acme", "alice", 42, "write")
    assert a.key.expires_at == expires and a.key.revoked_at is None
    clock.now += 1
    b = await ks.create(tenant="other", user="root@pam", role="read", description="ci")
    assert [k.id for k in await ks.list()] == [a.key.id, b.key.id]  # oldest first
    assert [k.id for k in await ks.list(tenant="other")] == [b.key.id]
    assert await ks.list(tenant="nobody") == []
    assert await ks.get(a.key.id) == a.key
    assert await ks.get(a.token) == a.key  # the whole key names it too
    assert a.key.status(clock.now) == "active"
    assert a.key.status(clock.now + 3600) == "expired"

    revoked = await ks.revoke(b.key.id)
    assert revoked.revoked_at == datetime.fromtimestamp(clock.now, UTC)
    assert revoked.status(clock.now) == "revoked"
    with pytest.raises(Conflict, match="already revoked"):
        await ks.revoke(b.key.id)
    with pytest.raises(KeyNotFound):
        await ks.revoke("0123456789ab")
    with pytest.raises(KeyNotFound):
        await ks.get("0123456789ab")
    with pytest.raises(InvalidRequest, match="not an API key id"):
        await ks.revoke("nope")
    dump = revoked.to_dict(clock.now)
    assert dump["status"] == "revoked" and dump["created_at"].endswith("Z")
    assert "secret_hash" not in dump and "token" not in dump


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"role": "owner"}, "role must be one of read, write, admin"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "a b"}, "tenant"),
        ({"tenant": "x" * 101}, "tenant"),
        ({"user": ""}, "user"),
        ({"user": "al:ice"}, "user"),
        ({"user_id": -1}, "user id"),
        ({"user_id": True}, "user id"),
        ({"description": "x" * 501}, "description"),
        ({"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}, "in the past"),
        ({"expires_at": datetime(2100, 1, 1)}, "time zone"),
    ],
)
async def test_create_refuses_bad_input(
    ks: KeyService, memory: MemoryConnector, options: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"tenant": "acme", "user": "alice", "role": "read", **options}
    with pytest.raises(InvalidRequest, match=message):
        await ks.create(**values)
    assert memory.api_keys == {}


async def test_create_first_makes_one_key_only(ks: KeyService) -> None:
    first = await ks.create_first(tenant="default", user="admin", role="admin", user_id=1)
    assert first is not None and first.key.role == "admin"
    assert await ks.create_first(tenant="default", user="admin", role="admin") is None
    await ks.revoke(first.key.id)
    assert await ks.create_first(tenant="default", user="admin", role="admin") is None
    assert len(await ks.list()) == 1


# -- checking a key -----------------------------------------------------------------


async def reason(ks: KeyService, token: str | None) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        await ks.authenticate(token)
    assert caught.value.status == 401
    return caught.value.reason


async def test_authenticate_and_every_refusal(ks: KeyService, clock: Clock) -> None:
    good = await ks.create(tenant="acme", user="alice", role="write", user_id=3)
    assert await ks.authenticate(good.token) == good.key
    assert await reason(ks, None) == "missing"
    assert await reason(ks, "") == "missing"
    assert await reason(ks, "secret") == "malformed"
    assert await reason(ks, good.token + "x") == "malformed"
    other_id, secret = generate()
    assert await reason(ks, format_key(other_id, secret)) == "unknown"
    wrong_secret = format_key(good.key.id, secret)  # a real id does not help
    assert await reason(ks, wrong_secret) == "unknown"
    expiring = await ks.create(
        tenant="acme",
        user="bob",
        role="read",
        expires_at=datetime.fromtimestamp(clock.now + 60, UTC),
    )
    assert (await ks.authenticate(expiring.token)).user == "bob"
    clock.now += 60
    assert await reason(ks, expiring.token) == "expired"  # though it is in the cache
    revoked = await ks.create(tenant="acme", user="carol", role="read")
    await ks.revoke(revoked.key.id)
    assert await reason(ks, revoked.token) == "revoked"


async def test_a_checked_key_is_cached_for_30_seconds(
    ks: KeyService, memory: MemoryConnector, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await ks.create(tenant="acme", user="alice", role="write")
    hashes = Counting(monkeypatch)
    for _ in range(5):
        await ks.authenticate(made.token)
    assert hashes.calls == 1
    assert made.token.encode() not in b"".join(ks._cache)  # kept under its SHA-256 only
    # revoked behind the service's back (no notification): trusted until the entry ends
    await memory.execute("revoke_key", {"id": made.key.id, "now": clock.now})
    clock.now += service.CACHE_TTL - 1
    await ks.authenticate(made.token)
    clock.now += 1
    assert await reason(ks, made.token) == "revoked"
    assert hashes.calls == 2


async def test_concurrent_checks_of_one_key_share_one_hash(
    ks: KeyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await ks.create(tenant="acme", user="alice", role="write")
    hashes = Counting(monkeypatch)
    found = await asyncio.gather(*(ks.authenticate(made.token) for _ in range(20)))
    assert {k.id for k in found} == {made.key.id} and hashes.calls == 1
    _, secret = generate()
    bad = format_key(made.key.id, secret)
    results = await asyncio.gather(
        *(ks.authenticate(bad) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationFailed) for r in results) and hashes.calls == 2
    assert not ks._checks


async def test_revoking_drops_the_key_at_once(ks: KeyService) -> None:
    made = await ks.create(tenant="acme", user="alice", role="write")
    await ks.authenticate(made.token)
    await ks.revoke(made.key.id)
    assert await reason(ks, made.token) == "revoked"  # no loop turn needed


async def test_another_service_on_the_store_hears_the_revocation(
    ks: KeyService, memory: MemoryConnector, clock: Clock
) -> None:
    other = KeyService(memory, clock=clock)  # e.g. `taskgate keys revoke` in-process
    made = await ks.create(tenant="acme", user="alice", role="write")
    await ks.authenticate(made.token)
    await other.revoke(made.key.id)
    await asyncio.sleep(0)  # the memory store delivers notifications on the next turn
    assert await reason(ks, made.token) == "revoked"
    other.close()


async def test_a_check_that_overlaps_a_revocation_is_not_cached(
    ks: KeyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await ks.create(tenant="acme", user="alice", role="write")
    hashing, release = threading.Event(), threading.Event()

    def slow(secret: str, stored: str) -> bool:
        hashing.set()
        release.wait(10)
        return verify_secret(secret, stored)

    monkeypatch.setattr(service, "verify_secret", slow)
    check = asyncio.ensure_future(ks.authenticate(made.token))
    await asyncio.to_thread(hashing.wait, 10)
    ks._on_notification(CHANNEL_KEYS, made.key.id)  # revoked while it was being hashed
    release.set()
    await check  # it had read the row before the revocation: this answer stands...
    assert ks._cache == {}  # ...but it is not remembered


async def test_revocation_crosses_processes_through_the_store(tmp_path: Path) -> None:
    """Two connectors on one SQLite file, as two processes: the API's, and the one
    where `taskgate keys revoke` runs."""
    db = tmp_path / "keys.db"
    api_store, cli_store = SQLiteConnector(db), SQLiteConnector(db)
    await api_store.open()
    await cli_store.open()
    heard = asyncio.Event()
    api_store.add_listener(lambda channel, _: heard.set() if channel == CHANNEL_KEYS else None)
    api, cli = KeyService(api_store), KeyService(cli_store, hash_cost=CHEAP)
    try:
        made = await cli.create(tenant="acme", user="alice", role="write")
        assert (await api.authenticate(made.token)).id == made.key.id  # now cached
        await cli.revoke(made.key.id)
        await asyncio.wait_for(heard.wait(), 10)
        assert await reason(api, made.token) == "revoked"
    finally:
        api.close()
        cli.close()
        await cli_store.close()
        await api_store.close()


async def test_a_key_check_takes_no_time_on_the_loop(ks: KeyService) -> None:
    """scrypt runs on a thread: the loop keeps serving while a key is hashed."""
    full = KeyService(ks.connector)  # the real cost: tens of milliseconds
    made = await full.create(tenant="acme", user="alice", role="write")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.ensure_future(ticker())
    await full.authenticate(made.token)
    running.cancel()
    assert ticks > 1
    full.close()


def test_the_roles_are_ordered() -> None:
    assert keys.ROLES == ("read", "write", "admin")
    rank: Callable[[str], int] = keys.ROLE_RANK.__getitem__
    assert rank("read") < rank("write") < rank("admin")


def test_a_key_record_from_a_row() -> None:
    row = {
        "id": "0123456789ab",
        "tenant": "t",
        "user_name": "u",
        "user_id": None,
        "role": "read",
        "secret_hash": "x",
        "description": None,
        "created_at": 1.0,
        "expires_at": 2.0,
        "revoked_at": None,
    }
    key = ApiKey.from_row(row)
    assert key.expired(2.0) and not key.expired(1.999)
    assert key.created_at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=1)


def test_the_connector_protocol_is_all_it_needs(memory: MemoryConnector) -> None:
    connector: Connector = memory
    KeyService(connector).close()
