"""The task list (``GET /v1/tasks``) both clients read, built here once, as
``_schedules.py`` does for schedules: what it is filtered by (`TaskFilters`), its query,
and `Pager`, which follows ``next_cursor``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypedDict

import httpx

from taskgate.client._base import (
    Call,
    GroupRef,
    TaskRef,
    group_id_of,
    json_of,
    label_params,
    repeated_param,
    task_id_of,
    time_value,
)
from taskgate.client._models import Page, Schedule, Task


class TaskFilters(TypedDict, total=False):
    """What `list` and `list_page` select tasks by; a filter not given (or None) does not
    filter. ``state`` and ``type`` take one value or several; every label must match."""

    state: str | Iterable[str] | None
    type: str | Iterable[str] | None
    object_id: str | int | None
    since: datetime | str | None
    until: datetime | str | None
    labels: Mapping[str, str] | None
    acknowledged: bool | None
    tenant: str | None
    """One tenant's tasks (admin keys)."""
    schedule_id: str | Schedule | None
    """A schedule's runs."""
    group_id: GroupRef | None
    """A group's tasks."""
    parent_id: TaskRef | None
    """The children of this task."""
    resource: str | None
    """The tasks that reserve this resource."""
    archived: bool | Literal["any"] | None
    """False (the default): the tasks not yet moved to history; True: those in history;
    ``"any"``: both."""
    q: str | None
    """A search by exact match: the task with this id (dashes optional), tasks acting on
    this object id, tasks with a label of this value, or with this ``key=value`` label."""


TASK_FILTERS = frozenset(TaskFilters.__optional_keys__)


def _schedule_id(value: str | Schedule) -> str:
    schedule = value.id if isinstance(value, Schedule) else value
    if not isinstance(schedule, str) or not schedule.strip():
        raise ValueError(f"schedule_id must be a schedule's id, not {value!r}")
    return schedule.strip()


def list_filters(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query of ``GET /v1/tasks`` for these `TaskFilters` (None: not filtered)."""
    unknown = set(filters) - TASK_FILTERS
    if unknown:
        known = ", ".join(sorted(TASK_FILTERS))
        raise TypeError(f"tasks cannot be filtered by {', '.join(sorted(unknown))}; by {known}")
    given = {k: v for k, v in filters.items() if v is not None}
    query = repeated_param("state", given.get("state"))
    query.extend(repeated_param("type", given.get("type")))
    if "object_id" in given:
        query.append(("object_id", str(given["object_id"])))
    if "schedule_id" in given:
        query.append(("schedule_id", _schedule_id(given["schedule_id"])))
    if "group_id" in given:
        query.append(("group_id", group_id_of(given["group_id"])))
    if "parent_id" in given:
        query.append(("parent_id", task_id_of(given["parent_id"])))
    if "resource" in given:
        query.append(("resource", str(given["resource"])))
    for name in ("since", "until"):
        if name in given:
            query.append((name, time_value(name, given[name])))
    if given.get("labels"):
        query.extend(label_params("labels", given["labels"]))
    if "acknowledged" in given:
        query.append(("acknowledged", "true" if given["acknowledged"] else "false"))
    if "tenant" in given:
        query.append(("tenant", given["tenant"]))
    if "q" in given:
        query.append(("q", str(given["q"])))
    archived = given.get("archived", False)
    if archived is True or archived == "any":
        query.append(("archived", "true" if archived is True else "any"))
    elif archived is not False:  # False, the server's default, is not sent
        raise ValueError(f'archived must be True, False or "any", not {archived!r}')
    return query


def list_call(filters: Sequence[tuple[str, str]], cursor: str | None, page_size: int) -> Call:
    query = [*filters, ("limit", str(page_size))]
    if cursor is not None:
        query.append(("cursor", cursor))
    return Call("GET", "/v1/tasks", query)


class Pager:
    """Follows ``next_cursor`` through a task list."""

    def __init__(self, filters: Sequence[tuple[str, str]], page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.filters = filters
        self.page_size = page_size
        self.cursor: str | None = None
        self.done = False

    def next_call(self) -> Call | None:
        return None if self.done else list_call(self.filters, self.cursor, self.page_size)

    def feed(self, response: httpx.Response) -> list[Task]:
        page = Page.from_json(json_of(response))
        if page.next_cursor is None or page.next_cursor == self.cursor:
            self.done = True
        self.cursor = page.next_cursor
        return page.items
