"""A burst of notifications larger than a peer's datagram queue is delayed, not lost."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from taskgate.storage.bus import LocalBus

BURST = 200
"""Far more datagrams than Linux queues for one Unix socket (max_dgram_qlen, 10)."""


async def test_a_full_peer_gets_every_datagram_once_it_has_room(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    received: list[str] = []
    everything = asyncio.Event()

    def deliver(channel: str, payload: str) -> None:
        received.extend(payload.split(","))
        if len(received) == BURST:
            everything.set()

    receiver = LocalBus(tmp_path, deliver)
    receiver.start(loop)
    sender = LocalBus(tmp_path, lambda channel, payload: None)
    sender.start(loop)
    try:
        # All sent within one loop turn: the receiver cannot read in between, so its
        # queue fills and most datagrams are refused at first.
        for i in range(BURST):
            sender.publish("changed", str(i))
            sender._flush()  # one datagram per flush
        assert sender._backlog, "the burst did not fill the queue: nothing was tested"
        # what was refused waits merged: one set of ids per channel, not a datagram each
        (messages, _), *others = sender._backlog.values()
        assert not others and set(messages) == {"changed"} and len(messages["changed"]) > 1
        await asyncio.wait_for(everything.wait(), 10)
    finally:
        sender.stop()
        receiver.stop()
    assert sorted(int(p) for p in received) == list(range(BURST))


async def test_stop_hands_over_what_was_refused(tmp_path: Path) -> None:
    """A bus stopped with datagrams still refused keeps trying for a moment."""
    loop = asyncio.get_running_loop()
    sender = LocalBus(tmp_path, lambda channel, payload: None)
    sender.start(loop)
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a peer read by hand
    peer.bind(str(tmp_path / "peer.sock"))
    peer.setblocking(False)
    try:
        for i in range(30):
            sender.publish("changed", str(i))
            sender._flush()
        assert sender._backlog
        got: list[bytes] = []

        def drain() -> None:
            while True:
                try:
                    got.append(peer.recv(100))
                except BlockingIOError:
                    return

        # the peer reads in another thread while stop() waits for it to have room
        reader = loop.run_in_executor(None, _drain_for, peer, got, 0.3)
        await asyncio.sleep(0)
        sender.stop()
        await reader
        drain()
    finally:
        peer.close()
    ids = [i for g in got if g.startswith(b"changed\n") for i in g[8:].split(b",")]
    assert sorted(int(i) for i in ids) == list(range(30))


def _drain_for(peer: socket.socket, got: list[bytes], seconds: float) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(peer.recv(100))
        except BlockingIOError:
            time.sleep(0.001)
