"""``/v1/schedules``: named schedules (`taskgate.schedules`) — create, list, read,
change, delete, pause, resume and run now. A key sees and changes only its tenant's
schedules (an admin every tenant's); each run is a task of the schedule's tenant and
creator, listed with ``GET /v1/tasks?schedule_id=``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from taskgate.http import inputs
from taskgate.http.asgi import Headers
from taskgate.http.representation import schedule_dict, task_json
from taskgate.http.request import Request
from taskgate.http.responses import (
    Response,
    empty_response,
    header,
    json_response,
    raw_json_response,
)
from taskgate.http.routing import Body, Endpoints, Param, Reply
from taskgate.http.schemas import (
    BAD_REQUEST,
    INVALID,
    STRING,
    TOO_LARGE,
    UNSUPPORTED,
    problem_reply,
    ref,
)
from taskgate.http.submission import Errors, options_from_json, raise_errors
from taskgate.schedules import MAX_PAGE, RUN_OPTIONS, Schedule, ScheduleService

api = Endpoints("schedules")

DEFAULT_PAGE = 100
FIELDS = {
    "name": str,
    "type": str,
    "params": dict,
    "recurrence": str,
    "timezone": str,
    "enabled": bool,
    "overlap": str,
    "failure_threshold": (int, type(None)),
    "schedule_threshold": (int, float, type(None)),
    "options": (dict, type(None)),
}
"""The fields of a schedule body, with the JSON types each takes."""
CHANGEABLE = frozenset(FIELDS) - {"name", "type"}
TYPE_NAMES = {str: "a string", dict: "an object", bool: "true or false"}

SCHEDULE_ID = Param(
    "id", "path", STRING, "The schedule's id, or its name in your tenant", required=True
)
NOT_FOUND = problem_reply("No such schedule (or not visible to this tenant)")
SCHEDULE_REPLY = Reply("The schedule", "Schedule")


def _schedules(request: Request) -> ScheduleService:
    return ScheduleService(request.service)


async def _find(request: Request, key: str | None = None) -> Schedule:
    """The schedule the path (or ``key``) names: by id, or by name in the key's tenant."""
    principal = request.principal
    return await _schedules(request).get(
        request.path_params["id"] if key is None else key,
        tenant=principal.scope,
        names_in=principal.tenant,
    )


def _fields(body: dict[str, Any], allowed: frozenset[str] | dict[str, Any]) -> dict[str, Any]:
    """The body's fields, type-checked; 422 naming every wrong one."""
    errors: Errors = []
    out: dict[str, Any] = {}
    for name, value in body.items():
        kinds = FIELDS.get(name)
        if kinds is None or name not in allowed:
            known = ", ".join(sorted(allowed))
            errors.append({"field": name, "message": f"unknown or unchangeable; use {known}"})
            continue
        wanted = kinds if isinstance(kinds, tuple) else (kinds,)
        # JSON true is not a number here, though Python's bool is an int
        ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
        if not ok:
            names = " or ".join(
                TYPE_NAMES.get(k, k.__name__) for k in wanted if k is not type(None)
            )
            errors.append({"field": name, "message": f"must be {names}"})
            continue
        out[name] = value
    options = out.get("options")
    if options:
        for key in options:
            if key not in RUN_OPTIONS:
                errors.append(
                    {"field": f"options.{key}", "message": f"use {', '.join(RUN_OPTIONS)}"}
                )
        checked: Errors = []
        out["options"] = {
            k: v for k, v in options_from_json(options, checked).items() if v is not None
        }
        errors.extend({**e, "field": f"options.{e['field']}"} for e in checked)
    raise_errors(errors, "schedule")
    return out


def _location(request: Request, schedule: Schedule) -> Headers:
    return [header(b"location", f"{request.root_path}/v1/schedules/{schedule.id}")]


@api.post(
    "/v1/schedules",
    name="createSchedule",
    summary="Create a schedule",
    body=Body(ref("NewSchedule"), "The schedule: name, operation, recurrence, ..."),
    role="write",
    responses={
        201: Reply("The schedule, created", "Schedule", headers=("Location",)),
        400: BAD_REQUEST,
        404: problem_reply("No such operation"),
        409: problem_reply("Your tenant has a schedule of that name already"),
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def create_schedule(request: Request) -> Response:
    """Create a schedule that runs operation ``type`` with ``params`` on ``recurrence``:
    an ISO 8601 repeating interval (``R5/2026-01-01T00:00:00Z/PT1H``, ``PT10M``) or a
    cron expression evaluated in ``timezone``. Its runs are tasks of your tenant."""
    body = await request.json_object(required=True)
    assert body is not None
    fields = _fields(body, FIELDS)
    missing = [name for name in ("name", "type", "recurrence") if name not in fields]
    raise_errors([{"field": name, "message": "is required"} for name in missing], "schedule")
    request.service.operation(fields["type"])  # 404 for an unknown operation
    principal = request.principal
    schedule = await _schedules(request).create(
        fields.pop("name"),
        fields.pop("type"),
        fields.pop("recurrence"),
        fields.pop("params", None),
        tenant=principal.tenant,
        user=principal.user,
        user_id=principal.user_id,
        **fields,
    )
    return json_response(schedule_dict(schedule), 201, headers=_location(request, schedule))


@api.get(
    "/v1/schedules",
    name="listSchedules",
    summary="List schedules",
    params=(
        Param("type", "query", STRING, "Only schedules of these operations", repeat=True),
        Param("enabled", "query", {"type": "boolean"}, "Only enabled (or disabled) ones"),
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
            "Schedules per page",
        ),
        Param("after", "query", STRING, "next_after of the previous page"),
    ),
    responses={
        200: Reply("A page of schedules, by name", "ScheduleList", headers=("Link",)),
        400: BAD_REQUEST,
    },
)
async def list_schedules(request: Request) -> Response:
    """Your tenant's schedules (an admin's: every tenant's), by name, a page at a time:
    pass ``next_after`` as ``after=`` until it is null."""
    service = _schedules(request)
    tenant = request.principal.scope
    enabled = request.query_one("enabled")
    after_id = request.query_one("after")
    after = None if after_id is None else await _find(request, after_id)
    page_size = inputs.int_param("limit", request.query_one("limit"), DEFAULT_PAGE, 1, MAX_PAGE)
    items = await service.list(
        tenant=tenant,
        enabled=None if enabled is None else inputs.param("enabled", inputs.to_bool, enabled),
        types=tuple(inputs.split_values("type", request.query.get("type", ()))),
        after=after,
        limit=page_size,
    )
    next_after = items[-1].id if len(items) == page_size else None
    headers: Headers = []
    if next_after is not None:
        pairs = [(k, v) for k, vs in request.query.items() if k != "after" for v in vs]
        pairs.append(("after", next_after))
        url = f"{request.root_path}/v1/schedules?{urlencode(pairs)}"
        headers.append(header(b"link", f'<{url}>; rel="next"'))
    body = {"items": [schedule_dict(s) for s in items], "next_after": next_after}
    return json_response(body, headers=headers)


@api.get(
    "/v1/schedules/{id}",
    name="getSchedule",
    summary="Get a schedule",
    params=(SCHEDULE_ID,),
    responses={200: SCHEDULE_REPLY, 404: NOT_FOUND},
)
async def get_schedule(request: Request) -> Response:
    """The schedule, with its counters and its next run."""
    return json_response(schedule_dict(await _find(request)))


@api.patch(
    "/v1/schedules/{id}",
    name="updateSchedule",
    summary="Change a schedule",
    params=(SCHEDULE_ID,),
    body=Body(ref("ScheduleChanges"), "The fields to change"),
    role="write",
    responses={
        200: SCHEDULE_REPLY,
        400: BAD_REQUEST,
        404: NOT_FOUND,
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def update_schedule(request: Request) -> Response:
    """Change some of the schedule's fields (a JSON merge: fields not given stay). A new
    recurrence or time zone, or enabling it, computes the next run from now; enabling
    also forgets the failures counted so far."""
    body = await request.json_object(required=True)
    assert body is not None
    changes = _fields(body, CHANGEABLE)
    found = await _find(request)
    schedule = await _schedules(request).update(found.id, changes, tenant=found.tenant)
    return json_response(schedule_dict(schedule))


@api.delete(
    "/v1/schedules/{id}",
    name="deleteSchedule",
    summary="Delete a schedule",
    params=(SCHEDULE_ID,),
    role="write",
    responses={204: Reply("Deleted; its tasks stay"), 404: NOT_FOUND},
)
async def delete_schedule(request: Request) -> Response:
    """Delete the schedule. Its tasks, run or running, stay as they are."""
    found = await _find(request)
    await _schedules(request).delete(found.id, tenant=found.tenant)
    return empty_response(204)


async def _switch(request: Request, enabled: bool) -> Response:
    service, found = _schedules(request), await _find(request)
    if enabled:
        schedule = await service.resume(found.id, tenant=found.tenant)
    else:
        schedule = await service.pause(found.id, tenant=found.tenant)
    return json_response(schedule_dict(schedule))


@api.post(
    "/v1/schedules/{id}/pause",
    name="pauseSchedule",
    summary="Pause a schedule",
    params=(SCHEDULE_ID,),
    role="write",
    responses={200: SCHEDULE_REPLY, 404: NOT_FOUND},
)
async def pause_schedule(request: Request) -> Response:
    """Disable the schedule: no run starts until it is resumed (a running one goes on)."""
    return await _switch(request, False)


@api.post(
    "/v1/schedules/{id}/resume",
    name="resumeSchedule",
    summary="Resume a schedule",
    params=(SCHEDULE_ID,),
    role="write",
    responses={200: SCHEDULE_REPLY, 404: NOT_FOUND},
)
async def resume_schedule(request: Request) -> Response:
    """Enable the schedule again: the next run is the first one after now (runs missed
    while paused are not made up), and past failures are forgotten."""
    return await _switch(request, True)


@api.post(
    "/v1/schedules/{id}/run",
    name="runSchedule",
    summary="Run a schedule now",
    params=(SCHEDULE_ID,),
    role="write",
    responses={
        202: Reply("The run's task", "Task", headers=("Location", "Operation-Location")),
        404: NOT_FOUND,
        409: problem_reply("The schedule's last run has not ended"),
        422: INVALID,
    },
)
async def run_schedule(request: Request) -> Response:
    """Submit a run now, besides the recurrence (the next run stays as it was). A
    schedule never runs twice at once: 409 while its last run has not ended."""
    found = await _find(request)
    task = await _schedules(request).run_now(found.id, tenant=found.tenant)
    location = f"/v1/tasks/{task.id}"
    headers = [
        header(b"location", request.root_path + location),
        header(b"operation-location", request.base_url() + location),
    ]
    return raw_json_response(task_json(task), 202, headers)
