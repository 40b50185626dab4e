"""Rendered task JSON, reused while the task's version says it is current.

A status read is the hottest request: clients poll. Reading the whole row, building a
`Task` and encoding it costs several times more than asking the store for the task's
version (one indexed lookup of two columns). Every change to a task raises its version
(the ETag relies on that too), so a rendering whose version equals the stored one is
exactly what a fresh read would produce. Nothing is ever served without that check:
the cache saves work, never a read, and cannot go stale.

The cache is shared by every caller, whatever their tenant: a rendering keeps its task's
tenant, and the reader checks it on every hit (and the version read checks it again), so
a task is never shown to another tenant from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskgate.http.representation import task_json
from taskgate.model import Task

MAX_ITEMS = 4096
MAX_BYTES = 32 * 1024 * 1024
MAX_ITEM_BYTES = 64 * 1024
"""A larger rendering (a big result) is not kept: the budget is for many small tasks."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A task's JSON and what its response needs, at one version."""

    id: str
    tenant: str
    version: int
    etag: bytes
    body: bytes
    terminal: bool

    @classmethod
    def of(cls, task: Task) -> Rendered:
        return cls(
            task.id, task.tenant, task.version, task.etag.encode(), task_json(task), task.terminal
        )


class RenderCache:
    """Renderings by the task id as the client wrote it, oldest dropped first, within a
    count and a byte budget."""

    def __init__(
        self,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
        max_item_bytes: int = MAX_ITEM_BYTES,
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.bytes = 0
        self._items: dict[str, Rendered] = {}

    def get(self, key: str) -> Rendered | None:
        return self._items.get(key)

    def put(self, key: str, task: Task) -> Rendered:
        """Render ``task``; keep the rendering if it fits."""
        rendered = Rendered.of(task)
        self.discard(key)
        size = len(rendered.body)
        if size > self.max_item_bytes:
            return rendered
        items = self._items
        while items and (len(items) >= self.max_items or self.bytes + size > self.max_bytes):
            self.discard(next(iter(items)))
        items[key] = rendered
        self.bytes += size
        return rendered

    def discard(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)

    def __len__(self) -> int:
        return len(self._items)
