"""`UntilDisconnect`: run some code until it finishes or the client disconnects.

A long poll or an event stream waits for something other than the client; when the
client leaves, the waiting must stop at once (nobody is left to answer) and release
what it holds. ASGI tells of a disconnect only through ``receive()``, so one task per
request awaits it; the code inside waits on whatever it likes, with no task of its own,
and is canceled when the client goes, as ``asyncio.timeout`` cancels on a deadline.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from taskgate.http.request import ClientDisconnected, Request


class UntilDisconnect:
    """Within it, the current task is canceled when the client disconnects, and the
    cancellation leaves as `ClientDisconnected`.

    The one task it starts awaits the client's ``http.disconnect``; the code inside waits
    on whatever it likes, with no task of its own (as ``asyncio.timeout`` does it).
    """

    __slots__ = ("_active", "_fired", "_request", "_task", "_watcher")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._active = False
        self._fired = False
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Future[None] | None = None

    def __enter__(self) -> UntilDisconnect:
        self._task = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._request.wait_disconnect())
        self._watcher.add_done_callback(self._disconnected)
        self._active = True
        return self

    def _disconnected(self, watcher: asyncio.Future[None]) -> None:
        if watcher.cancelled():
            return
        watcher.exception()  # retrieved: a receive() that failed means the client is gone
        if self._active and self._task is not None:
            self._fired = True
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        watcher = self._watcher
        if watcher is not None:
            watcher.remove_done_callback(self._disconnected)
            if not watcher.done():
                watcher.cancel()
        if self._fired and self._task is not None:
            # Ours, unless someone else (the server stopping) canceled the task as well.
            ours = self._task.uncancel() == 0
            if ours and (exc_type is None or issubclass(exc_type, asyncio.CancelledError)):
                raise ClientDisconnected() from None
