"""Gcore Cloud's view of a task: the state map, the field map, and its list.

Everything shown comes from the stored task:

- ``state``: queued and scheduled are ``NEW`` (``RUNNING`` when a retry waits: the
  task was already running), running and canceling are ``RUNNING``, succeeded is
  ``FINISHED``, failed, canceled and timed_out are ``ERROR``.
- ``error``: the error's message (its type when the message is empty); a canceled task
  without an error says ``Task canceled``, a timed-out one ``Task timed out``.
- ``user_id``: the submitting key's user id (0 when the key has none: Gcore requires
  an integer). ``client_id`` and ``user_client_id``: the label ``gcore.client_id``, else
  the tenant when it is a number, else null.
- ``project_id``, ``region_id``, ``lifecycle_policy_id``: the labels
  ``gcore.project_id``, ``gcore.region_id``, ``gcore.lifecycle_policy_id`` (set by the
  kickoff routes from the path), else null.
- ``acknowledged_by``: the acknowledging user when it is a number, or the task's
  ``user_id`` when the submitter acknowledged it, else null.
- ``detailed_state``: only a value of Gcore's enum, else null; ``data``: the parameters;
  ``created_resources``: every kind the SDK knows (empty lists for none created).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from taskgate.model import State, Task, TaskFilter
from taskgate.service import MAX_PAGE, TaskService

LABEL_PROJECT = "gcore.project_id"
LABEL_REGION = "gcore.region_id"
LABEL_CLIENT = "gcore.client_id"
LABEL_LIFECYCLE = "gcore.lifecycle_policy_id"

GCORE_STATES = ("NEW", "RUNNING", "FINISHED", "ERROR")
TO_TASKGATE: dict[str, tuple[State, ...]] = {
    "NEW": (State.QUEUED, State.SCHEDULED, State.SUSPENDED),
    "RUNNING": (State.RUNNING, State.CANCELING, State.SCHEDULED, State.QUEUED, State.SUSPENDED),
    "FINISHED": (State.SUCCEEDED,),
    "ERROR": (State.FAILED, State.CANCELED, State.TIMED_OUT),
}
"""The taskgate states each Gcore state may come from (waiting ones are checked again
by attempt, see `gcore_state`)."""

DETAILED_STATES = frozenset(
    {
        "CLUSTER_CLEAN_UP",
        "CLUSTER_REBUILD",
        "CLUSTER_RESIZE",
        "CLUSTER_RESUME",
        "CLUSTER_SERVER_REBUILD",
        "CLUSTER_SUSPEND",
        "ERROR",
        "FINISHED",
        "IPU_SERVERS",
        "NETWORK",
        "POPLAR_SERVERS",
        "POST_DEPLOY_SETUP",
        "VIPU_CONTROLLER",
    }
)
RESOURCE_KINDS = (
    "ai_clusters",
    "api_keys",
    "caas_containers",
    "clusters",
    "ddos_profiles",
    "faas_functions",
    "faas_namespaces",
    "file_shares",
    "floatingips",
    "healthmonitors",
    "images",
    "inference_instances",
    "instances",
    "k8s_clusters",
    "k8s_pools",
    "l7polices",
    "l7rules",
    "laas_topic",
    "listeners",
    "loadbalancers",
    "members",
    "networks",
    "pools",
    "ports",
    "postgresql_clusters",
    "projects",
    "registry_registries",
    "registry_users",
    "routers",
    "secrets",
    "security_group_rules",
    "security_groups",
    "servergroups",
    "snapshots",
    "subnets",
    "volumes",
)
INT_KINDS = frozenset({"ddos_profiles", "projects"})
"""Kinds whose ids are integers in the SDK's model."""

MAX_SCAN = 100_000
"""Most tasks one list request reads from the store (see `list_tasks`)."""


def gcore_state(task: Task) -> str:
    state = task.state
    if state is State.QUEUED or state is State.SCHEDULED or state is State.SUSPENDED:
        return "RUNNING" if task.attempt > 0 else "NEW"
    if state is State.RUNNING or state is State.CANCELING:
        return "RUNNING"
    if state is State.SUCCEEDED:
        return "FINISHED"
    return "ERROR"


def _time(moment: datetime | None) -> str | None:
    """Gcore's timestamps: UTC, no zone, whole seconds (``2026-07-01T13:37:14``)."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _error(task: Task) -> str | None:
    if task.error is not None:
        return task.error.message or task.error.type
    if task.state is State.CANCELED:
        return "Task canceled"
    if task.state is State.TIMED_OUT:
        return "Task timed out"
    return None


def _created(task: Task) -> dict[str, list[Any]]:
    shown: dict[str, list[Any]] = {kind: [] for kind in RESOURCE_KINDS}
    for kind, ids in task.created_resources.items():
        if kind in INT_KINDS:
            shown[kind] = [n for n in (_int(i) for i in ids) if n is not None]
        else:
            shown[kind] = list(ids)
    return shown


def client_id(task: Task) -> int | None:
    label = _int(task.labels.get(LABEL_CLIENT))
    if label is not None:
        return label
    return int(task.tenant) if task.tenant.isdigit() else None


def task_dict(task: Task) -> dict[str, Any]:
    """The task as Gcore's ``TaskSerializer`` shows it."""
    by = task.acknowledged_by
    acknowledged_by = None
    if by is not None:
        if by.isdigit():
            acknowledged_by = int(by)
        elif by == task.user:
            acknowledged_by = task.user_id
    client = client_id(task)
    labels = task.labels
    return {
        "id": task.id,
        "state": gcore_state(task),
        "task_type": task.type,
        "user_id": task.user_id if task.user_id is not None else 0,
        "client_id": client,
        "user_client_id": client,
        "project_id": _int(labels.get(LABEL_PROJECT)),
        "region_id": _int(labels.get(LABEL_REGION)),
        "lifecycle_policy_id": _int(labels.get(LABEL_LIFECYCLE)),
        "created_on": _time(task.created_at),
        "updated_on": _time(task.updated_at),
        "finished_on": _time(task.finished_at),
        "acknowledged_at": _time(task.acknowledged_at),
        "acknowledged_by": acknowledged_by,
        "created_resources": _created(task),
        "data": task.params,
        "detailed_state": task.detailed_state if task.detailed_state in DETAILED_STATES else None,
        "error": _error(task),
        "job_id": None,
        "request_id": task.request_id,
        "schedule_id": task.schedule_id,
    }


# -- list -------------------------------------------------------------------------------


def store_filter(
    *,
    tenant: str | None,
    states: Sequence[str],
    task_type: str | None,
    projects: Sequence[int],
    regions: Sequence[int],
    since: datetime | None,
    until: datetime | None,
    acknowledged: bool | None,
) -> TaskFilter:
    """The part of a Gcore list the store can select by itself."""
    wanted: set[State] = set()
    for name in states:
        wanted.update(TO_TASKGATE[name])
    labels: list[tuple[str, str]] = []
    if len(projects) == 1:
        labels.append((LABEL_PROJECT, str(projects[0])))
    if len(regions) == 1:
        labels.append((LABEL_REGION, str(regions[0])))
    return TaskFilter(
        states=tuple(s for s in State if s in wanted),
        types=(task_type,) if task_type else (),
        tenant=tenant,
        created_since=since,
        # the store's bound is exclusive; Gcore's is inclusive, on the whole seconds it
        # shows (`list_tasks` checks the exact bound)
        created_until=_after(until),
        labels=tuple(labels),
        acknowledged=acknowledged,
        archived=None,  # Gcore lists tasks however long ago they ended: history too
    )


def _after(until: datetime | None) -> datetime | None:
    """The second after ``until`` (None: no bound, also past the calendar's end)."""
    if until is None:
        return None
    try:
        return until + timedelta(seconds=1)
    except OverflowError:
        return None


async def list_tasks(
    service: TaskService,
    filter: TaskFilter,
    *,
    states: Sequence[str],
    projects: Sequence[int],
    regions: Sequence[int],
    until: datetime | None,
    ascending: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[Task]]:
    """``(count, page)`` of a Gcore list, offset-paged over the store's cursor pages.

    The store lists newest first by cursor; Gcore pages by offset and counts every
    match. So each request reads every task the store-side filter selects (up to
    `MAX_SCAN`; past it the count stops there), checks the rest in Python (several
    project or region ids, NEW versus RUNNING of a waiting task, the inclusive upper
    time bound on the shown, whole-second ``created_on``), counts, and keeps the page
    asked for (oldest first: the matches' reverse).
    """
    wanted_states = set(states)
    project_set = set(projects)
    region_set = set(regions)
    count = 0
    kept: list[Task] = []
    cursor: str | None = None
    scanned = 0
    while scanned < MAX_SCAN:
        page = await service.list(filter, cursor=cursor, limit=MAX_PAGE)
        for task in page.items:
            scanned += 1
            if wanted_states and gcore_state(task) not in wanted_states:
                continue
            if project_set and _int(task.labels.get(LABEL_PROJECT)) not in project_set:
                continue
            if region_set and _int(task.labels.get(LABEL_REGION)) not in region_set:
                continue
            if until is not None and task.created_at.replace(microsecond=0) > until:
                continue
            if ascending or offset <= count < offset + limit:
                kept.append(task)
            count += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    if ascending:
        kept.reverse()
        kept = kept[offset : offset + limit]
    return count, kept
