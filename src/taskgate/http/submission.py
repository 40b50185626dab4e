"""What a submit request says besides the operation's parameters: the task options.

``POST /v1/tasks`` carries them in its JSON body next to ``type`` and ``params``;
``POST /v1/operations/{type}`` carries them in the query string, because its body is
the parameters object itself. Both are checked here, every field at once, so a 422
names all the wrong fields and says what each one needs. Hand-written rather than a
pydantic model: a submit is a hot path, and these checks cost a few microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taskgate.app import MAX_RESOURCES
from taskgate.errors import InvalidParameters, InvalidRequest
from taskgate.groups import check_group_id
from taskgate.http import inputs
from taskgate.http.problems import HTTPProblem
from taskgate.http.responses import header
from taskgate.reservations import check_resource

if TYPE_CHECKING:
    from taskgate.http.asgi import Headers
    from taskgate.http.request import Request
    from taskgate.model import Task

OPTIONS = (
    "object_id",
    "priority",
    "labels",
    "delay",
    "scheduled_at",
    "timeout",
    "max_attempts",
    "group_id",
    "exclusive_resources",
    "shared_resources",
)
"""The task options, by their `taskgate.service.Submission` names."""
REPEATED = {
    "labels": "label",
    "exclusive_resources": "exclusive_resource",
    "shared_resources": "shared_resource",
}
"""The options given as a repeated query parameter (``label=key=value``), by name."""
QUERY_OPTIONS = tuple(REPEATED.get(name, name) for name in OPTIONS)
"""Their query parameter names."""
BODY_FIELDS = ("type", "params", *OPTIONS)

MAX_KEY = 255
MAX_OBJECT_ID = 255
MAX_ATTEMPTS = 1000
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1

Errors = list[dict[str, Any]]


def _error(errors: Errors, field: str, message: str) -> None:
    errors.append({"field": field, "message": message})


def raise_errors(errors: Errors, what: str) -> None:
    """Raise the 422 for ``errors``, if there are any."""
    if errors:
        fields = ", ".join(str(e["field"]) for e in errors if e["field"])
        raise InvalidParameters(
            f"invalid {what}: {fields or 'body'} ({errors[0]['message']})", errors=errors
        )


# -- typed values ------------------------------------------------------------------


def _int(errors: Errors, field: str, value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        _error(errors, field, "must be an integer")
        return None
    if not lo <= value <= hi:
        _error(errors, field, f"must be between {lo} and {hi}")
        return None
    return value


def _seconds(errors: Errors, field: str, value: Any, *, positive: bool) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _error(errors, field, "must be a number of seconds")
        return None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        _error(errors, field, "must be a positive number" if positive else "must be >= 0")
        return None
    return float(value)


def _time(errors: Errors, field: str, value: Any) -> datetime | None:
    if not isinstance(value, str):
        _error(errors, field, "must be an RFC 3339 time string")
        return None
    try:
        return inputs.to_time(value)
    except ValueError as exc:
        _error(errors, field, str(exc))
        return None


def _object_id(errors: Errors, field: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_OBJECT_ID:
        _error(errors, field, f"must be a string of 1 to {MAX_OBJECT_ID} characters")
        return None
    return value


def _labels(errors: Errors, field: str, value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        _error(errors, field, "must be an object of string values")
        return None
    return value


def _group_id(errors: Errors, field: str, value: Any) -> str | None:
    try:
        return check_group_id(value)
    except InvalidRequest as exc:
        _error(errors, field, exc.message.removeprefix("group_id: "))
        return None


def _resources(errors: Errors, field: str, value: Any) -> list[str] | None:
    if not isinstance(value, list) or len(value) > MAX_RESOURCES:
        _error(errors, field, f"must be a list of at most {MAX_RESOURCES} resource names")
        return None
    try:
        return [check_resource(v, field) for v in value]
    except InvalidRequest as exc:
        _error(errors, field, exc.message.removeprefix(f"{field}: "))
        return None


def _check_schedule(errors: Errors, options: Mapping[str, Any]) -> None:
    if options.get("delay") is not None and options.get("scheduled_at") is not None:
        _error(errors, "scheduled_at", "give scheduled_at or delay, not both")


# -- sources -------------------------------------------------------------------------


def options_from_json(body: Mapping[str, Any], errors: Errors) -> dict[str, Any]:
    """Task options from a JSON object (absent or null: not given)."""
    out: dict[str, Any] = {}
    value = body.get("object_id")
    if value is not None:
        out["object_id"] = _object_id(errors, "object_id", value)
    value = body.get("priority")
    if value is not None:
        out["priority"] = _int(errors, "priority", value, PRIORITY_MIN, PRIORITY_MAX)
    value = body.get("labels")
    if value is not None:
        out["labels"] = _labels(errors, "labels", value)
    value = body.get("delay")
    if value is not None:
        out["delay"] = _seconds(errors, "delay", value, positive=False)
    value = body.get("scheduled_at")
    if value is not None:
        out["scheduled_at"] = _time(errors, "scheduled_at", value)
    value = body.get("timeout")
    if value is not None:
        out["timeout"] = _seconds(errors, "timeout", value, positive=True)
    value = body.get("max_attempts")
    if value is not None:
        out["max_attempts"] = _int(errors, "max_attempts", value, 1, MAX_ATTEMPTS)
    value = body.get("group_id")
    if value is not None:
        out["group_id"] = _group_id(errors, "group_id", value)
    for name in ("exclusive_resources", "shared_resources"):
        value = body.get(name)
        if value is not None:
            out[name] = _resources(errors, name, value)
    _check_schedule(errors, out)
    return out


def options_from_query(query: Mapping[str, list[str]], errors: Errors) -> dict[str, Any]:
    """Task options from query parameters (all text; ``label`` repeats)."""
    out: dict[str, Any] = {}
    for name, values in query.items():
        if name not in REPEATED.values() and len(values) > 1:
            _error(errors, name, "may be given only once")
            continue
        raw = values[-1]
        try:
            if name == "object_id":
                out[name] = _object_id(errors, name, raw)
            elif name == "priority":
                out[name] = inputs.to_int(raw, PRIORITY_MIN, PRIORITY_MAX)
            elif name == "label":
                out["labels"] = dict(inputs.to_label(v) for v in values)
            elif name == "delay":
                out[name] = _seconds(errors, name, inputs.to_number(raw), positive=False)
            elif name == "scheduled_at":
                out[name] = _time(errors, name, raw)
            elif name == "timeout":
                out[name] = _seconds(errors, name, inputs.to_number(raw), positive=True)
            elif name == "max_attempts":
                out[name] = inputs.to_int(raw, 1, MAX_ATTEMPTS)
            elif name == "group_id":
                out[name] = _group_id(errors, name, raw)
            elif name in ("exclusive_resource", "shared_resource"):
                out[f"{name}s"] = _resources(errors, name, values)
        except ValueError as exc:
            _error(errors, name, str(exc))
    _check_schedule(errors, out)
    return out


def task_body(
    body: Mapping[str, Any], operations: Mapping[str, object]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``POST /v1/tasks``'s body -> (type, params, options); 422 naming every bad field."""
    errors: Errors = []
    for key in body:
        if key not in BODY_FIELDS:
            _error(errors, key, f"unknown field (accepted: {', '.join(BODY_FIELDS)})")
    type_ = body.get("type")
    if type_ is None:
        _error(errors, "type", "required: the name of an operation")
    elif not isinstance(type_, str):
        _error(errors, "type", "must be a string: the name of an operation")
    elif type_ not in operations:
        known = sorted(operations)
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        _error(errors, "type", f"no operation named {type_!r} (registered: {listed or 'none'})")
    params = body.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        _error(errors, "params", "must be a JSON object of the operation's parameters")
    options = options_from_json(body, errors)
    raise_errors(errors, "task")
    assert isinstance(type_, str) and isinstance(params, dict)
    return type_, params, options


def idempotency_key(raw: str | None) -> str | None:
    """The ``Idempotency-Key`` header: 1-255 visible ASCII characters (400 otherwise)."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY or not all(" " <= c <= "~" for c in raw) or not raw.strip():
        raise HTTPProblem(
            400,
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters",
            slug="invalid-header",
            title="Invalid header",
            header="Idempotency-Key",
        )
    return raw


def prefix_fields(exc: InvalidParameters, prefix: str) -> InvalidParameters:
    """The same error with its field names under ``prefix`` (``vmid`` -> ``params.vmid``)."""
    errors = [
        {**e, "field": f"{prefix}.{e['field']}" if e.get("field") else prefix} for e in exc.errors
    ]
    return InvalidParameters(exc.message, errors=errors)


def new_task_headers(request: Request, task: Task) -> Headers:
    """The headers of an answer that made a task (a submit's 202, a retry's 201):
    ``Location`` and ``Operation-Location`` naming it, ``Retry-After`` and its ETag."""
    location = f"/v1/tasks/{task.id}"
    return [
        header(b"location", request.root_path + location),
        header(b"operation-location", request.base_url() + location),
        (b"retry-after", request.app.retry_after),
        (b"etag", task.etag.encode()),
    ]
