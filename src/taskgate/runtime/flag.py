"""`Flag`: an `asyncio.Event` whose `wait` takes a timeout.

``asyncio.wait_for(event.wait(), timeout)`` wraps the wait in a new task and needs a
few loop iterations to wake up; a `Flag` resolves its waiter's future directly. The
claim loop waits on one between claims, so this is on the submit-to-start path.
"""

from __future__ import annotations

import asyncio


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Flag:
    """Set, clear, and wait (optionally with a timeout) on one event loop."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        for future in self._waiters:
            _wake(future)

    def clear(self) -> None:
        self._set = False

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set, or until ``timeout`` seconds pass; True if it is set."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append(future)
        timer = None if timeout is None else loop.call_later(max(timeout, 0.0), _wake, future)
        try:
            await future
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.remove(future)
        return self._set
