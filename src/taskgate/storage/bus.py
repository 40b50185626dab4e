"""A local notification bus for the processes sharing one SQLite file.

Each process binds a Unix datagram socket in a directory named after the database file;
`LocalBus.publish` sends one datagram to every socket there. That is the "cheap local
signal" of the design: a submit wakes the workers, and a worker's progress wakes the API
process holding a ``?wait`` request, in well under a millisecond and with no polling.

Notifications published in one event-loop turn are coalesced into one datagram per
channel. A peer whose queue is full (Linux queues only ``net.unix.max_dgram_qlen``
datagrams, 10 by default, so a burst of ten thousand task ends fills it) refuses a
datagram for now: it is sent again every millisecond until the peer has room, for up to
`RETRY_FOR` seconds, so a burst delays notifications instead of dropping them. Only a
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
        self._refused: list[tuple[str, bytes, float]] = []  # (peer, datagram, give up at)
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
        while self._refused and self._sock is not None and time.monotonic() < deadline:
            time.sleep(RETRY_DELAY)  # closing: a short wait beats a lost wake-up
            self._send_refused()
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
        for channel, payloads in pending.items():
            items = sorted(p for p in payloads if p)
            if not items:
                self._send_all(channel.encode() + b"\n")
                continue
            chunk: list[str] = []
            size = 0
            for item in items:
                if size + len(item) + 1 > MAX_DATAGRAM and chunk:
                    self._send_all(f"{channel}\n{','.join(chunk)}".encode())
                    chunk, size = [], 0
                chunk.append(item)
                size += len(item) + 1
            self._send_all(f"{channel}\n{','.join(chunk)}".encode())

    def _refresh_peers(self) -> None:
        try:
            mtime = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            self._peers = []
            return
        if mtime != self._peers_mtime:
            self._peers_mtime = mtime
            self._peers = [str(p) for p in self.directory.iterdir() if p.name.endswith(".sock")]

    def _send_all(self, data: bytes) -> None:
        if self._sock is None:
            return
        self._refresh_peers()
        for peer in self._peers:
            if not self._send(peer, data):
                self._refused.append((peer, data, time.monotonic() + RETRY_FOR))
        if self._refused and self._retry is None and self._loop is not None:
            self._retry = self._loop.call_later(RETRY_DELAY, self._retry_refused)

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

    def _send_refused(self) -> None:
        now = time.monotonic()
        kept, dropped = [], 0
        for peer, data, give_up in self._refused:
            if self._sock is None or self._send(peer, data):
                continue
            if now < give_up:
                kept.append((peer, data, give_up))
            else:
                dropped += 1
        self._refused = kept
        if dropped:
            log.warning(
                "dropped %d notification(s): a peer refused them for %gs", dropped, RETRY_FOR
            )

    def _retry_refused(self) -> None:
        self._retry = None
        self._send_refused()
        if self._refused and self._loop is not None:
            self._retry = self._loop.call_later(RETRY_DELAY, self._retry_refused)

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
