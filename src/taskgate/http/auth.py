"""Who is asking: the `Principal` every request acts as, resolved by one function.

Authentication comes later (API keys bound to a tenant, a user and a role). Until then
every request is `ANONYMOUS`: tenant ``default``, user ``anonymous``, role ``admin``.
An `Authenticator` is the single seam an auth layer replaces: it takes the request and
returns its principal, or raises an `HTTPProblem` (401) when it cannot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from taskgate.http.problems import HTTPProblem

if TYPE_CHECKING:
    from taskgate.http.request import Request

Role = Literal["read", "write", "admin"]
ROLE_RANK: dict[str, int] = {"read": 1, "write": 2, "admin": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """The tenant, user and role a request acts as."""

    tenant: str
    user: str
    role: Role

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


ANONYMOUS = Principal(tenant="default", user="anonymous", role="admin")

Authenticator = Callable[["Request"], Awaitable[Principal]]
"""Resolves a request's principal; raises `HTTPProblem(401, ...)` to refuse it."""


async def anonymous(request: Request) -> Principal:
    """The authenticator used until auth exists: everyone is `ANONYMOUS`."""
    return ANONYMOUS


def forbidden(principal: Principal, needed: Role) -> HTTPProblem:
    return HTTPProblem(
        403,
        f"user {principal.user!r} has role {principal.role!r}; this needs {needed!r}",
    )
