"""The storage boundary: a thin connector per database, driven by query *names*.

`TaskService` holds every domain rule; a connector only runs the named statement it is
given (SQL backends look the text up in ``sql/<dialect>.sql``; the memory backend runs a
Python function of the same name). Driver exceptions never leave a connector: they are
translated into `taskgate.errors.StorageError` and its subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskgate.storage.leadership import TIMEOUT, Candidate, Leadership

Row = dict[str, Any]
Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of an atomic batch.

    With ``many``, the statement runs once per parameter mapping (executemany) and
    ``params`` is ignored. ``fragments`` chooses the optional ``WHERE`` fragments of a
    composed query (see `taskgate.storage.queries`).
    """

    query: str
    params: Params = field(default_factory=dict)
    many: Sequence[Params] | None = None
    fragments: tuple[str, ...] = ()


Listener = Callable[[str, str], None]
"""Called with (channel, payload) for every notification, on the connector's loop."""

CHANNEL_DUE = "due"
"""Tasks became due: workers should claim. Payload `RESERVED` when they (or some) reserve
resources or count against limits, or a reservation was released; else empty."""
RESERVED = "reserved"
CHANNEL_CHANGED = "changed"
"""Tasks changed: payload is a comma-separated list of task ids."""
CHANNEL_KEYS = "keys"
"""An API key was revoked: payload is its id. Every process drops its cached keys."""
CHANNEL_SCHEDULES = "schedules"
"""A schedule was created or changed: the scheduler looks at the schedules again."""


class Connector(Protocol):
    """What a storage backend provides. Every method is safe to call concurrently."""

    dialect: str

    async def open(self) -> None:
        """Connect, and apply pending migrations unless told not to."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied."""

    async def schema_version(self) -> int: ...

    async def fetch_one(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> Row | None: ...

    async def fetch_all(
        self, query: str, params: Params, fragments: tuple[str, ...] = ()
    ) -> list[Row]: ...

    async def execute(
        self, query: str, params: Params, *, notify: str | None = None, payload: str = ""
    ) -> list[Row]:
        """Run one write; return the rows of its RETURNING clause (or []). ``notify``:
        a channel told (with ``payload``) once the write has committed, as `notify`
        would; PostgreSQL sends it in the write's own transaction, with no round trip of
        its own."""

    async def execute_batch(
        self, steps: Sequence[Step], *, notify: str | None = None, payload: str = ""
    ) -> list[list[Row]]:
        """Run the steps in one transaction, all or nothing; rows per step. ``notify``
        as for `execute`."""

    async def notify(self, channel: str, payload: str = "") -> None:
        """Tell every process listening on this store (this one included)."""

    def add_listener(self, listener: Listener) -> None: ...

    def remove_listener(self, listener: Listener) -> None: ...

    def leadership(
        self, name: str, candidate: Candidate, *, timeout: float = TIMEOUT
    ) -> Leadership:
        """``candidate`` standing for the role ``name`` on this store: at most one
        candidate of all the processes sharing the store holds it; a holder that stops
        confirming loses it after ``timeout`` seconds (`taskgate.storage.leadership`)."""
