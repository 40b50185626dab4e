"""API keys: bound to a tenant, a user and a role; stored hashed; checked in constant
time; revocable at once; optionally expiring.

    keys = KeyService(connector)
    new = await keys.create(tenant="acme", user="alice", role="write")
    print(new.token)                         # tgk_<id>_<secret>: shown only this once
    key = await keys.authenticate(token)     # ApiKey, or AuthenticationFailed (401)

- `keys`: the key's format, its scrypt hash, the `ApiKey` record, the roles;
- `service`: `KeyService`, over any connector, with the in-process cache of checked keys.

The HTTP layer turns a key into the request's principal (`taskgate.http.auth`); the
``taskgate keys`` command manages them (`taskgate.cli.keys`).
"""

from __future__ import annotations

from taskgate.auth.keys import ROLE_RANK, ROLES, ApiKey, NewKey, Role
from taskgate.auth.service import CACHE_TTL, KeyService

__all__ = ["CACHE_TTL", "ROLES", "ROLE_RANK", "ApiKey", "KeyService", "NewKey", "Role"]
