"""The worker runtime: claim due tasks, run their handlers, report, end them.

- worker.py: `Worker` (claiming, heartbeats, the elector, cancel, timeout, graceful
  shutdown, on one event loop) and `run_worker`, the blocking entry point of a worker
  process.
- upkeep.py: heartbeats and the reaper.
- elector.py: `Elector`, which makes one worker of the store the scheduler (it runs the
  reaper) and hands the role on when that worker stops or dies.
- buffer.py: `ReportBuffer`, a running task's sink, which coalesces its reports;
  reporter.py writes them.
- execution.py, ending.py: one attempt's record, and how it ends.
- isolation.py, threads.py, process.py: running handlers on the loop, in threads, in
  child processes, and stopping them by force.
- flag.py: an event to wait on with a timeout, cheaply.
- supervisor.py: the worker processes of ``taskgate serve``.
"""

from __future__ import annotations

from taskgate.runtime.buffer import Report, ReportBuffer
from taskgate.runtime.worker import Worker, run_worker, serve_worker

__all__ = ["Report", "ReportBuffer", "Worker", "run_worker", "serve_worker"]
