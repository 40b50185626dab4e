"""Kickoff routes in Proxmox VE style: ``POST {prefix}/nodes/{node}/<path>`` starts a task.

An app declares them next to its operations::

    from taskgate.http.dialects.proxmox_kickoff import kickoff, pve_bool

    kickoff(app, "vzdump", "vzdump", fields={"vmid": int, "storage": str})
    kickoff(app, "apt/update", "aptupdate", fields={"notify": None, "quiet": None})

The body is form-encoded, as PVE's clients send it. ``fields`` lists every parameter the
route accepts and how its text becomes the operation's parameter (``None``: accepted and
dropped unchecked; a converted field the operation does not take is checked, then
dropped: PVE options it has no use for); anything else is refused with
PVE's 400, as PVE refuses properties its schema does not define. The operation's own
schema then validates the result. The answer is ``{"data": "<UPID>"}``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from taskgate.app import App

Converter = Callable[[str], Any]


def pve_bool(text: str) -> bool:
    """A PVE boolean: ``0``/``1`` (and, leniently, what proxmoxer sends for Python's)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"type check ('boolean') failed - got '{text}'")


@dataclass(frozen=True, slots=True)
class Kickoff:
    path: str
    """Under ``/nodes/{node}/``, e.g. ``vzdump`` or ``apt/update``."""
    operation: str
    fields: Mapping[str, Converter | None]


_ROUTES: weakref.WeakKeyDictionary[App, dict[str, Kickoff]] = weakref.WeakKeyDictionary()


def kickoff(
    app: App, path: str, operation: str, *, fields: Mapping[str, Converter | None] | None = None
) -> Kickoff:
    """Declare ``POST /nodes/{node}/<path>`` as a start of ``operation`` on ``app``."""
    path = path.strip("/")
    if not path or any(not part for part in path.split("/")):
        raise ValueError(f"bad kickoff path {path!r}")
    if path.split("/")[0] == "tasks":
        raise ValueError("kickoff paths may not start with 'tasks'")
    route = Kickoff(path, operation, dict(fields or {}))
    _ROUTES.setdefault(app, {})[path] = route
    return route


def routes(app: App) -> dict[str, Kickoff]:
    """The kickoff routes ``app`` declared, by path."""
    return dict(_ROUTES.get(app, {}))
