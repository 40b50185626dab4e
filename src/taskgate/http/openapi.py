"""The OpenAPI 3.1 document, generated from the route declarations and the App.

Every served route is an `Endpoint`; each one becomes a path item operation with its
parameters, body and responses (plus the ``X-Request-ID`` header every request may send
and every response echoes, and a ``default`` problem response). Each registered
operation also gets its own ``POST /v1/operations/<name>`` path whose request body is
that operation's parameter schema; the generic ``/v1/operations/{type}`` path stays for
clients that build the URL themselves. Pydantic's ``$defs`` are hoisted into
``components/schemas`` so that every ``$ref`` resolves against the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import taskgate
from taskgate.app import App, Operation
from taskgate.http.overview_schemas import OVERVIEW_COMPONENTS
from taskgate.http.routing import Endpoint, Param, Reply
from taskgate.http.schemas import COMPONENTS, HEADERS, REQUEST_ID, Schema, ref

OPENAPI_VERSION = "3.1.0"
SUBMIT_PATH = "/v1/operations/{type}"

TAGS = [
    {"name": "submit", "description": "Start tasks: 202 Accepted with the task."},
    {
        "name": "tasks",
        "description": "Follow, list, cancel, suspend, resume, acknowledge and delete tasks.",
    },
    {
        "name": "groups",
        "description": "Tasks submitted together: a summary, cancel, suspend, resume as one.",
    },
    {"name": "events", "description": "Task changes, live, as Server-Sent Events."},
    {
        "name": "schedules",
        "description": "Named schedules: an operation run on an interval or a cron expression.",
    },
    {"name": "operations", "description": "The registered operations and their parameters."},
    {
        "name": "overview",
        "description": "For a dashboard: who a key is, the workers, counts over time.",
    },
    {"name": "service", "description": "Health, readiness, this document, the docs page."},
    {"name": "dashboard", "description": "The web dashboard's pages and files (HTML for people)."},
]

DESCRIPTION = """\
taskgate's native task API. A long-running call answers **202 Accepted** with the task,
a `Location` to poll and a `Retry-After`; `GET /v1/tasks/{id}?wait=N` holds the request
until the task changes or ends; `GET /v1/events` and `GET /v1/tasks/{id}/log?follow=true`
stream changes and log lines as Server-Sent Events. Errors are RFC 9457 problem documents
(`application/problem+json`). Every GET also answers HEAD.

Send an API key as `Authorization: Bearer <key>` (`taskgate keys create` makes one). A key
sees only its tenant's tasks; a `read` key cannot submit, cancel or delete."""

SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tgk_<id>_<secret>",
        "description": "An API key, bound to a tenant, a user and a role (read, write, admin)",
    }
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def build(endpoints: Iterable[Endpoint], app: App, *, root_path: str = "") -> dict[str, Any]:
    """The whole document."""
    schemas: dict[str, Schema] = {**COMPONENTS, **OVERVIEW_COMPONENTS}
    paths: dict[str, dict[str, Any]] = {}
    submit: Endpoint | None = None
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation_object(endpoint)
        if endpoint.path == SUBMIT_PATH and endpoint.method == "POST":
            submit = endpoint
    if submit is not None:
        for name in sorted(app.operations):
            op = app.operations[name]
            schema_name = _hoist(op, schemas)
            paths[f"/v1/operations/{name}"] = {"post": _submit_object(submit, op, schema_name)}
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"taskgate API ({app.name})",
            "version": taskgate.__version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": root_path or "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{"apiKey": []}],
    }
    return doc


def parameter_object(param: Param) -> dict[str, Any]:
    schema = dict(param.schema)
    if param.repeat:
        schema = {"type": "array", "items": schema}
    obj: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": param.required or param.location == "path",
        "schema": schema,
    }
    if param.repeat:
        obj["style"] = "form"
        obj["explode"] = True
    return obj


def response_object(reply: Reply) -> dict[str, Any]:
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in reply.headers}
    headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
    obj: dict[str, Any] = {"description": reply.description, "headers": headers}
    if reply.schema is not None:
        obj["content"] = {reply.media: {"schema": ref(reply.schema)}}
        for media, schema in reply.also:
            obj["content"][media] = {"schema": ref(schema)}
    return obj


def operation_object(endpoint: Endpoint) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "description": endpoint.description,
        "tags": [endpoint.tag],
        "parameters": [parameter_object(p) for p in (*endpoint.params, REQUEST_ID)],
    }
    if endpoint.public:
        obj["security"] = []  # no key needed
    if endpoint.body is not None:
        obj["requestBody"] = {
            "description": endpoint.body.description,
            "required": endpoint.body.required,
            "content": {"application/json": {"schema": dict(endpoint.body.schema)}},
        }
    responses = {str(status): response_object(r) for status, r in endpoint.responses.items()}
    responses["default"] = {
        "description": "An error, as an RFC 9457 problem document",
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}},
        "content": {"application/problem+json": {"schema": ref("Problem")}},
    }
    obj["responses"] = responses
    return obj


def _submit_object(generic: Endpoint, op: Operation, schema_name: str) -> dict[str, Any]:
    obj = operation_object(generic)
    obj["operationId"] = "submit_" + _UNSAFE.sub("_", op.name)
    obj["summary"] = f"Run {op.name}"
    obj["description"] = op.description or f"Submit a task of operation {op.name}."
    obj["tags"] = ["submit"]
    obj["parameters"] = [p for p in obj["parameters"] if p["in"] != "path"]
    required = bool(op.json_schema().get("required"))
    obj["requestBody"] = {
        "description": f"The parameters of {op.name}"
        + ("" if required else "; no body means no parameters"),
        "required": required,
        "content": {"application/json": {"schema": ref(schema_name)}},
    }
    # Only the operation's own 404 (no such operation) cannot happen on its own path.
    obj["responses"].pop("404", None)
    return obj


def _hoist(op: Operation, schemas: dict[str, Schema]) -> str:
    """Put ``op``'s parameter schema and its ``$defs`` into components; its name."""
    schema = op.json_schema()
    defs: Mapping[str, Schema] = schema.pop("$defs", {})
    safe = _UNSAFE.sub("_", op.name)
    root = f"OperationParams.{safe}"
    targets = {"#": f"#/components/schemas/{root}"}
    for name in defs:
        targets[f"#/$defs/{name}"] = (
            f"#/components/schemas/OperationParamsDef.{safe}.{_UNSAFE.sub('_', name)}"
        )
    schemas[root] = _retarget(schema, targets)
    for name, definition in defs.items():
        target = targets[f"#/$defs/{name}"].rsplit("/", 1)[1]
        schemas[target] = _retarget(definition, targets)
    return root


def _retarget(value: Any, targets: Mapping[str, str]) -> Any:
    """``value`` with every local ``$ref`` pointed at its hoisted component."""
    if isinstance(value, dict):
        out = {k: _retarget(v, targets) for k, v in value.items()}
        target = out.get("$ref")
        if isinstance(target, str) and target in targets:
            out["$ref"] = targets[target]
        return out
    if isinstance(value, list):
        return [_retarget(v, targets) for v in value]
    return value
