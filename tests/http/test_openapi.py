"""The OpenAPI document: structurally valid 3.1, complete and true for every route, and
real responses conform to the schemas it declares."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from api_helpers import claim, submit
from schema_check import errors, refs, resolve

from taskgate.http import Application
from taskgate.http.routing import path_params
from taskgate.http.schemas import SUBMIT_OPTIONS
from taskgate.http.submission import QUERY_OPTIONS
from taskgate.model import ErrorInfo, State
from taskgate.service import NewLogLine, Submission, TaskService

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}
BIG = b"x" * 4096
SAMPLE = {"id": "01900000-0000-7000-8000-000000000000", "type": "noop", "name": "app.js"}


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_the_document_is_structurally_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"]
    for ref in refs(doc):
        resolve(doc, ref)  # every $ref resolves (KeyError otherwise)
    for name in doc["components"]["schemas"]:
        assert re.match(r"^[a-zA-Z0-9.\-_]+$", name), name  # OpenAPI's component names
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    tags = {t["name"] for t in doc["tags"]}
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert path.startswith("/"), where
        assert op["responses"], where
        assert op["tags"][0] in tags, where
        for status, response in op["responses"].items():
            assert status == "default" or re.match(r"^[1-5][0-9][0-9]$", status), where
            assert response["description"], where
        names = [(p["name"], p["in"]) for p in op.get("parameters", [])]
        assert len(names) == len(set(names)), f"{where}: duplicate parameters"
        for p in op.get("parameters", []):
            assert p["in"] in {"path", "query", "header", "cookie"}, where
            assert "schema" in p, where
        templated = set(path_params(path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert templated == declared, where
        for p in op.get("parameters", []):
            if p["in"] == "path":
                assert p["required"] is True, where
        if "requestBody" in op:
            assert op["requestBody"]["content"], where


def test_every_served_route_is_documented_and_every_documented_route_served(
    doc: dict[str, Any], api: Application
) -> None:
    documented = {(path, method.upper()) for path, method, _ in operations(doc)}
    served = {(e.path, e.method) for e in api.router.endpoints}
    assert served <= documented, served - documented
    operation_paths = {f"/v1/operations/{name}" for name in api.service.app.operations}
    for path, method in documented:
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
        endpoint, _ = api.router.resolve(method, concrete)
        assert endpoint.method == method
        if endpoint.path != path:  # a registered operation's own submit path
            assert path in operation_paths and endpoint.path == "/v1/operations/{type}"
    assert {p for p, _ in documented} - {p for p, _ in served} == operation_paths


def test_documented_parameters_are_the_accepted_ones(doc: dict[str, Any], api: Application) -> None:
    for endpoint in api.router.endpoints:
        op = doc["paths"][endpoint.path][endpoint.method.lower()]
        query = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert query == endpoint.query_names, endpoint.path
        assert endpoint.name == op["operationId"]
        endpoint.check_query({name: ["x"] for name in query})  # all accepted
        documented = {int(s) for s in op["responses"] if s != "default"}
        assert documented == set(endpoint.responses)
    assert {p.name for p in SUBMIT_OPTIONS} == set(QUERY_OPTIONS)


def test_each_operation_has_its_own_path_with_its_parameter_schema(
    doc: dict[str, Any], api: Application
) -> None:
    for name, operation in api.service.app.operations.items():
        op = doc["paths"][f"/v1/operations/{name}"]["post"]
        schema = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        expected = operation.json_schema()
        assert set(schema.get("properties", {})) == set(expected.get("properties", {}))
        assert op["requestBody"]["required"] is bool(expected.get("required"))
        assert "404" not in op["responses"]
        assert {p["name"] for p in op["parameters"] if p["in"] == "path"} == set()
    # a model's $defs are hoisted: Disk is a component, reached from the volume schema
    volume = doc["components"]["schemas"]["OperationParams.create.volume"]
    disk_ref = volume["properties"]["disks"]["items"]["$ref"]
    assert resolve(doc, disk_ref)["properties"]["size_gb"]["minimum"] == 1
    assert "$defs" not in volume


async def test_responses_conform_to_the_declared_schemas(
    client: httpx.AsyncClient, service: TaskService, doc: dict[str, Any]
) -> None:
    """Every answer below must be declared for its route, and match its schema."""
    queued = await submit(client, "echo", {"name": "n"}, label="a=b")
    failed = await submit(client, "add", {"a": 1, "b": 2})
    running = await claim(service, failed["id"])
    await service.append_log(running.id, [NewLogLine("hello"), NewLogLine("oops", "error")])
    await service.finish(running, State.FAILED, error=ErrorInfo("E", "bad", "tb"))
    group, _ = await service.submit_group([("noop", {}, Submission(exclusive_resources=["r"]))])
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("get", "/", "/", {}),
        ("get", "/v1", "/v1", {}),
        ("get", "/healthz", "/healthz", {}),
        ("get", "/readyz", "/readyz", {}),
        ("get", "/v1/operations", "/v1/operations", {}),
        ("get", "/openapi.json", "/openapi.json", {}),
        ("get", f"/v1/tasks/{queued['id']}", "/v1/tasks/{id}", {}),
        ("get", f"/v1/tasks/{failed['id']}", "/v1/tasks/{id}", {}),
        ("get", f"/v1/tasks/{failed['id']}?wait=1", "/v1/tasks/{id}", {}),
        ("get", "/v1/tasks/nope", "/v1/tasks/{id}", {}),
        ("get", f"/v1/tasks/{SAMPLE['id']}", "/v1/tasks/{id}", {}),
        ("get", "/v1/tasks?limit=1", "/v1/tasks", {}),
        ("get", "/v1/tasks?state=nope", "/v1/tasks", {}),
        ("get", f"/v1/tasks/{failed['id']}/log", "/v1/tasks/{id}/log", {}),
        ("post", "/v1/operations/echo", "/v1/operations/echo", {"json": {"name": "x"}}),
        ("post", "/v1/operations/echo", "/v1/operations/echo", {"json": {"nme": "x"}}),
        ("post", "/v1/operations/nope", "/v1/operations/{type}", {"json": {}}),
        ("post", "/v1/operations/noop", "/v1/operations/noop", {"content": BIG, "headers": JSON}),
        ("post", "/v1/tasks", "/v1/tasks", {"json": {"type": "noop"}}),
        ("post", "/v1/tasks", "/v1/tasks", {"json": {"type": 1}}),
        ("post", "/v1/tasks", "/v1/tasks", {"content": b"{", "headers": JSON}),
        ("post", "/v1/tasks", "/v1/tasks", {"content": b"{}", "headers": TEXT}),
        ("post", f"/v1/tasks/{queued['id']}/suspend", "/v1/tasks/{id}/suspend", {}),
        ("post", f"/v1/tasks/{queued['id']}/suspend", "/v1/tasks/{id}/suspend", {}),
        ("post", f"/v1/tasks/{queued['id']}/resume", "/v1/tasks/{id}/resume", {}),
        ("post", "/v1/groups", "/v1/groups", {"json": {"tasks": [{"type": "noop"}]}}),
        ("post", "/v1/groups", "/v1/groups", {"json": {"tasks": []}}),
        ("get", f"/v1/groups/{group}", "/v1/groups/{id}", {}),
        ("get", "/v1/groups/nope", "/v1/groups/{id}", {}),
        ("post", f"/v1/groups/{group}/suspend", "/v1/groups/{id}/suspend", {}),
        ("post", f"/v1/groups/{group}/resume", "/v1/groups/{id}/resume", {}),
        ("post", f"/v1/groups/{group}/cancel", "/v1/groups/{id}/cancel", {}),
        ("get", "/v1/tasks?archived=any&limit=1", "/v1/tasks", {}),
        ("post", f"/v1/tasks/{queued['id']}/cancel", "/v1/tasks/{id}/cancel", {}),
        ("post", f"/v1/tasks/{failed['id']}/cancel", "/v1/tasks/{id}/cancel", {}),
        ("get", f"/v1/tasks/{failed['id']}/log?follow=true", "/v1/tasks/{id}/log", {}),
        ("get", "/v1/events?state=nope", "/v1/events", {}),
        ("get", f"/v1/events?task_id={SAMPLE['id']}", "/v1/events", {}),
        ("post", f"/v1/tasks/{failed['id']}/acknowledge", "/v1/tasks/{id}/acknowledge", {}),
        ("post", "/v1/tasks/acknowledge", "/v1/tasks/acknowledge", {"json": {"state": ["failed"]}}),
        ("post", "/v1/tasks/acknowledge", "/v1/tasks/acknowledge", {"json": {"ids": 1}}),
        ("get", "/v1/whoami", "/v1/whoami", {}),
        ("get", "/v1/workers", "/v1/workers", {}),
        ("get", "/v1/stats?window=600&buckets=10", "/v1/stats", {}),
        ("get", "/v1/stats?window=0", "/v1/stats", {}),
        ("post", f"/v1/tasks/{failed['id']}/retry", "/v1/tasks/{id}/retry", {}),
        ("post", f"/v1/tasks/{queued['id']}/retry", "/v1/tasks/{id}/retry", {}),
        # the failed task by its id, and its retry by its label retry_of
        ("get", f"/v1/tasks?q={failed['id']}&archived=any&limit=1", "/v1/tasks", {}),
        ("delete", f"/v1/tasks/{failed['id']}", "/v1/tasks/{id}", {}),
        ("delete", f"/v1/tasks/{failed['id']}", "/v1/tasks/{id}", {}),
    ]  # fmt: skip
    seen_statuses = set()
    for method, url, path, options in calls:
        response = await client.request(method.upper(), url, **options)
        declared = doc["paths"][path][method]["responses"]
        status = str(response.status_code)
        seen_statuses.add(response.status_code)
        assert status in declared, f"{method} {url}: {status} is not declared"
        spec = declared[status]
        for name in spec.get("headers", {}):
            if name not in ("Retry-After", "Idempotency-Replayed"):  # sent when they apply
                assert name.lower() in response.headers, f"{method} {url}: no {name}"
        content = spec.get("content")
        if not content:
            assert response.content == b"", f"{method} {url}"
            continue
        media = response.headers["content-type"].split(";")[0]
        assert media in content, f"{method} {url}: {media}"
        if media.endswith("json"):
            problems = errors(doc, content[media]["schema"], response.json())
            assert not problems, f"{method} {url}: {problems}"
    assert {200, 201, 202, 204, 400, 403, 404, 409, 413, 415, 422} <= seen_statuses
