"""`Tracing` with opentelemetry (imported only by `taskgate.tracing.load`)."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import taskgate
from taskgate.model import State, Task

log = logging.getLogger("taskgate.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()
_FAILED = frozenset({State.FAILED, State.TIMED_OUT})


def configure() -> None:
    """Give the process an SDK tracer provider when nothing set one (the app module or
    ``opentelemetry-instrument`` may have): its resource from ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``, its exporter from ``OTEL_TRACES_EXPORTER``: ``otlp``
    (the default; needs opentelemetry-exporter-otlp), ``console`` or ``none``."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:  # the API alone: spans are no-ops until someone sets a provider
        return
    provider = TracerProvider(resource=Resource.create({"service.name": _service_name()}))
    for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(","):
        name = name.strip()
        exporter: Any = None
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            exporter = _otlp()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME") or "taskgate"


def _otlp() -> Any:
    for transport in ("http", "grpc"):
        try:
            module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{transport}")
        except ImportError:
            continue
        return importlib.import_module(f"{module.__name__}.trace_exporter").OTLPSpanExporter()
    log.warning(
        "tracing: OTEL_TRACES_EXPORTER is otlp but no OTLP exporter is installed"
        " (pip install opentelemetry-exporter-otlp); spans are not exported"
    )
    return None


class _HttpSpan:
    __slots__ = ("method", "span")

    def __init__(self, span: trace.Span, method: str) -> None:
        self.span = span
        self.method = method

    def done(self, route: str, status: int) -> None:
        span = self.span
        span.update_name(f"{self.method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


class _RunSpan:
    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    @contextmanager
    def current(self) -> Iterator[None]:
        token = context.attach(trace.set_span_in_context(self.span))
        try:
            yield
        finally:
            context.detach(token)

    def end(self, stored: Task | None) -> None:
        span = self.span
        if stored is None:
            span.set_attribute("taskgate.task.ending", "not stored: the attempt lost the task")
        else:
            span.set_attribute("taskgate.task.state", stored.state.value)
            error = stored.error
            if stored.state in _FAILED or (not stored.terminal and error is not None):
                span.set_status(Status(StatusCode.ERROR, error.message if error else None))
                if error is not None:
                    span.set_attribute("error.type", error.type)
        span.end()


class OtelTracing:
    """Spans through an opentelemetry tracer (the global provider's by default)."""

    def __init__(self, provider: Any = None) -> None:
        if provider is None:
            configure()
            provider = trace.get_tracer_provider()
        self.tracer = provider.get_tracer("taskgate", taskgate.__version__)

    def http_span(
        self, method: str, traceparent: str | None, tracestate: str | None
    ) -> AbstractContextManager[_HttpSpan]:
        return self._http_span(method, traceparent, tracestate)

    @contextmanager
    def _http_span(
        self, method: str, traceparent: str | None, tracestate: str | None
    ) -> Iterator[_HttpSpan]:
        parent = None
        if traceparent is not None:
            carrier = {"traceparent": traceparent}
            if tracestate is not None:
                carrier["tracestate"] = tracestate
            parent = _PROPAGATOR.extract(carrier)
        with self.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            yield _HttpSpan(span, method)

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get("traceparent")

    def start_run(self, task: Task) -> _RunSpan:
        links = []
        if task.traceparent:
            submitted = trace.get_current_span(
                _PROPAGATOR.extract({"traceparent": task.traceparent})
            ).get_span_context()
            if submitted.is_valid:
                links.append(Link(submitted))
        span = self.tracer.start_span(
            f"run {task.type}",
            context=context.Context(),  # a trace of its own, linked to the submit's
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "taskgate.task.id": task.id,
                "taskgate.task.type": task.type,
                "taskgate.task.attempt": task.attempt,
            },
        )
        return _RunSpan(span)
