"""The ASGI interface as taskgate's HTTP layer uses it: plain types, nothing more.

ASGI (https://asgi.readthedocs.io) hands an application a ``scope`` dict and two
coroutines, ``receive`` and ``send``, that carry message dicts. These aliases keep the
signatures readable; nothing here costs anything at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
"""Raw response headers: lower-case names and values, as ASGI sends them."""
