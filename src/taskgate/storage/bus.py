"""A local notification bus for the processes sharing one SQLite file.

Each process binds a Unix datagram socket in a directory named after the database file;
`LocalBus.publish` sends one datagram to every socket there. That is the "cheap local
signal" of the design: a submit wakes the workers, and a worker's progress wakes the API
process holding a ``?wait`` request, in well under a millisecond and with no polling.

Notifications published in one event-loop turn are coalesced into one datagram per
channel. A peer whose queue is full (Linux queues only ``net.unix.max_dgram_qlen``
datagrams, 10 by default, so a burst of ten thousand task ends fills it) refuses a
datagram for now: what it refused waits in a backlog for that peer, merged per channel
with what is published after it, and is offered again every millisecond until the peer
has room, for up to `RETRY_FOR` seconds. A burst delays notifications instead of
dropping them, and costs one datagram per peer and channel per retry, not one per
refused datagram. Only a
peer stuck that long loses them: workers also poll slowly, waiters re-read the task at
their timeout, and streams resume from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MAX_DATAGRAM = 60_000
RETRY_DELAY = 0.001
"""Seconds between attempts to send a datagram a peer's full queue refused."""
RETRY_FOR = 5.0
"""Seconds after which a datagram a peer keeps refusing is dropped."""
STOP_RETRY_FOR = 0.5
"""Seconds `LocalBus.stop` keeps trying to hand over what peers refused."""

log = logging.getLogger("taskgate.bus")

Deliver = Callable[[str, str], None]
Messages = dict[str, set[str]]
"""Notifications by channel: the payload items (task ids; "" for none)."""


def bus_directory(database: Path) -> Path:
    """Where the sockets of one database live (short: socket paths are limited)."""
    digest = hashlib.sha1(str(database.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"taskgate-{os.getuid()}" / digest


class LocalBus:
    def __init__(self, directory: Path, deliver: Deliver) -> None:
        self.directory = directory
        self._deliver = deliver
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[str] = []
        self._peers_mtime = -1
        self._pending: dict[str, set[str]] = {}
        self._flush_scheduled = False
        self._backlog: dict[str, tuple[Messages, float]] = {}
        """What each peer's full queue refused, merged per channel, and when to give up."""
        self._retry: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._loop = loop
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock.bind(str(path))
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._sock, self._path = sock, path
        loop.add_reader(sock.fileno(), self._on_readable)

    def stop(self) -> None:
        # Send what was published in this loop turn: a connector closed right after its
        # last write (a short-lived one, e.g. serve's recovery of a dead worker's tasks)
        # must not drop the notification that wakes the waiters of those tasks.
        if self._pending and self._sock is not None:
            self._flush()
        deadline = time.monotonic() + STOP_RETRY_FOR
        while self._backlog and self._sock is not None and time.monotonic() < deadline:
            time.sleep(RETRY_DELAY)  # closing: a short wait beats a lost wake-up
            self._send_backlog()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._sock is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._sock = None
        self._path = None

    def publish(self, channel: str, payload: str) -> None:
        """Queue a notification; sent at the end of this event-loop turn."""
        self._pending.setdefault(channel, set()).add(payload)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        if self._sock is None or not pending:
            return
        self._refresh_peers()
        for peer in self._peers:
            backlog = self._backlog.get(peer)
            if backlog is not None:  # its queue was full: join the line, merged
                _merge(backlog[0], pending)
                continue
            refused = self._offer(peer, pending)
            if refused:
                self._backlog[peer] = (refused, time.monotonic() + RETRY_FOR)
        self._schedule_retry()

    def _refresh_peers(self) -> None:
        try:
            mtime = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            self._peers = []
            return
        if mtime != self._peers_mtime:
            self._peers_mtime = mtime
            self._peers = [str(p) for p in self.directory.iterdir() if p.name.endswith(".sock")]

    def _offer(self, peer: str, messages: Messages) -> Messages:
        """Send ``messages`` to one peer; return what its full queue refused."""
        refused: Messages = {}
        for channel, items in messages.items():
            for data, chunk in _datagrams(channel, items):
                if refused or not self._send(peer, data):
                    refused.setdefault(channel, set()).update(chunk)
        return refused

    def _send(self, peer: str, data: bytes) -> bool:
        """Send one datagram; False if the peer's queue is full for now."""
        assert self._sock is not None
        try:
            self._sock.sendto(data, peer)
        except (ConnectionRefusedError, FileNotFoundError):
            # a process that died without unbinding: its socket file is stale
            with contextlib.suppress(OSError):
                Path(peer).unlink()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                raise
            return False
        return True

    def _send_backlog(self) -> None:
        now = time.monotonic()
        dropped = 0
        for peer, (messages, give_up) in list(self._backlog.items()):
            refused = self._offer(peer, messages) if self._sock is not None else {}
            if not refused:
                del self._backlog[peer]
            elif now >= give_up:
                del self._backlog[peer]
                dropped += sum(len(items) for items in refused.values())
            else:
                self._backlog[peer] = (refused, give_up)
        if dropped:
            log.warning(
                "dropped %d notification(s): a peer refused them for %gs", dropped, RETRY_FOR
            )

    def _schedule_retry(self) -> None:
        if self._backlog and self._retry is None and self._loop is not None:
            self._retry = self._loop.call_later(RETRY_DELAY, self._retry_backlog)

    def _retry_backlog(self) -> None:
        self._retry = None
        self._send_backlog()
        self._schedule_retry()

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(MAX_DATAGRAM + 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            channel, _, payload = data.decode().partition("\n")
            self._deliver(channel, payload)


def _merge(into: Messages, more: Messages) -> None:
    for channel, items in more.items():
        into.setdefault(channel, set()).update(items)


def _datagrams(channel: str, items: set[str]) -> list[tuple[bytes, set[str]]]:
    """The datagrams carrying ``items`` on ``channel``, each with the items it carries."""
    ids = sorted(i for i in items if i)
    if not ids:
        return [(channel.encode() + b"\n", {""})]
    out: list[tuple[bytes, set[str]]] = []
    chunk: list[str] = []
    size = 0
    for item in ids:
        if size + len(item) + 1 > MAX_DATAGRAM and chunk:
            out.append((f"{channel}\n{','.join(chunk)}".encode(), set(chunk)))
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    out.append((f"{channel}\n{','.join(chunk)}".encode(), set(chunk)))
    return out
