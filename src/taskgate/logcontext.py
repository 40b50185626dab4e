"""What a log record is about: the task a worker is running, the HTTP request being
answered. Kept in context variables, so it follows the code that runs for a task or a
request (coroutines, the tasks and timers they start, handler threads) without being
passed around, and `ContextFilter` adds it to every record logged meanwhile.

- The HTTP application sets ``request_id`` for each request (the ``X-Request-ID`` sent,
  or a new one).
- The worker sets the task (id, type, tenant and the request id it was submitted with)
  around each attempt: its handler, and the worker's own lines about it. So one request
  id follows a task from the call that made it to its end.

A record may carry its own fields (``extra={"task_id": ...}``): those win.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from taskgate.model import Task

FIELDS = ("task_id", "task_type", "tenant", "request_id")
"""The record attributes `ContextFilter` sets, in the order logs show them."""


class TaskFields(NamedTuple):
    task_id: str
    task_type: str
    tenant: str
    request_id: str | None


CURRENT_TASK: ContextVar[TaskFields | None] = ContextVar("taskgate_task", default=None)
REQUEST_ID: ContextVar[str | None] = ContextVar("taskgate_request_id", default=None)


def task_fields(task: Task) -> TaskFields:
    return TaskFields(task.id, task.type, task.tenant, task.request_id)


@contextmanager
def about(task: Task) -> Iterator[None]:
    """Records logged inside are about ``task`` (and what is started inside inherits it)."""
    token = CURRENT_TASK.set(task_fields(task))
    try:
        yield
    finally:
        CURRENT_TASK.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``task_id``, ``task_type``, ``tenant`` and ``request_id`` to records logged
    about a task or a request (set on the handler: it runs only for records shown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = CURRENT_TASK.get()
        if task is not None:
            for name, value in zip(FIELDS, task, strict=True):
                if value is not None and name not in record.__dict__:
                    setattr(record, name, value)
        if "request_id" not in record.__dict__:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The context fields a record carries, by name."""
    found = record.__dict__
    return {name: found[name] for name in FIELDS if found.get(name) is not None}
