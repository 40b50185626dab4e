"""``/v1/groups``: tasks submitted together (`taskgate.groups`) — submit a group, read
its summary (Pulp 2's state summary), cancel, suspend or resume it as one. A key sees
only its tenant's tasks of a group (an admin every tenant's); the tasks themselves are
listed with ``GET /v1/tasks?group_id=``."""

from __future__ import annotations

from typing import Any

from taskgate.errors import InvalidParameters
from taskgate.http.representation import group_dict, task_dict
from taskgate.http.request import Request
from taskgate.http.responses import Response, header, json_response
from taskgate.http.routing import Body, Endpoints, Param, Reply
from taskgate.http.schemas import (
    BAD_REQUEST,
    INVALID,
    NOT_FOUND_GROUP,
    STRING,
    TOO_LARGE,
    UNSUPPORTED,
    ref,
)
from taskgate.http.submission import Errors, prefix_fields, raise_errors, task_body
from taskgate.service import Submission

api = Endpoints("groups")

GROUP_ID = Param("id", "path", STRING, "The group's id", required=True)
GROUP_REPLY = Reply("The group's summary after the change", "Group")


@api.post(
    "/v1/groups",
    name="submitGroup",
    summary="Submit a group of tasks",
    body=Body(ref("NewGroup"), "The tasks, each as POST /v1/tasks takes one"),
    role="write",
    responses={
        202: Reply("Accepted: every task is stored", "SubmittedGroup", headers=("Location",)),
        400: BAD_REQUEST,
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def submit_group(request: Request) -> Response:
    """Submit several tasks as one new group (a job), in one transaction: all are stored
    or none is. Each item is a ``POST /v1/tasks`` body without ``group_id``; a 422 names
    the item and field at fault (``tasks.2.params.vmid``)."""
    body = await request.json_object(required=True)
    assert body is not None
    errors: Errors = []
    items = body.get("tasks")
    for key in body:
        if key != "tasks":
            errors.append({"field": key, "message": "unknown field (accepted: tasks)"})
    if not isinstance(items, list) or not items:
        errors.append({"field": "tasks", "message": "required: a non-empty list of tasks"})
    raise_errors(errors, "group")
    assert isinstance(items, list)
    principal = request.principal
    requests: list[tuple[str, dict[str, Any], Submission]] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise_errors([{"field": f"tasks.{n}", "message": "must be an object"}], "group")
        try:
            type, params, options = task_body(item, request.service.app.operations)
            if "group_id" in options:
                raise_errors([{"field": "group_id", "message": "a new group makes its own"}], "")
        except InvalidParameters as exc:
            raise prefix_fields(exc, f"tasks.{n}") from None
        try:
            request.service.operation(type).validate(params)
        except InvalidParameters as exc:
            raise prefix_fields(exc, f"tasks.{n}.params") from None
        submission = Submission(
            tenant=principal.tenant,
            user=principal.user,
            user_id=principal.user_id,
            request_id=request.request_id,
            **options,
        )
        requests.append((type, params, submission))
    group_id, tasks = await request.service.submit_group(requests)
    location = f"/v1/groups/{group_id}"
    return json_response(
        {"id": group_id, "tasks": [task_dict(t) for t in tasks], "group": location},
        202,
        headers=[header(b"location", request.root_path + location)],
    )


@api.get(
    "/v1/groups/{id}",
    name="getGroup",
    summary="A group's summary",
    params=(GROUP_ID,),
    responses={
        200: Reply("How many of its tasks are in each state", "Group"),
        404: NOT_FOUND_GROUP,
    },
)
async def get_group(request: Request) -> Response:
    """How many tasks of the group are in each state, in the hot table and in history."""
    group = await request.service.group(request.path_params["id"], tenant=request.principal.scope)
    return json_response(group_dict(group))


@api.post(
    "/v1/groups/{id}/cancel",
    name="cancelGroup",
    summary="Cancel a group",
    params=(GROUP_ID,),
    role="write",
    responses={200: GROUP_REPLY, 400: BAD_REQUEST, 404: NOT_FOUND_GROUP},
)
async def cancel_group(request: Request) -> Response:
    """Cancel every task of the group still going: those not started end ``canceled``,
    running ones are asked to stop (``canceling``). Ended ones stay as they ended."""
    scope = request.principal.scope
    group = await request.service.cancel_group(request.path_params["id"], tenant=scope)
    return json_response(group_dict(group))


@api.post(
    "/v1/groups/{id}/suspend",
    name="suspendGroup",
    summary="Suspend a group",
    params=(GROUP_ID,),
    role="write",
    responses={200: GROUP_REPLY, 400: BAD_REQUEST, 404: NOT_FOUND_GROUP},
)
async def suspend_group(request: Request) -> Response:
    """Suspend every waiting task of the group; running ones go on."""
    scope = request.principal.scope
    group = await request.service.suspend_group(request.path_params["id"], tenant=scope)
    return json_response(group_dict(group))


@api.post(
    "/v1/groups/{id}/resume",
    name="resumeGroup",
    summary="Resume a group",
    params=(GROUP_ID,),
    role="write",
    responses={200: GROUP_REPLY, 400: BAD_REQUEST, 404: NOT_FOUND_GROUP},
)
async def resume_group(request: Request) -> Response:
    """Resume every suspended task of the group."""
    scope = request.principal.scope
    group = await request.service.resume_group(request.path_params["id"], tenant=scope)
    return json_response(group_dict(group))
