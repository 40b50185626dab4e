"""Identifiers: UUIDv7 task ids and Proxmox-format UPIDs.

A UPID is Proxmox VE's task identifier (``pve-common src/PVE/UPID.pm``)::

    UPID:<node>:<pid 8 hex>:<pstart 8-9 hex>:<starttime 8 hex>:<type>:<id>:<user>:

In PVE, pid/pstart name the worker process and its start tick. taskgate assigns the UPID
at submit, before any worker exists, so ``pid`` is the submitting process and ``pstart`` a
per-process counter that starts at a random point; with ``node`` and ``starttime`` that
keeps UPIDs unique across processes, machines and restarts (the store has a unique index
on it besides).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from taskgate.errors import InvalidFilter, InvalidId

# -- UUIDv7 (RFC 9562 §5.7), monotonic within a process ---------------------------------

_uuid_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A time-ordered UUIDv7. Ids made in one process are strictly increasing.

    Within one millisecond, the 12-bit ``rand_a`` field is a counter seeded at random
    (RFC 9562 §6.2 method 1); if it overflows, the timestamp is advanced by one ms.
    """
    global _last_ms, _seq
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _uuid_lock:
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = secrets.randbits(11)
            ms = _last_ms
        else:
            _last_ms = ms
            _seq = secrets.randbits(11)
        seq = _seq
    rand_b = secrets.randbits(62)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_task_id() -> str:
    """A new task id: a UUIDv7 in canonical text form."""
    return str(uuid7())


_CANONICAL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def parse_task_id(value: str) -> str:
    """Return ``value`` as a canonical task id, or raise `InvalidId`."""
    if isinstance(value, str) and _CANONICAL_ID.match(value):
        return value  # already canonical: the common case, on every status read
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidId(f"{value!r} is not a valid task id (a UUID is expected)") from None


def uuid7_time(task_id: str) -> float:
    """The creation time, in epoch seconds, embedded in a UUIDv7 task id."""
    return (uuid.UUID(task_id).int >> 80) / 1000


def uuid7_floor(moment: datetime) -> str:
    """The smallest UUIDv7 of the millisecond ``moment`` falls in: ids are time-ordered,
    so a creation-time bound is an id bound on the primary key."""
    if moment.tzinfo is None:
        raise InvalidFilter("times need a time zone (e.g. a trailing Z)")
    ms = max(int(moment.timestamp() * 1000), 0) & 0xFFFF_FFFF_FFFF
    return str(uuid.UUID(int=ms << 80 | 0x7 << 76 | 0b10 << 62))


def encode_cursor(task_id: str) -> str:
    """An opaque list cursor: the last task id of a page, base64url."""
    return base64.urlsafe_b64encode(uuid.UUID(task_id).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return str(uuid.UUID(bytes=raw))
    except (ValueError, binascii.Error):
        raise InvalidFilter("cursor is not one this server gave out") from None


_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{32}\Z")


def encode_change_cursor(micros: int, task_id: str) -> str:
    """An opaque events-stream position: when a task last changed (microseconds since
    the epoch) and its id, as 32 base64url characters."""
    raw = (micros & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big") + uuid.UUID(task_id).bytes
    return base64.urlsafe_b64encode(raw).decode()


def decode_change_cursor(cursor: str) -> tuple[int, str]:
    """(microseconds, task id) of a position from `encode_change_cursor`; `ValueError`
    for anything this server did not give out."""
    if not _EVENT_ID.match(cursor):
        raise ValueError("not an event id this server gave out")
    raw = base64.urlsafe_b64decode(cursor)
    task = uuid.UUID(bytes=raw[8:])
    if task.version != 7:
        raise ValueError("not an event id this server gave out")
    return int.from_bytes(raw[:8], "big"), str(task)


# -- UPID ------------------------------------------------------------------------------

UPID_RE = re.compile(
    r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$"
)
"""PVE's own UPID regex (``PVE::UPID::decode``), character for character."""

_BAD_FIELD = re.compile(r"[:\s/]")
_BAD_NODE = re.compile(r"[^a-zA-Z0-9\-]")


@dataclass(frozen=True, slots=True)
class Upid:
    """The fields of a UPID."""

    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str

    def encode(self) -> str:
        return (
            f"UPID:{self.node}:{self.pid:08X}:{self.pstart:08X}:{self.starttime:08X}:"
            f"{self.type}:{self.id}:{self.user}:"
        )

    @classmethod
    def decode(cls, text: str) -> Upid:
        """Parse a UPID; raise `InvalidId` if PVE would not accept it."""
        m = UPID_RE.match(text)
        if m is None:
            raise InvalidId(f"unable to parse worker upid {text!r}")
        return cls(
            node=m.group(1),
            pid=int(m.group(3), 16),
            pstart=int(m.group(4), 16),
            starttime=int(m.group(5), 16),
            type=m.group(6),
            id=m.group(7),
            user=m.group(8),
        )


def node_name(hostname: str | None = None) -> str:
    """A hostname reduced to what a UPID's node field accepts."""
    name = (hostname or socket.gethostname()).split(".")[0]
    # cut before stripping: a cut may leave a trailing '-', which PVE's regex refuses
    return _BAD_NODE.sub("-", name)[:63].strip("-") or "taskgate"


def upid_field(value: str) -> str:
    """``value`` with the characters a UPID field may not hold replaced by ``_``."""
    return _BAD_FIELD.sub("_", value)


def upid_user(user: str) -> str:
    """The UPID user field: PVE's ``user@realm``; taskgate's realm when there is none."""
    user = upid_field(user) or "anonymous"
    return user if "@" in user else f"{user}@taskgate"


class UpidFactory:
    """Makes UPIDs for one process: ``pid`` is this process, ``pstart`` a counter."""

    def __init__(self, node: str | None = None) -> None:
        self.node = node_name(node)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._counter = itertools.count(secrets.randbits(31))

    def new(self, type: str, object_id: str | None, user: str, starttime: float) -> str:
        with self._lock:
            if os.getpid() != self._pid:  # forked: a new process, a new sequence
                self._pid = os.getpid()
                self._counter = itertools.count(secrets.randbits(31))
            pstart = next(self._counter) & 0xFFFF_FFFF
        return Upid(
            node=self.node,
            pid=self._pid & 0xFFFF_FFFF,
            pstart=pstart,
            starttime=int(starttime) & 0xFFFF_FFFF,
            type=upid_field(type) or "task",
            id=upid_field(object_id or ""),
            user=upid_user(user),
        ).encode()
