"""Who is asking: the `Principal` every request acts as, resolved by one function.

An `Authenticator` takes the request and returns its principal, or raises an
`HTTPProblem` (401) when it cannot. `KeyAuthenticator` reads ``Authorization: Bearer
<key>`` and checks the key with `taskgate.auth.KeyService`; a key's tenant, user, user id
and role become the principal. With auth turned off (``taskgate serve --no-auth``) the
authenticator is `anonymous`: every request is `ANONYMOUS`, the admin of tenant
``default``, who sees every tenant.

What a principal may do:

- ``read``: GET (and event streams) on its own tenant's tasks;
- ``write``: also submit, cancel, acknowledge and delete them;
- ``admin``: also every other tenant's tasks (``scope`` is None), and list by ``tenant=``.

A task of another tenant is answered 404, exactly as a task that does not exist: a 403
would confirm that it does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskgate.auth.keys import ROLE_RANK, Role
from taskgate.auth.service import KeyService
from taskgate.errors import AuthenticationFailed, PermissionDenied
from taskgate.http.problems import HTTPProblem, slug_of

if TYPE_CHECKING:
    from taskgate.http.request import Request

__all__ = [
    "ANONYMOUS",
    "NOBODY",
    "ROLE_RANK",
    "Authenticator",
    "KeyAuthenticator",
    "Principal",
    "Role",
    "anonymous",
    "forbidden",
    "unauthorized",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """The tenant, user and role a request acts as, and the key that said so."""

    tenant: str
    user: str
    role: Role
    user_id: int | None = None
    key_id: str | None = None

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]

    @property
    def scope(self) -> str | None:
        """The ``tenant=`` every service call passes: the principal's own tenant, or
        None (every tenant) for an admin."""
        return None if self.role == "admin" else self.tenant


ANONYMOUS = Principal(tenant="default", user="anonymous", role="admin")
"""Everyone, when auth is off."""
NOBODY = Principal(tenant="", user="nobody", role="read")
"""A request to a public route (health, docs) when auth is on: sees no tenant."""

Authenticator = Callable[["Request"], Awaitable[Principal]]
"""Resolves a request's principal; raises `HTTPProblem(401, ...)` to refuse it."""


async def anonymous(request: Request) -> Principal:
    """The authenticator when auth is off: everyone is `ANONYMOUS`."""
    return ANONYMOUS


MAX_PRINCIPALS = 10_000
_BEARER = b"bearer"
_CHALLENGE = b'Bearer realm="taskgate"'
_INVALID = b'Bearer realm="taskgate", error="invalid_token"'


def unauthorized(exc: AuthenticationFailed) -> HTTPProblem:
    """The 401 problem for a refused key, with the ``WWW-Authenticate`` challenge
    (RFC 6750 §3: no error code when no key was sent)."""
    challenge = _CHALLENGE if exc.reason == "missing" else _INVALID
    return HTTPProblem(
        401,
        exc.message,
        slug=slug_of(AuthenticationFailed),
        title=AuthenticationFailed.title,
        headers=[(b"www-authenticate", challenge)],
    )


def forbidden(principal: Principal, needed: Role) -> HTTPProblem:
    """The 403 problem for a role too low for the route."""
    return HTTPProblem(
        403,
        f"user {principal.user!r} has role {principal.role!r}; this needs {needed!r}",
        slug=slug_of(PermissionDenied),
        title=PermissionDenied.title,
        headers=[(b"www-authenticate", b'Bearer realm="taskgate", error="insufficient_scope"')],
    )


class KeyAuthenticator:
    """The principal of ``Authorization: Bearer <key>``, checked by a `KeyService`."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self._principals: dict[str, Principal] = {}
        """By key id. What a key is bound to never changes (a revoked key is refused
        before this is read), so its principal is made once."""

    async def __call__(self, request: Request) -> Principal:
        raw = request.headers.get(b"authorization")
        try:
            token = _bearer(raw)
            # a key checked in the last 30 s: no coroutine, no I/O (the hot path)
            key = None if token is None else self.keys.cached(token)
            if key is None:
                key = await self.keys.authenticate(token)
        except AuthenticationFailed as exc:
            raise unauthorized(exc) from None
        principal = self._principals.get(key.id)
        if principal is None:
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()
            principal = self._principals[key.id] = Principal(
                tenant=key.tenant, user=key.user, role=key.role, user_id=key.user_id, key_id=key.id
            )
        return principal


def _bearer(raw: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None: no header)."""
    if raw is None:
        return None
    scheme, _, token = raw.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != _BEARER or not token:
        raise AuthenticationFailed(
            "the Authorization header must be 'Bearer <key>'", reason="malformed"
        )
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed(
            "the API key is malformed: keys are ASCII", reason="malformed"
        ) from None
