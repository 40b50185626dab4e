"""The task resource: read (with ETag and long-poll wait), list, log, cancel, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from taskgate.errors import InvalidRequest, PermissionDenied, TaskNotFound
from taskgate.http import inputs
from taskgate.http.asgi import Headers
from taskgate.http.cache import Rendered
from taskgate.http.disconnect import UntilDisconnect
from taskgate.http.events import follow_log
from taskgate.http.problems import HTTPProblem, slug_of
from taskgate.http.representation import log_dict, task_dict, task_json
from taskgate.http.request import Request
from taskgate.http.responses import (
    Response,
    empty_response,
    header,
    json_response,
    raw_json_response,
)
from taskgate.http.routing import Endpoints, Param, Reply
from taskgate.http.schemas import (
    BAD_REQUEST,
    CONFLICT,
    INVALID,
    LAST_EVENT_ID,
    NOT_FOUND_TASK,
    STRING,
    TASK_ID,
    TIME,
    UUID,
    problem_reply,
)
from taskgate.http.submission import new_task_headers
from taskgate.ids import parse_task_id
from taskgate.model import Task, TaskFilter
from taskgate.service import MAX_LOG_PAGE, MAX_PAGE, MAX_SEARCH, Submission

api = Endpoints("tasks")

ETAG = b"etag"
RETRY_AFTER = b"retry-after"
DEFAULT_PAGE = 50
DEFAULT_LOG_PAGE = 50
MAX_LOG_START = 2**53

WAIT = Param(
    "wait",
    "query",
    {"type": "number", "exclusiveMinimum": 0},
    "Hold the request up to this many seconds (at most the server's max_wait) until the "
    "task changes or ends. The change is relative to the If-None-Match version if given, "
    "else to the task as it was when the request arrived.",
)
UNTIL = Param(
    "until",
    "query",
    {"type": "string", "enum": ["change", "ended"], "default": "change"},
    "With wait: `change` (the default) answers at the task's next change; `ended` only "
    "once it has ended (or the wait is over), for a client that wants the result.",
)
IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    STRING,
    "An ETag from an earlier answer: 304 if the task is unchanged",
)


def _task_headers(request: Request, task: Task) -> Headers:
    headers: Headers = [(ETAG, task.etag.encode())]
    if not task.terminal:
        headers.append((RETRY_AFTER, request.app.retry_after))
    return headers


async def _current(request: Request, key: str) -> Rendered:
    """The task's rendering: the cached one if the store says it is still current."""
    service = request.service
    tenant = request.principal.scope
    cache = request.app.renderings
    cached = cache.get(key)
    if cached is not None:
        if tenant is not None and cached.tenant != tenant:  # another tenant's task
            raise TaskNotFound(f"no task {key}")
        try:
            version = await service.version(cached.id, tenant=tenant)
        except TaskNotFound:
            cache.discard(key)
            raise
        if version == cached.version:
            return cached
    return cache.put(key, await service.get(key, tenant=tenant))


def tenant_filter(request: Request) -> str | None:
    """Whose tasks a list (or the overview) shows: the principal's tenant, or for an
    admin every tenant unless ``tenant=`` names one."""
    principal = request.principal
    wanted = request.query_one("tenant") if request.scope["query_string"] else None
    if principal.scope is None:
        return wanted
    if wanted is not None and wanted != principal.scope:
        raise HTTPProblem(
            403,
            f"only an admin key may list another tenant's tasks (this key's tenant is"
            f" {principal.scope!r})",
            slug=slug_of(PermissionDenied),
            title=PermissionDenied.title,
        )
    return principal.scope


TENANT_FILTER = Param(
    "tenant",
    "query",
    STRING,
    "Only this tenant's tasks. An admin key sees every tenant unless it gives this;"
    " other keys see only their own tenant (another one is a 403)",
)
"""The ``tenant=`` of the routes whose answer `tenant_filter` scopes."""


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag, or ``*``."""
    if if_none_match.strip() == b"*":
        return True
    for tag in if_none_match.split(b","):
        tag = tag.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _seen_version(if_none_match: bytes | None, task_id: str) -> int | None:
    """The version an If-None-Match names for this task (our ETag: ``"<id tail>.<v>"``)."""
    if if_none_match is None:
        return None
    tail = task_id.lower()[-12:]
    for tag in if_none_match.split(b","):
        text = tag.strip().removeprefix(b"W/").strip(b'"').decode("latin-1")
        prefix, _, version = text.partition(".")
        if prefix.lower() == tail and version.isdigit():
            return int(version)
    return None


async def _wait(request: Request, task_id: str, seconds: float, until_ended: bool) -> Task:
    """`TaskService.wait`, abandoned (`ClientDisconnected`) if the client leaves first.

    The wait runs in the request's own task: thousands of idle long polls cost one
    extra task each (the disconnect watch), not two.
    """
    with UntilDisconnect(request):
        return await request.service.wait(
            task_id,
            seconds,
            tenant=request.principal.scope,
            seen_version=_seen_version(request.headers.get(b"if-none-match"), task_id),
            until_ended=until_ended,
        )


@api.get(
    "/v1/tasks/{id}",
    name="getTask",
    summary="Get a task",
    params=(TASK_ID, WAIT, UNTIL, IF_NONE_MATCH),
    responses={
        200: Reply("The task", "Task", headers=("ETag", "Retry-After")),
        304: Reply("Unchanged since the If-None-Match ETag", headers=("ETag", "Retry-After")),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
    },
)
async def get_task(request: Request) -> Response:
    """The task, with an ETag; ``Retry-After`` while it has not finished.

    With ``?wait=N`` the answer waits up to N seconds for the task to change or end
    (a long poll): send the last ETag as If-None-Match to wait for a change past it; a
    304 then means nothing changed in time.
    """
    task_id = request.path_params["id"]
    raw_wait = request.query_one("wait") if request.scope["query_string"] else None
    if raw_wait is None:
        if request.scope["query_string"] and request.query_one("until") is not None:
            raise inputs.invalid("until", "only means something with wait=N")
        rendered = await _current(request, task_id)
    else:
        seconds = inputs.param("wait", inputs.to_number, raw_wait)
        if not 0 < seconds <= request.settings.max_wait:
            problem = inputs.invalid(
                "wait", f"must be more than 0 and at most {request.settings.max_wait:g} seconds"
            )
            problem.extensions["maximum"] = request.settings.max_wait  # a client adapts to it
            raise problem
        until = request.query_one("until") or "change"
        if until not in ("change", "ended"):
            raise inputs.invalid("until", "must be 'change' or 'ended'")
        waited = await _wait(request, task_id, seconds, until == "ended")
        rendered = request.app.renderings.put(task_id, waited)
    headers: Headers = [(ETAG, rendered.etag)]
    if not rendered.terminal:
        headers.append((RETRY_AFTER, request.app.retry_after))
    if_none_match = request.headers.get(b"if-none-match")
    if if_none_match is not None and _matches(if_none_match, rendered.etag):
        return empty_response(304, headers)
    return raw_json_response(rendered.body, 200, headers)


@api.get(
    "/v1/tasks",
    name="listTasks",
    summary="List tasks",
    params=(
        Param(
            "state",
            "query",
            STRING,
            "Only tasks in these states (repeat, or separate with commas)",
            repeat=True,
        ),
        Param("type", "query", STRING, "Only tasks of these operations", repeat=True),
        Param("object_id", "query", STRING, "Only tasks acting on this object"),
        Param("schedule_id", "query", UUID, "Only the runs of this schedule"),
        Param("group_id", "query", STRING, "Only the tasks of this group"),
        Param("parent_id", "query", UUID, "Only the children of this task"),
        Param("resource", "query", STRING, "Only tasks that reserve this resource"),
        Param(
            "archived",
            "query",
            {"type": "string", "enum": ["false", "true", "any"], "default": "false"},
            "false: tasks in the hot table (the default); true: in history only (ended,"
            " moved after their retention period); any: both",
        ),
        Param("since", "query", TIME, "Created at or after this time (RFC 3339)"),
        Param("until", "query", TIME, "Created before this time (RFC 3339)"),
        Param(
            "label",
            "query",
            {"type": "string", "pattern": "^[^=]+=.*$"},
            "key=value: only tasks with this label (repeat: all of them)",
            repeat=True,
        ),
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
            "Tasks per page",
        ),
        Param(
            "q",
            "query",
            {"type": "string", "maxLength": MAX_SEARCH},
            "Search, by exact match: the task with this id (dashes optional, any case),"
            " tasks acting on this object id, tasks with a label of this value, or with"
            " this key=value label. The other filters narrow what it finds",
        ),
        Param("cursor", "query", STRING, "next_cursor of the previous page"),
        Param(
            "acknowledged",
            "query",
            {"type": "boolean"},
            "true: only acknowledged tasks; false: only tasks not acknowledged yet",
        ),
        TENANT_FILTER,
    ),
    responses={
        200: Reply("A page of tasks, newest first", "TaskList", headers=("Link",)),
        400: BAD_REQUEST,
        403: problem_reply("Not an admin key, and tenant= names another tenant"),
    },
)
async def list_tasks(request: Request) -> Response:
    """Tasks, newest first, a page at a time: follow ``next_cursor`` (or the Link header)
    until it is null.

    ``q`` searches by exact match only, so that a search stays an index lookup however
    many tasks there are: the task whose id it is (with or without dashes, in any case),
    the tasks whose ``object_id`` it is, those with a label whose value it is, and, when
    it holds a ``=``, those with that ``key=value`` label (split at the first ``=``). It
    is trimmed; an empty one searches nothing. It combines with every other filter, the
    cursor and ``archived``."""
    query = request.query
    search = request.query_one("q")
    if search is not None:
        search = search.strip() or None
        if search is not None and len(search) > MAX_SEARCH:
            raise inputs.invalid("q", f"at most {MAX_SEARCH} characters")
    since = request.query_one("since")
    until = request.query_one("until")
    acknowledged = request.query_one("acknowledged")
    parent = request.query_one("parent_id")
    archived = request.query_one("archived")
    if archived not in (None, "false", "true", "any"):
        raise inputs.invalid("archived", "must be false, true or any")
    filter = TaskFilter(
        states=inputs.parse_states("state", query.get("state", ())),
        types=tuple(inputs.split_values("type", query.get("type", ()))),
        object_id=request.query_one("object_id"),
        schedule_id=request.query_one("schedule_id"),
        group_id=request.query_one("group_id"),
        parent_id=None if parent is None else parse_task_id(parent),
        resource=request.query_one("resource"),
        archived=None if archived == "any" else archived == "true",
        q=search,
        tenant=tenant_filter(request),
        created_since=None if since is None else inputs.param("since", inputs.to_time, since),
        created_until=None if until is None else inputs.param("until", inputs.to_time, until),
        labels=tuple(inputs.param("label", inputs.to_label, v) for v in query.get("label", ())),
        acknowledged=None
        if acknowledged is None
        else inputs.param("acknowledged", inputs.to_bool, acknowledged),
    )
    page = await request.service.list(
        filter,
        cursor=request.query_one("cursor"),
        limit=inputs.int_param("limit", request.query_one("limit"), DEFAULT_PAGE, 1, MAX_PAGE),
    )
    headers: Headers = []
    if page.next_cursor is not None:
        pairs = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
        pairs.append(("cursor", page.next_cursor))
        url = f"{request.root_path}/v1/tasks?{urlencode(pairs)}"
        headers.append(header(b"link", f'<{url}>; rel="next"'))
    body: dict[str, Any] = {
        "items": [task_dict(t) for t in page.items],
        "next_cursor": page.next_cursor,
    }
    return json_response(body, headers=headers)


@api.get(
    "/v1/tasks/{id}/log",
    name="getTaskLog",
    summary="Read a task's log",
    params=(
        TASK_ID,
        Param(
            "start",
            "query",
            {"type": "integer", "minimum": 0, "default": 0},
            "Lines to skip: the answer starts at line start+1",
        ),
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_LOG_PAGE, "default": 50},
            "Most lines to return (not with follow)",
        ),
        Param(
            "follow",
            "query",
            {"type": "boolean", "default": False},
            "true: stream the lines as Server-Sent Events, new ones as they come",
        ),
        LAST_EVENT_ID,
    ),
    responses={
        200: Reply(
            "Log lines; with follow=true, a stream of them",
            "LogPage",
            also=(("text/event-stream", "LogEventStream"),),
        ),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
    },
)
async def get_task_log(request: Request) -> Response:
    """Lines ``start+1 .. start+limit`` of the log (``n`` counts from 1), and ``total``.

    With ``follow=true`` the answer is ``text/event-stream``: every line after
    ``start`` as ``id: <n>``, ``event: line``, ``data: <LogLine>``, then new lines as
    the task writes them; once the task has ended and every line is sent, ``event: end``
    with the task as data, and the stream closes. To resume, send the last line's id as
    ``Last-Event-ID`` (it wins over ``start``). A comment ``: keep-alive`` comes after
    15 s of silence.
    """
    raw_follow = request.query_one("follow") if request.scope["query_string"] else None
    if raw_follow is not None and inputs.param("follow", inputs.to_bool, raw_follow):
        return await follow_log(request)
    start = inputs.int_param("start", request.query_one("start"), 0, 0, MAX_LOG_START)
    limit = inputs.int_param("limit", request.query_one("limit"), DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
    task = await request.service.get(request.path_params["id"], tenant=request.principal.scope)
    page = await request.service.log(task.id, start=start, limit=limit)
    return json_response(log_dict(task.id, start, page))


@api.post(
    "/v1/tasks/{id}/cancel",
    name="cancelTask",
    summary="Cancel a task",
    params=(TASK_ID,),
    role="write",
    responses={
        200: Reply(
            "Canceled (it had not started) or canceling (the handler is told to stop)",
            "Task",
            headers=("ETag", "Retry-After"),
        ),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
        409: CONFLICT,
    },
)
async def cancel_task(request: Request) -> Response:
    """A waiting task ends ``canceled`` at once; a running one becomes ``canceling`` and
    its handler is asked to stop. A task that has already ended is a 409."""
    task = await request.service.cancel(request.path_params["id"], tenant=request.principal.scope)
    return raw_json_response(task_json(task), 200, _task_headers(request, task))


@api.post(
    "/v1/tasks/{id}/suspend",
    name="suspendTask",
    summary="Suspend a waiting task",
    params=(TASK_ID,),
    role="write",
    responses={
        200: Reply("Suspended: no worker claims it until it is resumed", "Task"),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
        409: CONFLICT,
    },
)
async def suspend_task(request: Request) -> Response:
    """Hold a queued or scheduled task (Pulp's suspended): it keeps its place in time
    and is never claimed until resumed. A task that has started or ended is a 409."""
    task = await request.service.suspend(request.path_params["id"], tenant=request.principal.scope)
    return raw_json_response(task_json(task), 200, _task_headers(request, task))


@api.post(
    "/v1/tasks/{id}/resume",
    name="resumeTask",
    summary="Resume a suspended task",
    params=(TASK_ID,),
    role="write",
    responses={
        200: Reply("Waiting again: queued, or scheduled until its time", "Task"),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
        409: CONFLICT,
    },
)
async def resume_task(request: Request) -> Response:
    """Let a suspended task wait again. A task that is not suspended is a 409."""
    task = await request.service.resume(request.path_params["id"], tenant=request.principal.scope)
    return raw_json_response(task_json(task), 200, _task_headers(request, task))


@api.post(
    "/v1/tasks/{id}/retry",
    name="retryTask",
    summary="Run an ended task again",
    params=(TASK_ID,),
    role="write",
    responses={
        201: Reply(
            "The new task, stored; it carries the label retry_of",
            "Task",
            headers=("Location", "Operation-Location", "Retry-After", "ETag"),
        ),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
        409: problem_reply("The task has not ended, or it succeeded"),
        422: INVALID,
    },
)
async def retry_task(request: Request) -> Response:
    """Submit a new task that runs this one again: a task that ended ``failed``,
    ``canceled`` or ``timed_out``, in the hot table or in history (anything else is a
    409). The new task has its type, parameters, object id, priority and labels, plus the
    label ``retry_of`` with its id; its tenant, user and request id are this request's,
    as for any submit. Parameters the operation no longer accepts are a 422."""
    principal = request.principal
    options = Submission(
        tenant=principal.tenant,
        user=principal.user,
        user_id=principal.user_id,
        request_id=request.request_id,
    )
    task = await request.service.rerun(request.path_params["id"], options, tenant=principal.scope)
    return raw_json_response(task_json(task), 201, new_task_headers(request, task))


@api.delete(
    "/v1/tasks/{id}",
    name="deleteTask",
    summary="Delete a finished task",
    params=(TASK_ID,),
    role="write",
    responses={
        204: Reply("Deleted, with its log"),
        400: BAD_REQUEST,
        404: NOT_FOUND_TASK,
        409: CONFLICT,
    },
)
async def delete_task(request: Request) -> Response:
    """Delete a task that has ended, and its log. A task still going is a 409."""
    await request.service.delete(request.path_params["id"], tenant=request.principal.scope)
    return empty_response(204)


@api.delete(
    "/v1/tasks",
    name="purgeTasks",
    summary="Purge ended tasks",
    params=(
        Param(
            "state",
            "query",
            STRING,
            "Only tasks that ended in these states (repeat, or separate with commas)",
            repeat=True,
        ),
        Param("type", "query", STRING, "Only tasks of these operations", repeat=True),
        Param("finished_before", "query", TIME, "Only tasks that ended before this time"),
        Param("tenant", "query", STRING, "Only this tenant's tasks (default: every tenant)"),
    ),
    role="admin",
    responses={
        200: Reply("How many tasks were deleted", "Purged"),
        400: BAD_REQUEST,
        403: problem_reply("Not an admin key"),
    },
)
async def purge_tasks(request: Request) -> Response:
    """Delete, with their logs, the ended tasks the filters select; tasks still waiting
    or running are never touched. At least one of ``state`` and ``finished_before`` is
    required (every ended task: ``finished_before=`` now). It goes in short batches, so
    the API and the workers go on meanwhile."""
    query = request.query
    finished = request.query_one("finished_before")
    states = inputs.parse_states("state", query.get("state", ()))
    if not states and finished is None:
        raise HTTPProblem(
            400,
            "give state= or finished_before= (to purge every ended task, finished_before="
            "now); a purge without a filter is refused",
            slug=slug_of(InvalidRequest),
            title=InvalidRequest.title,
        )
    count = await request.service.purge(
        tenant=request.query_one("tenant"),
        states=states,
        types=tuple(inputs.split_values("type", query.get("type", ()))),
        finished_before=None
        if finished is None
        else inputs.param("finished_before", inputs.to_time, finished),
    )
    return json_response({"purged": count})
