"""Prometheus metrics: what each process records, and how ``/metrics`` reads them all.

Every process has one `Metrics` (`process_metrics`), made on first use. What happens in
a process is counted there: submits and HTTP requests in the API, claims, endings,
retries and lock waits in the workers. The label values are bounded: operation type,
outcome, HTTP method, route template and status, never a task id. Hot paths bind a
label child once per type (or route) and keep it, so recording is an attribute lookup
and an increment.

``taskgate serve`` runs its workers as separate processes, and what they count must
reach the API's ``/metrics``. serve therefore uses prometheus-client's multiprocess
mode (`shared_with_children`): before any metric exists, it points
``PROMETHEUS_MULTIPROC_DIR`` at a private directory, for itself and the workers it
starts; each process writes its values to memory-mapped files there, and ``/metrics``
merges every file (`exposition`). The files of a dead worker stay, so counters never go
backwards. HTTP requests, which only the API process answers, stay in its memory
(`Requests`: the cheapest to record on the hottest path). What is *state* rather than
an event (tasks running or waiting, the oldest wait, worker heartbeats) is not counted
by any process: ``/metrics`` reads it from the store at scrape time
(`taskgate.http.metrics`), so it is true however many machines share the store.

A standalone ``taskgate worker`` keeps its metrics in memory, and ``--metrics-port``
serves them (`serve_worker_metrics`).
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

__all__ = [
    "CONTENT_TYPE_LATEST",
    "Metrics",
    "exposition",
    "process_metrics",
    "share",
    "shared_with_children",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

RUN_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Seconds an attempt runs: from no-ops to hour-long jobs."""
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0)
"""Seconds a task waits for a worker, or for what it reserves."""
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)

UNMATCHED = "unmatched"
"""The route label of a request no route matched (its path is not a label: unbounded)."""


class Metrics:
    """The metrics one process records, with label children cached per value."""

    def __init__(self) -> None:
        self.submitted = Counter(
            "taskgate_tasks_submitted",
            "Tasks stored by a submit (an idempotent replay is not counted).",
            ["type"],
            registry=None,
        )
        self.finished = Counter(
            "taskgate_tasks_finished",
            "Tasks that ended, by outcome: succeeded, failed, canceled, timed_out.",
            ["type", "outcome"],
            registry=None,
        )
        self.run_seconds = Histogram(
            "taskgate_task_run_seconds",
            "Seconds an attempt ran, from its claim to its ending (retried ones too).",
            ["type"],
            buckets=RUN_BUCKETS,
            registry=None,
        )
        self.queue_wait = Histogram(
            "taskgate_task_queue_wait_seconds",
            "Seconds from a task's submit (or its scheduled time) to its first start.",
            ["type"],
            buckets=WAIT_BUCKETS,
            registry=None,
        )
        self.retries = Counter(
            "taskgate_task_retries",
            "Attempts that failed and were given another attempt.",
            ["type"],
            registry=None,
        )
        self.lock_wait = Histogram(
            "taskgate_task_lock_wait_seconds",
            "Seconds a task that reserves resources or counts against a concurrency limit"
            " waited between falling due and starting.",
            ["type"],
            buckets=WAIT_BUCKETS,
            registry=None,
        )
        self.http = Requests()
        """HTTP requests: kept in this process's memory, even in multiprocess mode."""
        self._submitted: dict[str, Counter] = {}
        self._finished: dict[tuple[str, str], Counter] = {}
        self._run: dict[str, Histogram] = {}
        self._queue: dict[str, Histogram] = {}
        self._retries: dict[str, Counter] = {}
        self._lock: dict[str, Histogram] = {}

    @property
    def collectors(self) -> tuple[Counter | Histogram, ...]:
        return (
            self.submitted,
            self.finished,
            self.run_seconds,
            self.queue_wait,
            self.retries,
            self.lock_wait,
        )

    # -- recording (hot paths: a dict lookup and an increment) -------------------------

    def task_submitted(self, type: str, count: int = 1) -> None:
        child = self._submitted.get(type)
        if child is None:
            child = self._submitted[type] = self.submitted.labels(type)
        child.inc(count)

    def task_finished(self, type: str, outcome: str) -> None:
        key = (type, outcome)
        child = self._finished.get(key)
        if child is None:
            child = self._finished[key] = self.finished.labels(type, outcome)
        child.inc()

    def attempt_ran(self, type: str, seconds: float) -> None:
        child = self._run.get(type)
        if child is None:
            child = self._run[type] = self.run_seconds.labels(type)
        child.observe(seconds)

    def waited(self, type: str, seconds: float) -> None:
        child = self._queue.get(type)
        if child is None:
            child = self._queue[type] = self.queue_wait.labels(type)
        child.observe(seconds)

    def retried(self, type: str) -> None:
        child = self._retries.get(type)
        if child is None:
            child = self._retries[type] = self.retries.labels(type)
        child.inc()

    def lock_waited(self, type: str, seconds: float) -> None:
        child = self._lock.get(type)
        if child is None:
            child = self._lock[type] = self.lock_wait.labels(type)
        child.observe(seconds)

    def http_answered(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http.record(method, route, status, seconds)


class Requests:
    """HTTP requests by (method, route, status): how many, and a latency histogram.

    Only the API process answers requests, so these never need merging across
    processes: plain numbers in memory, recorded on the event loop in well under a
    microsecond (a prometheus-client counter and histogram cost 2.5 µs a request, 4.5 µs
    in multiprocess mode, which the status-read benchmark W3 would feel)."""

    def __init__(self, buckets: tuple[float, ...] = HTTP_BUCKETS) -> None:
        self.buckets = buckets
        self.series: dict[tuple[str, str, int], list[float]] = {}
        """Per labels: the sum of seconds, then a count per bucket (the last: +Inf)."""

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.buckets) + 2)
        series[0] += seconds
        series[1 + bisect.bisect_left(self.buckets, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "taskgate_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=labels,
        )
        seconds = HistogramMetricFamily(
            "taskgate_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer (an event stream:"
            " its whole life).",
            labels=labels,
        )
        bounds = [*(floatToGoString(b) for b in self.buckets), "+Inf"]  # type: ignore[no-untyped-call]
        for (method, route, status), series in list(self.series.items()):
            total, *counts = series[:]  # a copy: the loop may go on recording meanwhile
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            values = [method, route, str(status)]
            requests.add_metric(values, running)
            seconds.add_metric(values, cumulative, total)
        yield requests
        yield seconds


_process: Metrics | None = None


def process_metrics() -> Metrics:
    """This process's metrics (made on the first call)."""
    global _process
    if _process is None:
        _process = Metrics()
    return _process


def shared_directory() -> str | None:
    """The multiprocess directory this process writes to (None: metrics in memory)."""
    return os.environ.get(MULTIPROC_ENV) or None


def share(directory: str) -> None:
    """Record this process's metrics in ``directory`` (multiprocess mode), as the worker
    processes given ``PROMETHEUS_MULTIPROC_DIR=directory`` do. Must come before the
    first metric of the process exists."""
    if _process is not None:
        raise RuntimeError("metrics already exist in this process: share() comes first")
    os.environ[MULTIPROC_ENV] = directory
    # prometheus-client picks its value class when it is imported: pick again
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


@contextmanager
def shared_with_children() -> Iterator[str | None]:
    """Multiprocess mode for this process and those it starts from now on (they inherit
    ``PROMETHEUS_MULTIPROC_DIR``), in a private directory removed afterwards; the
    directory. A directory given by the environment is used and kept. None: this
    process already records in memory (a test running ``serve`` in-process).

    No process metric of taskgate is a gauge, so a dead worker needs no bookkeeping
    (``mark_process_dead`` only drops live gauges): its counters must stay. Each worker
    process leaves two small files; a scrape reads them all."""
    given = shared_directory()
    if given is not None:
        yield given
        return
    if _process is not None:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="taskgate-metrics-")
    share(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class _Families:
    """What ``generate_latest`` and a registry read: the families of several sources,
    each read anew at every scrape."""

    def __init__(self, *sources: Callable[[], Iterable[Metric]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source()


def process_families() -> Iterable[Metric]:
    """The metrics of this process, or, in multiprocess mode, of every process sharing
    its directory."""
    directory = shared_directory()
    if directory is not None:
        collector = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
        families: Iterable[Metric] = collector.collect()  # type: ignore[no-untyped-call]
        return families
    metrics = process_metrics()
    return (family for collector in metrics.collectors for family in collector.collect())


def http_families() -> Iterable[Metric]:
    """The HTTP request metrics of this process (kept apart from `process_families`:
    in multiprocess mode too, they live in this process's memory)."""
    return process_metrics().http.collect()


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text format of the process metrics, then ``extra`` families."""
    return generate_latest(_Families(process_families, http_families, lambda: extra))


def serve_worker_metrics(port: int, host: str) -> None:
    """Serve this process's metrics on ``http://host:port/metrics`` from a thread (a
    standalone worker's ``--metrics-port``)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(process_families))
    start_http_server(port, addr=host, registry=registry)
