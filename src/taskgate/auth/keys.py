"""API keys: their format, the record stored for each, and checking a presented secret.

A key is ``tgk_<id>_<secret>``:

- ``<id>``: 12 lowercase hex characters. Public: lists, logs and ``keys revoke`` use it.
- ``<secret>``: 43 characters of base64url, 32 random bytes. Shown once, when the key is
  made; never stored. The store keeps a scrypt hash of it under a random salt of its own
  (``scrypt$<n>$<r>$<p>$<salt>$<hash>``, so the cost can be raised later without
  invalidating older keys), and a presented secret is compared with
  `hmac.compare_digest`, whose time does not depend on where the two differ.

The secret has 256 random bits, so no password-cracking defence is needed against
guessing; the slow hash is there so that a stolen copy of the database does not hand
out working keys even for a weakened secret, and it costs one hash per key per 30 s
(see `taskgate.auth.service`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from taskgate.errors import InvalidRequest

PREFIX = "tgk_"
ID_CHARS = 12
SECRET_BYTES = 32
SECRET_CHARS = 43
"""base64url of 32 bytes, without its one ``=`` of padding."""

_KEY = re.compile(r"tgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")
_KEY_ID = re.compile(r"[0-9a-f]{12}\Z")

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
SCRYPT_MAXMEM = 64 * 1024 * 1024
"""Room for raising ``n`` later (n=2**14, r=8 needs 16 MiB)."""

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")
ROLE_RANK: dict[str, int] = {"read": 1, "write": 2, "admin": 3}
"""``read`` < ``write`` < ``admin``: each role may do what the ones below it may."""

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_USER_ID = 2**63 - 1
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+\-]*\Z")


# -- the key itself -----------------------------------------------------------------


def generate() -> tuple[str, str]:
    """A new key's id and secret."""
    key_id = secrets.token_hex(ID_CHARS // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
    return key_id, secret


def format_key(key_id: str, secret: str) -> str:
    """The key as the client sends it: ``tgk_<id>_<secret>``."""
    return f"{PREFIX}{key_id}_{secret}"


def parse(key: str) -> tuple[str, str] | None:
    """A key's (id, secret), or None when it is not of the form ``tgk_<id>_<secret>``.

    The secret's alphabet holds ``_`` too, so the key is matched whole, never split.
    """
    m = _KEY.match(key)
    return None if m is None else (m.group(1), m.group(2))


def is_key_id(text: str) -> bool:
    return _KEY_ID.match(text) is not None


# -- hashing ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=size, maxmem=SCRYPT_MAXMEM
    )


def hash_secret(secret: str, *, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    """The stored form of ``secret``: scrypt under a fresh random salt, with its cost
    (``n``: a power of two; lower it only in tests)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = _scrypt(secret, salt, n, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``; compared in constant time.

    Slow on purpose (tens of milliseconds): call it off the event loop.
    """
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        computed = _scrypt(secret, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, binascii.Error):  # a damaged row refuses the key, it does not crash
        return False
    return hmac.compare_digest(computed, expected)


# -- the stored record --------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored, without its secret or hash."""

    id: str
    tenant: str
    user: str
    role: Role
    created_at: datetime
    user_id: int | None = None
    description: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ApiKey:
        created = _time(row["created_at"])
        assert created is not None
        return cls(
            id=row["id"],
            tenant=row["tenant"],
            user=row["user_name"],
            role=cast(Role, row["role"]),
            created_at=created,
            user_id=row["user_id"],
            description=row["description"],
            expires_at=_time(row["expires_at"]),
            revoked_at=_time(row["revoked_at"]),
        )

    def expired(self, now: float) -> bool:
        """Whether the key has expired at ``now`` (epoch seconds)."""
        return self.expires_at is not None and now >= self.expires_at.timestamp()

    def status(self, now: float) -> Literal["active", "revoked", "expired"]:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def to_dict(self, now: float) -> dict[str, Any]:
        """The key as `taskgate keys list --json` shows it."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "user": self.user,
            "user_id": self.user_id,
            "role": self.role,
            "status": self.status(now),
            "description": self.description,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "expires_at": None
            if self.expires_at is None
            else self.expires_at.isoformat().replace("+00:00", "Z"),
            "revoked_at": None
            if self.revoked_at is None
            else self.revoked_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: its record, and the key itself, which is shown only this once."""

    key: ApiKey
    token: str


# -- what a key may be bound to -----------------------------------------------------


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_tenant(tenant: str) -> str:
    if not (0 < len(tenant) <= MAX_NAME and _TENANT.match(tenant)):
        raise InvalidRequest(
            f"tenant {tenant!r}: use 1-{MAX_NAME} letters, digits, '_', '-', '.',"
            " starting with a letter or digit"
        )
    return tenant


def check_user(user: str) -> str:
    if not (0 < len(user) <= MAX_NAME and _USER.match(user)):
        raise InvalidRequest(
            f"user {user!r}: use 1-{MAX_NAME} letters, digits, '_', '-', '.', '@', '+',"
            " starting with a letter or digit"
        )
    return user


def check_user_id(user_id: int | None) -> int | None:
    if user_id is not None and (
        isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 <= user_id <= MAX_USER_ID
    ):
        raise InvalidRequest(f"user id must be a whole number from 0 to {MAX_USER_ID}")
    return user_id


def check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"the description is longer than {MAX_DESCRIPTION} characters")
    return description or None
