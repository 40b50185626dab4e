"""When a request is sent again: the `Retry` policy, ``Retry-After``, and which
transport errors mean the request cannot have reached the server."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from taskgate.client.errors import ConnectionFailed, RequestTimeout, TransportError


@dataclass(frozen=True, slots=True)
class Retry:
    """When and how a request is sent again.

    A request is retried after a connection error, a timeout or a 503, at most
    ``attempts - 1`` times, waiting an exponential backoff with jitter (``backoff``,
    doubling, at most ``max_backoff`` seconds) or what ``Retry-After`` says (seconds or
    an HTTP date; a wait longer than ``max_retry_after`` is not made: the error is
    raised instead).

    Only a request that may be repeated is retried after it may have reached the
    server: GET, HEAD, OPTIONS, PUT and DELETE, and any request carrying an
    ``Idempotency-Key`` (every submit does). A request whose connection could not even
    be opened was never sent, so it is always tried again.
    """

    attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 5.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({503})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1 (1: no retries)")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("Retry delays must not be negative")

    def backoff_delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1, 2, ...): exponential, with the
        upper half jittered so that many clients do not come back at once."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = Retry(attempts=1)


def retry_delay(
    retry: Retry,
    replayable: bool,
    failures: int,
    *,
    error: httpx.TransportError | None = None,
    response: httpx.Response | None = None,
) -> float | None:
    """Seconds to wait before sending a request again after its ``failures``-th failed
    try (a transport ``error`` or an error ``response``), or None: do not retry.
    ``replayable``: sending it twice does what sending it once does."""
    if failures >= retry.attempts:
        return None
    if error is not None:
        if replayable or never_sent(error):
            return retry.backoff_delay(failures)
        return None
    if response is None or response.status_code not in retry.statuses or not replayable:
        return None
    after = parse_retry_after(response.headers.get("retry-after"))
    if after is None:
        return retry.backoff_delay(failures)
    if after > retry.max_retry_after:
        return None  # longer than the caller wants to be held: let them decide
    return after + random.uniform(0, min(0.1 * after, 1.0))  # spread a crowd's return


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date (RFC 9110
    §10.2.3); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def transport_error(exc: httpx.TransportError) -> TransportError:
    """Our error for an httpx transport error (the cause stays attached by ``from``)."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return RequestTimeout(f"no answer in time from the server ({type(exc).__name__})")
    detail = str(exc) or type(exc).__name__
    return ConnectionFailed(f"cannot reach the taskgate server: {detail}")


def never_sent(exc: httpx.TransportError) -> bool:
    """The request cannot have reached the server: its connection never opened."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
