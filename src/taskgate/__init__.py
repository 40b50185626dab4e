"""taskgate: durable asynchronous tasks for HTTP APIs.

Register operation handlers on an `App`; `taskgate serve module:app` runs the HTTP task
API and the workers. See README.md and docs/architecture.md.
"""

from __future__ import annotations

from taskgate.app import App, ConcurrencyLimit, Operation, Retention, RetryPolicy
from taskgate.context import Context
from taskgate.errors import TaskCanceled, TaskgateError, TaskTimedOut
from taskgate.model import ErrorInfo, LogLine, State, Task

__version__ = "0.1.0"

__all__ = [
    "App",
    "ConcurrencyLimit",
    "Context",
    "ErrorInfo",
    "LogLine",
    "Operation",
    "Retention",
    "RetryPolicy",
    "State",
    "Task",
    "TaskCanceled",
    "TaskTimedOut",
    "TaskgateError",
    "__version__",
]
