"""Proxmox VE's task shapes and parameters: the translation `proxmox` serves.

Pure functions of a stored `Task` (status, list entries, exit status, the derived last
log line) and the checked parameters of the task list, plus PVE's error value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from taskgate.ids import Upid
from taskgate.model import TERMINAL, State, Task, TaskFilter

_WARNINGS = re.compile(r"^WARNINGS: \d+$")
_VMID = re.compile(r"^[1-9][0-9]{2,8}$")
ACTIVE = tuple(s for s in State if s not in TERMINAL)
ENDED = tuple(s for s in State if s in TERMINAL)
_STATUS_TYPES = ("ok", "error", "warning", "unknown")
MAX_EPOCH = 253_402_300_799
"""The last second of year 9999: later ``since``/``until`` values are refused."""


class PveError(Exception):
    """An answer in PVE's error shape."""

    def __init__(
        self, status: int, message: str, errors: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.extra = extra


def param_error(**errors: str) -> PveError:
    return PveError(400, "Parameter verification failed.", errors)


# -- translation ---------------------------------------------------------------------


def exit_status(task: Task) -> str:
    """PVE's ``exitstatus`` of an ended task."""
    if task.state is State.SUCCEEDED:
        return f"WARNINGS: {task.warnings}" if task.warnings else "OK"
    message = task.error.message if task.error else (task.message or str(task.state))
    message = " ".join(message.split()) or str(task.state)
    if message == "OK" or _WARNINGS.match(message):  # must still read as an error
        message = f"{task.state}: {message}"
    return message


def status_type(task: Task) -> str:
    """``ok``, ``warning`` or ``error`` (PVE's ``normalize_status_type``) of an ended task."""
    if task.state is State.SUCCEEDED:
        return "warning" if task.warnings else "ok"
    return "error"


def upid_fields(task: Task) -> dict[str, Any]:
    upid = Upid.decode(task.upid)
    return {
        "upid": task.upid,
        "node": upid.node,
        "pid": upid.pid,
        "pstart": upid.pstart,
        "starttime": upid.starttime,
        "type": upid.type,
        "id": upid.id,
        "user": upid.user,
    }


def task_status(task: Task) -> dict[str, Any]:
    """``GET .../tasks/{upid}/status``."""
    data = upid_fields(task)
    if task.terminal:
        data["status"] = "stopped"
        data["exitstatus"] = exit_status(task)
    else:
        data["status"] = "running"
    return data


def list_item(task: Task) -> dict[str, Any]:
    """One entry of ``GET .../tasks``."""
    data = upid_fields(task)
    if task.terminal:
        data["status"] = exit_status(task)
        if task.finished_at is not None:
            data["endtime"] = int(task.finished_at.timestamp())
    else:
        data["status"] = "RUNNING"
    return data


def last_line(task: Task) -> str:
    """The final log line PVE's worker writes, derived from an ended task."""
    status = exit_status(task)
    if status == "OK":
        return "TASK OK"
    if _WARNINGS.match(status):
        return f"TASK {status}"
    return f"TASK ERROR: {status}"


# -- parameters ----------------------------------------------------------------------


def read_int(
    query: dict[str, list[str]], name: str, default: int, *, low: int = 0, high: int = 2**62
) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise param_error(**{name: "duplicate parameter"})
    text = values[0]
    if not re.fullmatch(r"[+-]?\d{1,18}", text.strip()):
        raise param_error(**{name: f"type check ('integer') failed - got '{text}'"})
    value = int(text)
    if value < low:
        raise param_error(**{name: f"value must have a minimum value of {low}"})
    if value > high:
        raise param_error(**{name: f"value must have a maximum value of {high}"})
    return value


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise param_error(**{name: "duplicate parameter"})
    return values[0]


def read_bool(query: dict[str, list[str]], name: str) -> bool:
    text = _one(query, name)
    if text is None:
        return False
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise param_error(**{name: f"type check ('boolean') failed - got '{text}'"})


LIST_PARAMS = frozenset(
    (
        "start",
        "limit",
        "userfilter",
        "typefilter",
        "vmid",
        "errors",
        "source",
        "since",
        "until",
        "statusfilter",
    )
)


class ListQuery:
    """The parameters of ``GET /nodes/{node}/tasks``, checked."""

    def __init__(self, query: dict[str, list[str]]) -> None:
        unknown = sorted(set(query) - LIST_PARAMS - {"_dc"})  # _dc: ExtJS's cache buster
        if unknown:
            raise param_error(**dict.fromkeys(unknown, "property is not defined in schema"))
        self.start = read_int(query, "start", 0)
        self.limit = read_int(query, "limit", 50)
        self.userfilter = (_one(query, "userfilter") or "").lower()
        self.typefilter = _one(query, "typefilter") or None
        vmid = _one(query, "vmid")
        if vmid is not None and not _VMID.match(vmid):
            raise param_error(vmid=f"invalid format - value '{vmid}' does not look like a vmid")
        self.vmid = vmid
        self.errors = read_bool(query, "errors")
        source = _one(query, "source") or "archive"
        if source not in ("archive", "active", "all"):
            raise param_error(
                source=f"value '{source}' does not have a value in the enumeration"
                " 'archive, active, all'"
            )
        self.source = source
        self.since = read_int(query, "since", -1, low=-1, high=MAX_EPOCH)
        self.until = read_int(query, "until", -1, low=-1, high=MAX_EPOCH)
        statuses: set[str] = set()
        for part in (_one(query, "statusfilter") or "").split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in _STATUS_TYPES:
                raise param_error(
                    statusfilter=f"invalid format - value '{part}' does not have a value in"
                    " the enumeration 'ok, error, warning, unknown'"
                )
            statuses.add(part)
        if self.errors:  # PVE: errors=1 overrides statusfilter and drops the OK ones
            statuses = {"error", "warning", "unknown"}
        self.statuses = statuses

    def filter(self, tenant: str | None, states: Sequence[State]) -> TaskFilter:
        if self.statuses and states == ENDED:
            narrowed: list[State] = []
            if self.statuses & {"ok", "warning"}:
                narrowed.append(State.SUCCEEDED)
            if "error" in self.statuses:
                narrowed += [State.FAILED, State.CANCELED, State.TIMED_OUT]
            states = narrowed
        return TaskFilter(
            states=tuple(states),
            types=(self.typefilter,) if self.typefilter else (),
            object_id=self.vmid,
            tenant=tenant,
            created_since=(datetime.fromtimestamp(self.since, UTC) if self.since >= 0 else None),
            created_until=(
                datetime.fromtimestamp(self.until + 1, UTC) if self.until >= 0 else None
            ),
            # PVE's archive is every task that ended: history too (running ones never are)
            archived=False if tuple(states) == ACTIVE else None,
        )

    def keeps(self, task: Task) -> bool:
        if self.userfilter and self.userfilter not in Upid.decode(task.upid).user.lower():
            return False
        return not (self.statuses and task.terminal and status_type(task) not in self.statuses)
