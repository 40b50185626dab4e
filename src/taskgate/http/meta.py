"""The service's own resources: index, health, readiness, operations, OpenAPI, docs."""

from __future__ import annotations

import asyncio

import taskgate
from taskgate.http.problems import HTTPProblem
from taskgate.http.representation import operation_dict
from taskgate.http.request import Request
from taskgate.http.responses import (
    CT_HTML,
    CT_JSON,
    NO_CACHE,
    Response,
    json_response,
)
from taskgate.http.routing import Endpoints, Reply
from taskgate.http.schemas import problem_reply

api = Endpoints("service")
operations_api = Endpoints("operations")

READY_TIMEOUT = 2.0
"""Seconds the store has to answer a readiness read."""


@api.get(
    "/",
    name="index",
    summary="Where things are",
    public=True,
    responses={200: Reply("Links to the API and its docs", "Index")},
)
async def index(request: Request) -> Response:
    """Links to the API, its docs and its OpenAPI document."""
    root = request.root_path
    return json_response(
        {
            "name": "taskgate",
            "version": taskgate.__version__,
            "api": f"{root}/v1",
            "docs": f"{root}/docs",
            "openapi": f"{root}/openapi.json",
            "health": f"{root}/healthz",
        }
    )


@api.get(
    "/v1",
    name="v1Index",
    summary="API v1",
    public=True,
    responses={200: Reply("Links to the collections", "V1Index")},
)
async def v1_index(request: Request) -> Response:
    """The collections of API v1."""
    root = request.root_path
    return json_response({"tasks": f"{root}/v1/tasks", "operations": f"{root}/v1/operations"})


@api.get(
    "/healthz",
    name="health",
    summary="Liveness",
    public=True,
    responses={200: Reply("Alive", "Status")},
)
async def health(request: Request) -> Response:
    """The process is up and answering."""
    return json_response({"status": "ok"})


@api.get(
    "/readyz",
    name="ready",
    summary="Readiness",
    public=True,
    responses={
        200: Reply("Ready: the task store answers", "Status"),
        503: problem_reply("Not ready: the store does not answer, or the server is stopping"),
    },
)
async def ready(request: Request) -> Response:
    """Ready to serve: the server is not shutting down and the task store answers a
    cheap read within a couple of seconds."""
    if request.app.closing:
        raise _not_ready(request, "the server is shutting down")
    try:
        await asyncio.wait_for(request.service.connector.schema_version(), READY_TIMEOUT)
    except TimeoutError:
        raise _not_ready(request, f"the task store did not answer in {READY_TIMEOUT:g} s") from None
    except Exception as exc:
        raise _not_ready(request, f"the task store does not answer ({type(exc).__name__})") from exc
    return json_response({"status": "ready"})


def _not_ready(request: Request, detail: str) -> HTTPProblem:
    return HTTPProblem(
        503,
        detail,
        slug="not-ready",
        title="Not ready",
        headers=[(b"retry-after", request.app.retry_after)],
    )


@operations_api.get(
    "/v1/operations",
    name="listOperations",
    summary="List operations",
    responses={200: Reply("The registered operations", "OperationList")},
)
async def list_operations(request: Request) -> Response:
    """Every registered operation with its options and its parameters' JSON Schema."""
    operations = request.service.app.operations
    items = [operation_dict(operations[n], request.settings) for n in sorted(operations)]
    return json_response({"items": items})


@api.get(
    "/openapi.json",
    name="openapi",
    summary="This API's OpenAPI 3.1 document",
    public=True,
    responses={200: Reply("The document", "OpenAPIDocument")},
)
async def openapi(request: Request) -> Response:
    """This document."""
    return Response(200, request.app.openapi_bytes(request.root_path), [CT_JSON, NO_CACHE])


@api.get(
    "/docs",
    name="docs",
    summary="API documentation page",
    public=True,
    responses={200: Reply("An HTML page rendering this document", "HtmlPage", "text/html")},
)
async def docs(request: Request) -> Response:
    """A page for people, rendering /openapi.json; it needs no network beyond this
    server."""
    return Response(200, request.app.docs_page(), [CT_HTML, NO_CACHE])
