"""Submitting tasks: ``POST /v1/operations/{type}`` and ``POST /v1/tasks``.

Both answer 202 Accepted once the task is stored (Azure's long-running-operation
pattern): the task itself, ``Location`` and ``Operation-Location`` naming it, and
``Retry-After``. An ``Idempotency-Key`` seen before returns the first task again, marked
``Idempotency-Replayed: true``; the same key with a different request is a 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskgate.errors import InvalidParameters
from taskgate.http.representation import task_json
from taskgate.http.request import Request
from taskgate.http.responses import Response, raw_json_response
from taskgate.http.routing import Body, Endpoints, Param
from taskgate.http.schemas import (
    ACCEPTED,
    BAD_REQUEST,
    IDEMPOTENCY_KEY,
    INVALID,
    SUBMIT_OPTIONS,
    TOO_LARGE,
    UNSUPPORTED,
    problem_reply,
    ref,
)
from taskgate.http.submission import (
    idempotency_key,
    new_task_headers,
    options_from_query,
    prefix_fields,
    raise_errors,
    task_body,
)
from taskgate.service import Submission

api = Endpoints("submit")

REPLAYED = (b"idempotency-replayed", b"true")
OPERATION_TYPE = Param(
    "type",
    "path",
    {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"},
    "The operation's name (GET /v1/operations lists them)",
    required=True,
)


async def _submit(
    request: Request,
    type: str,
    params: Mapping[str, Any],
    options: Mapping[str, Any],
    key: str | None,
    *,
    params_field: str | None,
) -> Response:
    principal = request.principal
    submission = Submission(
        tenant=principal.tenant,
        user=principal.user,
        user_id=principal.user_id,
        idempotency_key=key,
        request_id=request.request_id,
        **options,
    )
    try:
        task, created = await request.service.submit_one(type, params, submission)
    except InvalidParameters as exc:
        if params_field is None:
            raise
        raise prefix_fields(exc, params_field) from None
    headers = new_task_headers(request, task)
    if not created:
        headers.append(REPLAYED)
    return raw_json_response(task_json(task), 202, headers)


@api.post(
    "/v1/operations/{type}",
    name="submitOperation",
    summary="Run an operation",
    params=(OPERATION_TYPE, IDEMPOTENCY_KEY, *SUBMIT_OPTIONS),
    body=Body(
        {"type": "object", "description": "The operation's parameters"},
        "The operation's parameters object; no body means no parameters",
        required=False,
    ),
    role="write",
    responses={
        202: ACCEPTED,
        400: BAD_REQUEST,
        404: problem_reply("No such operation"),
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def submit_operation(request: Request) -> Response:
    """Submit a task of operation ``type``: the body is its parameters object, task
    options come as query parameters. 202 with the task once it is stored."""
    type = request.path_params["type"]
    request.service.operation(type)  # 404 before anything is read
    key = idempotency_key(request.header(b"idempotency-key"))
    options: dict[str, Any] = {}
    if request.scope["query_string"]:
        errors: list[dict[str, Any]] = []
        options = options_from_query(request.query, errors)
        raise_errors(errors, "task options")
    params = await request.json_object(required=False)
    return await _submit(request, type, params or {}, options, key, params_field=None)


@api.post(
    "/v1/tasks",
    name="submitTask",
    summary="Submit a task",
    params=(IDEMPOTENCY_KEY,),
    body=Body(ref("SubmitTask"), "The operation, its parameters and task options"),
    role="write",
    responses={
        202: ACCEPTED,
        400: BAD_REQUEST,
        413: TOO_LARGE,
        415: UNSUPPORTED,
        422: INVALID,
    },
)
async def submit_task(request: Request) -> Response:
    """Submit a task described by the body: ``type``, ``params`` and task options.
    202 with the task once it is stored."""
    key = idempotency_key(request.header(b"idempotency-key"))
    body = await request.json_object(required=True)
    assert body is not None
    type, params, options = task_body(body, request.service.app.operations)
    return await _submit(request, type, params, options, key, params_field="params")
