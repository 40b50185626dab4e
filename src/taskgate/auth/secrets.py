"""Secrets every process of one store shares, kept in the store by name.

What one process signs, another must verify: the Proxmox dialect's tickets are signed
with such a secret, so that a ticket one API node issued is valid on every node behind
the same load balancer. The first process that asks for a name makes the secret; a
concurrent one that loses the race reads the winner's (``INSERT ... ON CONFLICT DO
NOTHING``, then a read, in one transaction).
"""

from __future__ import annotations

import base64
import secrets
import time

from taskgate.errors import StorageError
from taskgate.storage.connector import Connector, Step

SECRET_BYTES = 32


async def shared_secret(connector: Connector, name: str) -> bytes:
    """The secret called ``name`` in the store, made now if it has none yet."""
    made = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    row = {"name": name, "value": made, "created_at": time.time()}
    _, found = await connector.execute_batch(
        [Step("insert_secret", row), Step("get_secret", {"name": name})]
    )
    if not found:
        raise StorageError(f"the shared secret {name!r} could not be stored")
    return base64.urlsafe_b64decode(found[0]["value"])
