"""`KeyService`: make, list, revoke and check API keys, over any `Connector`.

Checking a key costs a scrypt hash (tens of milliseconds), so a key that checked out is
remembered in this process for at most `CACHE_TTL` seconds, under the SHA-256 of the
whole key (never the key itself). What may change in that time is handled so that no
cached answer outlives it:

- expiry is tested on every call, cached or not;
- revoking a key publishes a ``keys`` notification (`CHANNEL_KEYS`) that reaches every
  process sharing the store (the SQLite bus, or PostgreSQL's NOTIFY), and each drops that
  key from its cache at once; the revoking process drops it before `revoke` returns;
- a check that was under way while a revocation arrived is not cached.

Only if a notification were lost could a revoked key keep working, for at most
`CACHE_TTL` seconds. Concurrent checks of one uncached key share one hash, and at most
`MAX_HASHING` hashes run at once (each needs 16 MiB), on threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import math
import time
from collections.abc import Callable
from datetime import datetime

from taskgate.auth.keys import (
    SCRYPT_N,
    ApiKey,
    NewKey,
    check_description,
    check_role,
    check_tenant,
    check_user,
    check_user_id,
    format_key,
    generate,
    hash_secret,
    is_key_id,
    parse,
    verify_secret,
)
from taskgate.errors import AuthenticationFailed, Conflict, InvalidRequest, KeyNotFound
from taskgate.storage.connector import CHANNEL_KEYS, Connector, Row

CACHE_TTL = 30.0
"""Seconds a checked key is trusted without hashing it again."""
CACHE_SIZE = 10_000
MAX_HASHING = 4


class KeyService:
    """API keys in the store, and the in-process cache of keys that checked out."""

    def __init__(
        self,
        connector: Connector,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl: float = CACHE_TTL,
        cache_size: int = CACHE_SIZE,
        hash_cost: int = SCRYPT_N,
    ) -> None:
        self.connector = connector
        self.hash_cost = hash_cost
        """scrypt's ``n`` for new keys; each stored hash keeps its own (tests lower it)."""
        self.clock = clock
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: dict[bytes, tuple[ApiKey, float, float]] = {}
        """SHA-256 of the whole key -> (its record, when the entry stops being trusted,
        when the key expires (inf: never))."""
        self._checks: dict[bytes, asyncio.Future[ApiKey]] = {}
        self._hashing = asyncio.Semaphore(MAX_HASHING)
        self._generation = 0
        """Raised by every revocation heard: a check that saw it change is not cached."""
        self._listening = True
        connector.add_listener(self._on_notification)

    def close(self) -> None:
        """Stop listening for revocations and forget the cached keys."""
        if self._listening:
            self.connector.remove_listener(self._on_notification)
            self._listening = False
        self._cache.clear()

    # -- making and managing keys ---------------------------------------------------

    def _new_row(
        self,
        *,
        tenant: str,
        user: str,
        role: str,
        user_id: int | None,
        expires_at: datetime | None,
        description: str | None,
    ) -> tuple[Row, str]:
        now = self.clock()
        expires: float | None = None
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequest("the expiry needs a time zone (e.g. a trailing Z)")
            expires = expires_at.timestamp()
            if expires <= now:
                raise InvalidRequest("the expiry is in the past")
        key_id, secret = generate()
        row: Row = {
            "id": key_id,
            "tenant": check_tenant(tenant),
            "user_name": check_user(user),
            "user_id": check_user_id(user_id),
            "role": check_role(role),
            "secret_hash": hash_secret(secret, n=self.hash_cost),
            "description": check_description(description),
            "created_at": now,
            "expires_at": expires,
        }
        return row, format_key(key_id, secret)

    async def create(
        self,
        *,
        tenant: str,
        user: str,
        role: str,
        user_id: int | None = None,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> NewKey:
        """Make a key; the returned `NewKey.token` is the only copy of it."""
        row, token = await asyncio.to_thread(
            self._new_row,
            tenant=tenant,
            user=user,
            role=role,
            user_id=user_id,
            expires_at=expires_at,
            description=description,
        )
        rows = await self.connector.execute("insert_key", row)
        return NewKey(ApiKey.from_row(rows[0]), token)

    async def create_first(
        self,
        *,
        tenant: str,
        user: str,
        role: str,
        user_id: int | None = None,
        description: str | None = None,
    ) -> NewKey | None:
        """Make a key only if the store has none at all (revoked ones count); else None.

        One statement, so two servers starting at once on a new store make one key.
        """
        row, token = await asyncio.to_thread(
            self._new_row,
            tenant=tenant,
            user=user,
            role=role,
            user_id=user_id,
            expires_at=None,
            description=description,
        )
        rows = await self.connector.execute("insert_first_key", row)
        return NewKey(ApiKey.from_row(rows[0]), token) if rows else None

    async def get(self, key_id: str) -> ApiKey:
        """A key by its id (or by the whole key); `KeyNotFound` if there is none."""
        key_id = _key_id(key_id)
        row = await self.connector.fetch_one("get_key", {"id": key_id})
        if row is None:
            raise KeyNotFound(f"no API key {key_id}")
        return ApiKey.from_row(row)

    async def list(self, *, tenant: str | None = None) -> builtins.list[ApiKey]:
        """Every key (of ``tenant``), oldest first, revoked and expired ones included."""
        if tenant is None:
            rows = await self.connector.fetch_all("list_keys", {})
        else:
            rows = await self.connector.fetch_all("list_keys", {"tenant": tenant}, ("tenant",))
        return [ApiKey.from_row(r) for r in rows]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (by its id, or the whole key): refused from now on, by every
        process. `KeyNotFound` if there is none; `Conflict` if it was already revoked."""
        key_id = _key_id(key_id)
        rows = await self.connector.execute("revoke_key", {"id": key_id, "now": self.clock()})
        if not rows:
            await self.get(key_id)  # KeyNotFound when there is no such key
            raise Conflict(f"API key {key_id} was already revoked")
        self._forget(key_id)
        await self.connector.notify(CHANNEL_KEYS, key_id)
        return ApiKey.from_row(rows[0])

    # -- checking a presented key ---------------------------------------------------

    def cached(self, token: str) -> ApiKey | None:
        """The key ``token`` is, if a check of it is still trusted (no I/O, no hash);
        None if it must be checked. `AuthenticationFailed` if it has expired since."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._cache.get(digest)
        if cached is None:
            return None
        key, until, expires = cached
        now = self.clock()
        if now >= until:
            self._cache.pop(digest, None)
            return None
        if now >= expires:
            _check_expiry(key, now)
        return key

    async def authenticate(self, token: str | None) -> ApiKey:
        """The key ``token`` is, if it is valid now; `AuthenticationFailed` (401) if it is
        missing, malformed, unknown, revoked or expired."""
        if not token:
            raise AuthenticationFailed(
                "this API needs an API key: send 'Authorization: Bearer <key>'",
                reason="missing",
            )
        key = self.cached(token)
        if key is not None:
            return key
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        parsed = parse(token)
        if parsed is None:
            raise AuthenticationFailed(
                "the API key is malformed: keys look like tgk_<12 hex>_<43 base64url>",
                reason="malformed",
            )
        check = self._checks.get(digest)
        if check is None:
            check = asyncio.ensure_future(self._check(digest, *parsed))
            self._checks[digest] = check
            check.add_done_callback(lambda done: self._checked(digest, done))
        key = await asyncio.shield(check)  # a client that leaves does not cancel the others
        _check_expiry(key, self.clock())
        return key

    async def _check(self, digest: bytes, key_id: str, secret: str) -> ApiKey:
        generation = self._generation
        row = await self.connector.fetch_one("get_key", {"id": key_id})
        if row is None:
            raise AuthenticationFailed("the API key is not valid", reason="unknown")
        async with self._hashing:
            matches = await asyncio.to_thread(verify_secret, secret, row["secret_hash"])
        if not matches:  # the same answer as for an unknown id: the id alone proves nothing
            raise AuthenticationFailed("the API key is not valid", reason="unknown")
        key = ApiKey.from_row(row)
        if key.revoked_at is not None:
            raise AuthenticationFailed(f"the API key {key.id} was revoked", reason="revoked")
        if generation == self._generation:  # no revocation heard meanwhile
            if len(self._cache) >= self.cache_size:
                self._cache.clear()  # rare; the cost is one hash per key in use
            expires = math.inf if key.expires_at is None else key.expires_at.timestamp()
            self._cache[digest] = (key, self.clock() + self.cache_ttl, expires)
        return key

    def _checked(self, digest: bytes, done: asyncio.Future[ApiKey]) -> None:
        self._checks.pop(digest, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so no awaiter left is no "never retrieved"

    def _forget(self, key_id: str) -> None:
        self._generation += 1
        for digest in [d for d, (key, *_) in self._cache.items() if key.id == key_id]:
            del self._cache[digest]

    def _on_notification(self, channel: str, payload: str) -> None:
        if channel != CHANNEL_KEYS:
            return
        ids = [i for i in payload.split(",") if i]
        if not ids:
            self._generation += 1
            self._cache.clear()
        for key_id in ids:
            self._forget(key_id)


def _key_id(ref: str) -> str:
    """A key's id from its id or from the whole key."""
    parsed = parse(ref)
    if parsed is not None:
        return parsed[0]
    if not is_key_id(ref):
        raise InvalidRequest(f"{ref!r} is not an API key id (12 lowercase hex characters)")
    return ref


def _check_expiry(key: ApiKey, now: float) -> None:
    if key.expired(now):
        assert key.expires_at is not None
        expired = key.expires_at.isoformat().replace("+00:00", "Z")
        raise AuthenticationFailed(f"the API key {key.id} expired at {expired}", reason="expired")
