"""Proxmox VE credentials mapped onto taskgate API keys.

- **API token** ``Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET``: ``SECRET`` is a
  whole taskgate key (``tgk_...``) and ``USER@REALM`` must be the key's user as a UPID
  shows it (`taskgate.ids.upid_user`: the key's user when it has an ``@``, else
  ``<user>@taskgate``). ``TOKENID`` is the client's own label (PVE's token name); any
  name PVE accepts will do. So an operator makes ``taskgate keys create --user root@pam``
  and gives proxmoxer ``user="root@pam", token_name="any", token_value=<the key>``.
- **Ticket** ``POST /access/ticket`` with ``username=USER@REALM`` and ``password=<the key>``
  (or a ticket still valid, which renews it). The ticket is
  ``PVE:USER@REALM:<expiry hex>:<key id>::<HMAC-SHA256, base64url>``, valid for two hours
  like PVE's, signed with the store's shared secret ``proxmox_tickets``
  (`taskgate.auth.secrets`: made by the first process that needs it, read once per
  process), so a ticket is valid on every API node of the store, and across restarts,
  until it expires. The ``CSRFPreventionToken`` is an HMAC of the ticket, required on
  every request that is not a GET with a ``PVEAuthCookie`` ticket. Each request with a
  ticket re-checks its key (cached for 30 s, as native keys are), so a revoked key's
  tickets stop working.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from taskgate.auth.keys import ApiKey
from taskgate.auth.secrets import shared_secret
from taskgate.auth.service import KeyService
from taskgate.errors import AuthenticationFailed, TaskgateError
from taskgate.http.auth import ANONYMOUS, Principal
from taskgate.ids import upid_user
from taskgate.storage.connector import Connector

TICKET_LIFETIME = 7200
"""Seconds a ticket is valid (PVE: two hours)."""
KEY_RECHECK = 30.0
"""Seconds a ticket's key is trusted before it is read again (revocation reaches us)."""
TICKET_SECRET = "proxmox_tickets"
"""The name of the store's shared secret that signs tickets and CSRF tokens."""

_TOKEN = re.compile(r"(?:^|\s)PVEAPIToken(?:=| )([^;]*)")
_TOKEN_ID = re.compile(r"^([^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]+)$")
_TICKET = re.compile(r"^PVE:([^\s:/]+@[^\s:/]+):([0-9A-F]{8}):([0-9a-f]{12})::([A-Za-z0-9_-]+)$")


class Refused(Exception):
    """Credentials refused: 401."""


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket: str
    csrf: str
    username: str


def _principal(key: ApiKey) -> Principal:
    return Principal(
        tenant=key.tenant, user=key.user, role=key.role, user_id=key.user_id, key_id=key.id
    )


class ProxmoxAuth:
    """Checks tokens and tickets against the application's `KeyService` (None: auth is
    off, and every request is the anonymous admin); tickets are signed with the shared
    secret of the store behind ``connector``."""

    def __init__(self, keys: KeyService | None, connector: Connector) -> None:
        self.keys = keys
        self.connector = connector
        self._secret = b""
        """The ticket secret, once read from the store (empty: not yet)."""
        self._reading = asyncio.Lock()
        self._ticket_keys: dict[str, tuple[float, Principal]] = {}

    async def _load_secret(self) -> None:
        """Read (or make) the store's ticket secret, the first time only."""
        if self._secret:
            return
        async with self._reading:
            if not self._secret:
                self._secret = await shared_secret(self.connector, TICKET_SECRET)

    def _sign(self, text: str) -> str:
        assert self._secret, "the ticket secret is read before anything is signed"
        mac = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    async def _key(self, token: str) -> ApiKey:
        assert self.keys is not None
        try:
            key = self.keys.cached(token)
            return key if key is not None else await self.keys.authenticate(token)
        except AuthenticationFailed as exc:
            raise Refused(exc.message) from None

    # -- per request ----------------------------------------------------------------

    async def principal(
        self, authorization: str | None, cookie: str | None, csrf: str | None, method: str
    ) -> Principal:
        """Who a request is: by its API token, else its ticket cookie."""
        if self.keys is None:
            return ANONYMOUS
        if authorization is not None and (m := _TOKEN.search(authorization)) is not None:
            return await self._token(m.group(1).strip())
        ticket = cookie
        if ticket is None and authorization is not None:
            ticket = authorization.partition("PVEAuthCookie=")[2].split(";")[0].strip() or None
        if ticket is None:
            raise Refused("No ticket")
        await self._load_secret()
        principal = await self._ticket(ticket)
        if method not in ("GET", "HEAD") and (
            csrf is None or not hmac.compare_digest(csrf, self._csrf(ticket))
        ):
            raise Refused("Permission denied - invalid csrf token")
        return principal

    async def _token(self, value: str) -> Principal:
        token_id, sep, secret = value.rpartition("=")  # PVE splits at the last '='
        m = _TOKEN_ID.match(token_id)
        if not sep or m is None or not secret:
            raise Refused("invalid API token")
        key = await self._key(secret)
        if upid_user(key.user) != m.group(1):
            raise Refused(f"invalid token value for user {m.group(1)!r}")
        return _principal(key)

    async def _ticket(self, ticket: str) -> Principal:
        m = _TICKET.match(ticket)
        if m is None or not hmac.compare_digest(m.group(4), self._sign(ticket.rpartition("::")[0])):
            raise Refused("invalid ticket")
        if int(m.group(2), 16) < time.time():
            raise Refused("ticket expired")
        key_id = m.group(3)
        now = time.monotonic()
        cached = self._ticket_keys.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self.keys is not None
        try:
            key = await self.keys.get(key_id)
        except TaskgateError:
            raise Refused("invalid ticket") from None
        if key.revoked_at is not None or key.expired(time.time()):
            raise Refused("the ticket's API key is revoked or expired")
        principal = _principal(key)
        if len(self._ticket_keys) > 10_000:
            self._ticket_keys.clear()
        self._ticket_keys[key_id] = (now + KEY_RECHECK, principal)
        return principal

    def _csrf(self, ticket: str) -> str:
        return self._sign("csrf:" + ticket)

    # -- login ----------------------------------------------------------------------

    async def login(self, username: str, password: str) -> Ticket:
        """``POST /access/ticket``: a key (or a valid ticket) as password → a ticket."""
        await self._load_secret()
        if self.keys is None:
            user, key_id = upid_user(username or ANONYMOUS.user), "0" * 12
        else:
            if password.startswith("PVE:"):
                principal = await self._ticket(password)
                user, key_id = upid_user(principal.user), principal.key_id or ""
            else:
                key = await self._key(password)
                user, key_id = upid_user(key.user), key.id
            if username != user:
                raise Refused("authentication failure")
        expiry = int(time.time()) + TICKET_LIFETIME
        body = f"PVE:{user}:{expiry:08X}:{key_id}"
        ticket = f"{body}::{self._sign(body)}"
        return Ticket(ticket, self._csrf(ticket), user)
