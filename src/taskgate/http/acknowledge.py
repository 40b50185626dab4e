"""Acknowledgment: a user marks tasks as seen (``acknowledged_at``/``acknowledged_by``),
one at a time or in bulk. A task's state does not change; its version does, so caches,
ETags and event streams see it."""

from __future__ import annotations

from typing import Any

from taskgate.errors import InvalidId
from taskgate.http.asgi import Headers
from taskgate.http.representation import task_json
from taskgate.http.request import Request
from taskgate.http.responses import Response, json_response, raw_json_response
from taskgate.http.routing import Body, Endpoints, Reply
from taskgate.http.schemas import (
    ACKNOWLEDGE_TASKS,
    BAD_REQUEST,
    INVALID,
    NOT_FOUND_TASK,
    TASK_ID,
    TOO_LARGE,
    UNSUPPORTED,
)
from taskgate.http.submission import Errors, raise_errors
from taskgate.ids import parse_task_id
from taskgate.model import State
from taskgate.service import MAX_ACK_IDS

api = Endpoints("tasks")

ETAG = b"etag"
RETRY_AFTER = b"retry-after"
FIELDS = ("ids", "state", "type")


@api.post(
    "/v1/tasks/acknowledge",
    name="acknowledgeTasks",
    summary="Acknowledge many tasks",
    body=Body(ACKNOWLEDGE_TASKS, "Which tasks: ids, or state and type filters", required=False),
    role="write",
    responses={
        200: Reply("How many tasks this acknowledged", "Acknowledged"),
        400: BAD_REQUEST,
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def acknowledge_tasks(request: Request) -> Response:
    """Acknowledge, as the key's user, the tasks of your tenant not acknowledged yet that
    the body selects: ``{"ids": [...]}`` (ids you cannot see are skipped), or
    ``{"state": [...], "type": [...]}`` (each optional), or ``{}`` (or no body) for all
    of them. The answer counts the tasks acknowledged now. Their state does not change;
    their version does."""
    body = await request.json_object(required=False) or {}
    errors: Errors = []
    for name in body:
        if name not in FIELDS:
            errors.append({"field": name, "message": f"unknown field; use {', '.join(FIELDS)}"})
    ids = _strings(errors, body, "ids")
    if ids is not None:
        if len(ids) > MAX_ACK_IDS:
            errors.append({"field": "ids", "message": f"at most {MAX_ACK_IDS} ids at once"})
        for i, raw in enumerate(ids):
            try:
                parse_task_id(raw)
            except InvalidId:
                errors.append({"field": f"ids[{i}]", "message": f"{raw!r} is not a task id"})
    states: list[State] = []
    for i, raw in enumerate(_strings(errors, body, "state") or ()):
        try:
            states.append(State(raw))
        except ValueError:
            names = ", ".join(s.value for s in State)
            errors.append({"field": f"state[{i}]", "message": f"not a state; use {names}"})
    types = _strings(errors, body, "type") or []
    raise_errors(errors, "body")
    principal = request.principal
    count = await request.service.acknowledge_many(
        user=principal.user, tenant=principal.scope, ids=ids, states=states, types=types
    )
    return json_response({"acknowledged": count})


def _strings(errors: Errors, body: dict[str, Any], name: str) -> list[str] | None:
    """``body[name]`` as a list of strings (None when absent or null)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append({"field": name, "message": "must be a list of strings"})
        return None
    return value


@api.post(
    "/v1/tasks/{id}/acknowledge",
    name="acknowledgeTask",
    summary="Acknowledge a task",
    params=(TASK_ID,),
    role="write",
    responses={
        200: Reply("The task, acknowledged", "Task", headers=("ETag", "Retry-After")),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
    },
)
async def acknowledge_task(request: Request) -> Response:
    """Mark the task as seen by the key's user: ``acknowledged_at`` and
    ``acknowledged_by`` are set, its state stays, its version rises. A task acknowledged
    before keeps its first acknowledgment."""
    principal = request.principal
    task = await request.service.acknowledge(
        request.path_params["id"], user=principal.user, tenant=principal.scope
    )
    headers: Headers = [(ETAG, task.etag.encode())]
    if not task.terminal:
        headers.append((RETRY_AFTER, request.app.retry_after))
    return raw_json_response(task_json(task), 200, headers)
