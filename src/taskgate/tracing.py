"""OpenTelemetry tracing, optional: ``pip install taskgate[otel]`` and ``tracing = true``.

With it, the HTTP application makes a server span for each request (``POST
/v1/operations/{type}``, a child of the caller's ``traceparent`` when one is sent); a
submit stores the current span's W3C ``traceparent`` with the task (the ``traceparent``
column); the worker makes a span for each attempt it runs (``run <type>``, with the
task's id, type and attempt, status error when it fails) *linked* to that submit span.
The handler runs inside that span, so its own spans are its children.

Without the setting, or without opentelemetry installed, nothing imports it: the code
paths test one attribute for None. `load` is the only way in; `taskgate.otel` holds
everything that touches opentelemetry.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from taskgate.model import Task
    from taskgate.settings import Settings

log = logging.getLogger("taskgate.tracing")


class HttpSpan(Protocol):
    def done(self, route: str, status: int) -> None:
        """Name the span after the route template and record the status."""


class RunSpan(Protocol):
    def current(self) -> AbstractContextManager[None]:
        """Make it the current span inside (what starts inside inherits it)."""

    def end(self, stored: Task | None) -> None:
        """End it with the attempt's outcome: the task as its ending stored it (None:
        the attempt no longer held it). Failed, timed out, or retried after an error:
        status error."""


class Tracing(Protocol):
    def http_span(
        self, method: str, traceparent: str | None, tracestate: str | None
    ) -> AbstractContextManager[HttpSpan]:
        """A server span for one request, current inside."""

    def traceparent(self) -> str | None:
        """The current span as a W3C ``traceparent`` (None: no span is recording)."""

    def start_run(self, task: Task) -> RunSpan:
        """A span for one attempt of ``task``, linked to the span that submitted it."""


def load(settings: Settings, provider: Any = None) -> Tracing | None:
    """The tracing the settings ask for (None: off, or opentelemetry not installed).

    ``provider``: an opentelemetry ``TracerProvider`` to use (tests); otherwise the
    global one, which is configured from the ``OTEL_*`` variables when nothing set it
    (`taskgate.otel.configure`)."""
    if not settings.tracing and provider is None:
        return None
    try:
        from taskgate import otel
    except ImportError as exc:
        log.warning(
            "tracing is on but opentelemetry is missing (%s): pip install taskgate[otel]", exc
        )
        return None
    return otel.OtelTracing(provider)
