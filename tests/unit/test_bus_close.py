"""A SQLite connector closed right after a write still delivers its notification."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskgate.storage.connector import CHANNEL_CHANGED
from taskgate.storage.sqlite import SQLiteConnector


async def test_notify_then_close_at_once_still_reaches_other_connectors(tmp_path: Path) -> None:
    listener = SQLiteConnector(tmp_path / "tasks.db")
    await listener.open()
    received: list[tuple[str, str]] = []
    got = asyncio.Event()

    def on_notify(channel: str, payload: str) -> None:
        received.append((channel, payload))
        got.set()

    listener.add_listener(on_notify)
    try:
        short_lived = SQLiteConnector(tmp_path / "tasks.db")
        await short_lived.open()
        await short_lived.notify(CHANNEL_CHANGED, "some-task")
        await short_lived.close()  # no loop turn in between: the send must not be lost
        await asyncio.wait_for(got.wait(), 10)
    finally:
        await listener.close()
    assert (CHANNEL_CHANGED, "some-task") in received
