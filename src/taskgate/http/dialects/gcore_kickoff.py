"""Kickoff routes in Gcore's style: create a resource, answer ``{"tasks": ["<id>"]}``.

An app declares one next to its operations::

    from taskgate.http.dialects import gcore_kickoff

    gcore_kickoff.kickoff(
        app, "volumes", "create_volume",
        params=gcore_kickoff.volume_params, show=gcore_kickoff.show_volume,
    )

``resource`` is the collection in the path (the segment after ``/cloud/v1/``) and the
``created_resources`` kind. ``POST /cloud/v1/<resource>/{project_id}/{region_id}`` then
turns Gcore's body into the operation's parameters (``params``; its KeyError, TypeError
or ValueError is a 400) and submits the operation as the key's tenant and user, labelled
``gcore.project_id`` and ``gcore.region_id`` from the path; ``GET
/cloud/v1/<resource>/{project_id}/{region_id}/{id}`` answers the resource (``show``) from
the newest finished task of that operation, project and region whose
``created_resources[<resource>]`` holds the id. So the SDK's ``create_and_poll`` works.
The example app declares ``volumes`` (``create_volume``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskgate.app import App
from taskgate.errors import OperationNotFound
from taskgate.http.responses import CT_JSON, Response
from taskgate.model import State, Task, TaskFilter
from taskgate.service import Submission

if TYPE_CHECKING:
    from taskgate.http.dialects.gcore import Call


@dataclass(frozen=True, slots=True)
class Kickoff:
    """How a Gcore create call starts an operation and shows what it created."""

    resource: str
    """The collection in the path (``volumes``) and the created-resources kind."""
    operation: str
    params: Callable[[Mapping[str, Any]], dict[str, Any]]
    """Gcore's request body → the operation's parameters."""
    show: Callable[[Task, str, int, int], dict[str, Any]]
    """(creating task, resource id, project_id, region_id) → the resource as Gcore shows it."""


_ROUTES: weakref.WeakKeyDictionary[App, dict[str, Kickoff]] = weakref.WeakKeyDictionary()


def kickoff(
    app: App,
    resource: str,
    operation: str,
    *,
    params: Callable[[Mapping[str, Any]], dict[str, Any]],
    show: Callable[[Task, str, int, int], dict[str, Any]],
) -> Kickoff:
    """Declare ``POST /cloud/v1/<resource>/{project_id}/{region_id}`` for ``app``: it
    starts ``operation`` (one kickoff per resource)."""
    declared = Kickoff(resource, operation, params, show)
    _ROUTES.setdefault(app, {})[resource] = declared
    return declared


def routes(app: App) -> dict[str, Kickoff]:
    """The Gcore kickoffs ``app`` declares, by resource."""
    return _ROUTES.get(app, {})


def _path_int(raw: str, name: str) -> int:
    from taskgate.http.dialects.gcore import path_int

    return path_int(raw, name)


def _kickoff(call: Call, resource: str) -> Kickoff:
    from taskgate.http.dialects.gcore import GcoreError

    app = call.request.service.app
    declared = routes(app).get(resource)
    if declared is not None:
        try:
            app.get(declared.operation)
            return declared
        except OperationNotFound:
            pass
    raise GcoreError(404, f"No such endpoint: {call.request.path}")


async def create_route(call: Call) -> Response:
    from taskgate.http.dialects.gcore import GcoreError

    resource, raw_project, raw_region = call.ids
    kickoff = _kickoff(call, resource)
    project = _path_int(raw_project, "Project")
    region = _path_int(raw_region, "Region")
    request = call.request
    body = await request.json_object(required=True) or {}
    try:
        params = kickoff.params(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise GcoreError(400, f"Invalid request body: {exc}") from None
    principal = call.principal
    task, _ = await request.service.submit_one(
        kickoff.operation,
        params,
        Submission(
            tenant=principal.tenant,
            user=principal.user,
            user_id=principal.user_id,
            labels={"gcore.project_id": str(project), "gcore.region_id": str(region)},
            request_id=request.request_id,
        ),
    )
    return Response(200, orjson.dumps({"tasks": [task.id]}), [CT_JSON])


async def resource_route(call: Call) -> Response:
    from taskgate.http.dialects.gcore import GcoreError

    resource, raw_project, raw_region, resource_id = call.ids
    kickoff = _kickoff(call, resource)
    project = _path_int(raw_project, "Project")
    region = _path_int(raw_region, "Region")
    service = call.request.service
    filter = TaskFilter(
        states=(State.SUCCEEDED,),
        types=(kickoff.operation,),
        tenant=call.principal.scope,
        labels=(("gcore.project_id", str(project)), ("gcore.region_id", str(region))),
        archived=None,
    )
    cursor: str | None = None
    while True:  # newest first: a resource just created is found on the first page
        page = await service.list(filter, cursor=cursor, limit=500)
        for task in page.items:
            if resource_id in task.created_resources.get(resource, ()):
                shown = kickoff.show(task, resource_id, project, region)
                return Response(200, orjson.dumps(shown), [CT_JSON])
        cursor = page.next_cursor
        if cursor is None:
            break
    singular = resource.rstrip("s").capitalize()
    raise GcoreError(404, f"{singular} {resource_id} not found")


# -- the example app's volumes ------------------------------------------------------------


def volume_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """Gcore's create-volume body (``source: new-volume``) → ``name``, ``size``,
    ``type_name``."""
    source = body.get("source", "new-volume")
    if source != "new-volume":
        raise ValueError(f"source {source!r} is not supported here; use 'new-volume'")
    params: dict[str, Any] = {"name": body["name"], "size": body["size"]}
    if "type_name" in body:
        params["type_name"] = body["type_name"]
    return params


def show_volume(task: Task, volume_id: str, project: int, region: int) -> dict[str, Any]:
    """Gcore's ``Volume`` of a volume ``task`` created, from its parameters."""
    params = task.params
    created = task.created_at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return {
        "id": volume_id,
        "name": params.get("name"),
        "size": params.get("size"),
        "volume_type": params.get("type_name", "standard"),
        "bootable": False,
        "is_root_volume": False,
        "status": "available",
        "project_id": project,
        "region_id": region,
        "region": f"region-{region}",
        "tags": [],
        "created_at": created,
        "updated_at": None
        if task.finished_at is None
        else task.finished_at.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "creator_task_id": task.id,
        "task_id": None,
        "attachments": [],
        "snapshot_ids": [],
        "volume_image_metadata": {},
        "limiter_stats": None,
    }
