"""Dialects: other systems' task APIs, served over the same `TaskService`.

A dialect is a thin translation (DESIGN.md §5): a state map, a field map, its own auth
header mapped onto taskgate's API keys and tenants, its own error shape, its own routes.
It never touches storage, and everything it shows comes from the task.

Each dialect module has ``create(application) -> Dialect``: an ASGI callable plus the
path prefixes it answers. `Application` hands a request to the first dialect whose
prefix starts its path, before the native routes; each dialect then does its own auth,
routing and errors. Which dialects run, and where, is configuration
(``Settings.dialects``, ``Settings.<name>_prefix``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from taskgate.http.asgi import Receive, Scope, Send

if TYPE_CHECKING:
    from taskgate.http.application import Application

DIALECTS: dict[str, str] = {
    "proxmox": "taskgate.http.dialects.proxmox",
    "gcore": "taskgate.http.dialects.gcore",
    "cloudcoin": "taskgate.http.dialects.cloudcoin",
    "rediscloud": "taskgate.http.dialects.rediscloud",
}
"""Every dialect taskgate knows, by name: the module that builds it."""


class Dialect(Protocol):
    name: str
    prefixes: Sequence[str]
    """Path prefixes this dialect answers (a request path equal to one, or under it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


Mounts = tuple[tuple[str, str, Dialect], ...]
"""(prefix, prefix + "/", dialect) for each prefix of each dialect, made once."""


def load(application: Application) -> Mounts:
    """The dialects the settings enable, built for ``application``, by prefix."""
    mounts: list[tuple[str, str, Dialect]] = []
    for name in application.settings.dialects:
        dialect: Dialect = importlib.import_module(DIALECTS[name]).create(application)
        mounts.extend((prefix, prefix + "/", dialect) for prefix in dialect.prefixes)
    return tuple(mounts)


def find(mounts: Mounts, path: str) -> Dialect | None:
    """The dialect serving ``path`` (the path equals one of its prefixes or is under it)."""
    for prefix, under, dialect in mounts:
        if path == prefix or path.startswith(under):
            return dialect
    return None
