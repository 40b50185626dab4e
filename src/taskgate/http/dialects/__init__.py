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
}
"""Every dialect taskgate knows, by name: the module that builds it."""


class Dialect(Protocol):
    name: str
    prefixes: Sequence[str]
    """Path prefixes this dialect answers (a request path equal to one, or under it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


def load(application: Application) -> list[Dialect]:
    """The dialects the settings enable, built for ``application``."""
    built: list[Dialect] = []
    for name in application.settings.dialects:
        module = importlib.import_module(DIALECTS[name])
        built.append(module.create(application))
    return built


def find(dialects: Sequence[Dialect], path: str) -> Dialect | None:
    for dialect in dialects:
        for prefix in dialect.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return dialect
    return None
