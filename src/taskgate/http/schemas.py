"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the native API's shapes, and
the response and parameter declarations the endpoints share.

``representation.py`` builds these shapes; the tests validate real responses against
the schemas here, so the document cannot drift from what is served.
"""

from __future__ import annotations

from typing import Any

from taskgate.app import MAX_RESOURCE, MAX_RESOURCES
from taskgate.groups import GROUP_ID, MAX_GROUP_SUBMIT
from taskgate.http.routing import Param, Reply
from taskgate.http.submission import MAX_ATTEMPTS, MAX_KEY, MAX_OBJECT_ID
from taskgate.model import LOG_LEVELS, State

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "type" in schema and isinstance(schema["type"], str):
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
TIME: Schema = {"type": "string", "format": "date-time"}
UUID: Schema = {"type": "string", "format": "uuid"}
OBJECT: Schema = {"type": "object"}
LABELS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}


def obj(properties: dict[str, Schema], *, description: str, extra: bool = False) -> Schema:
    """A closed object whose every property is required (nullable ones may be null)."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": extra,
    }


TASK: Schema = obj(
    {
        "id": {**UUID, "description": "UUIDv7: time-ordered"},
        "upid": {**STRING, "description": "Proxmox-format task id, assigned at submit"},
        "type": {**STRING, "description": "The operation's name"},
        "object_id": nullable({**STRING, "description": "What the task acts on"}),
        "tenant": STRING,
        "user": STRING,
        "user_id": nullable({**INTEGER, "description": "The submitting user's numeric id"}),
        "node": nullable({**STRING, "description": "The node that accepted the task"}),
        "worker": nullable({**STRING, "description": "The worker running or that ran it"}),
        "state": {"type": "string", "enum": [s.value for s in State]},
        "detailed_state": nullable(STRING),
        "progress": nullable({"type": "number", "minimum": 0, "maximum": 100}),
        "progress_detail": nullable(OBJECT),
        "message": nullable(STRING),
        "params": OBJECT,
        "result": {"description": "The handler's return value (any JSON), once succeeded"},
        "error": nullable(ref("TaskError")),
        "warnings": {**INTEGER, "minimum": 0},
        "created_resources": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": STRING},
        },
        "attempt": {**INTEGER, "minimum": 0},
        "max_attempts": {**INTEGER, "minimum": 1},
        "timeout": nullable({**NUMBER, "description": "Seconds"}),
        "cancel_requested_at": nullable(TIME),
        "cancel_attempts": {**INTEGER, "minimum": 0},
        "priority": INTEGER,
        "idempotency_key": nullable(STRING),
        "request_id": nullable(STRING),
        "group_id": nullable(STRING),
        "parent_id": nullable(STRING),
        "schedule_id": nullable(STRING),
        "children": {
            "type": "array",
            "items": UUID,
            "description": "The tasks its handler spawned, in spawn order",
        },
        "labels": LABELS,
        "reserved_resources": nullable(ref("Reservation")),
        "acknowledged_at": nullable(TIME),
        "acknowledged_by": nullable(STRING),
        "created_at": TIME,
        "scheduled_at": nullable(TIME),
        "started_at": nullable(TIME),
        "updated_at": TIME,
        "finished_at": nullable(TIME),
        "archived": {
            "type": "boolean",
            "description": "In history: ended, moved out of the hot table after its period",
        },
        "log_count": {**INTEGER, "minimum": 0},
    },
    description="A task: one run of an operation, from submit to its end.",
)

RESOURCE_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_RESOURCE}
RESERVATION: Schema = obj(
    {
        "exclusive": {
            "type": "array",
            "items": RESOURCE_NAME,
            "description": "Held alone while the task runs",
        },
        "shared": {
            "type": "array",
            "items": RESOURCE_NAME,
            "description": "Held beside other sharers, never beside an exclusive holder",
        },
        "limits": {
            "type": "array",
            "items": obj(
                {"key": STRING, "max": {**INTEGER, "minimum": 1}},
                description="At most max tasks holding key run at once",
            ),
        },
    },
    description="What a task reserves while it runs: resources and places under limits.",
)

TASK_ERROR: Schema = obj(
    {"type": STRING, "message": STRING, "traceback": nullable(STRING)},
    description="Why a task failed.",
)

TASK_LIST: Schema = obj(
    {
        "items": {"type": "array", "items": ref("Task")},
        "next_cursor": nullable({**STRING, "description": "Pass as ?cursor= for the next page"}),
    },
    description="A page of tasks, newest first.",
)

LOG_LINE: Schema = obj(
    {
        "n": {**INTEGER, "minimum": 1, "description": "Line number, from 1"},
        "t": STRING,
        "ts": TIME,
        "level": {"type": "string", "enum": list(LOG_LEVELS)},
    },
    description="One log line.",
)

LOG_PAGE: Schema = obj(
    {
        "task_id": UUID,
        "start": {**INTEGER, "minimum": 0},
        "total": {**INTEGER, "minimum": 0, "description": "Lines the log holds"},
        "lines": {"type": "array", "items": ref("LogLine")},
    },
    description="Lines start+1 .. start+limit of a task's log.",
)

OPERATION: Schema = obj(
    {
        "name": STRING,
        "description": nullable(STRING),
        "parameters": {**OBJECT, "description": "JSON Schema of the parameters object"},
        "timeout": nullable(NUMBER),
        "max_attempts": {**INTEGER, "minimum": 1},
        "retry_on_worker_loss": {"type": "boolean"},
        "isolation": {"type": "string", "enum": ["thread", "async", "process"]},
        "priority": INTEGER,
        "exclusive": {
            "type": "array",
            "items": STRING,
            "description": "Resources its tasks hold alone: templates over the task",
        },
        "shared": {"type": "array", "items": STRING, "description": "Resources held shared"},
        "limits": {
            "type": "array",
            "items": obj(
                {
                    "name": STRING,
                    "max": {**INTEGER, "minimum": 1},
                    "per": nullable({**STRING, "description": "A template splitting it"}),
                },
                description="At most max tasks under it at once (per value of per)",
            ),
        },
        "archive_after": nullable(
            {**NUMBER, "description": "Seconds an ended task stays in the hot table; null: ever"}
        ),
        "purge_after": nullable(
            {**NUMBER, "description": "Seconds after its end a task is deleted; null: never"}
        ),
    },
    description="A registered operation.",
)

OPERATION_LIST: Schema = obj(
    {"items": {"type": "array", "items": ref("Operation")}},
    description="The registered operations.",
)

TASK_OPTIONS: dict[str, Schema] = {
    "object_id": {
        "type": ["string", "integer", "null"],
        "description": "What the task acts on (default: the operation's object_id parameter)",
    },
    "priority": nullable({**INTEGER, "description": "Higher runs first"}),
    "labels": nullable(LABELS),
    "delay": nullable({**NUMBER, "minimum": 0, "description": "Seconds before it is due"}),
    "scheduled_at": nullable({**TIME, "description": "When it is due (not with delay)"}),
    "timeout": nullable({**NUMBER, "exclusiveMinimum": 0, "description": "Seconds"}),
    "max_attempts": nullable({**INTEGER, "minimum": 1, "maximum": MAX_ATTEMPTS}),
    "group_id": nullable(
        {
            "type": "string",
            "pattern": f"^{GROUP_ID.pattern}$",
            "description": "The group (job) the task joins",
        }
    ),
    "exclusive_resources": nullable(
        {
            "type": "array",
            "items": RESOURCE_NAME,
            "maxItems": MAX_RESOURCES,
            "description": "Resources it holds alone, besides its operation's",
        }
    ),
    "shared_resources": nullable(
        {
            "type": "array",
            "items": RESOURCE_NAME,
            "maxItems": MAX_RESOURCES,
            "description": "Resources it holds shared, besides its operation's",
        }
    ),
}

SUBMIT_TASK: Schema = {
    "type": "object",
    "description": "A task to submit: an operation, its parameters, and task options.",
    "properties": {
        "type": {**STRING, "description": "The operation's name"},
        "params": nullable({**OBJECT, "description": "The operation's parameters"}),
        **TASK_OPTIONS,
    },
    "required": ["type"],
    "additionalProperties": False,
}

FIELD_ERROR: Schema = {
    "type": "object",
    "properties": {
        "field": nullable({**STRING, "description": "Dotted path of the field; null: body"}),
        "message": STRING,
        "type": STRING,
    },
    "required": ["field", "message"],
}

PROBLEM: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {**STRING, "format": "uri-reference"},
        "title": STRING,
        "status": {**INTEGER, "minimum": 400, "maximum": 599},
        "detail": STRING,
        "instance": {**STRING, "format": "uri-reference"},
        "request_id": STRING,
        "errors": {"type": "array", "items": ref("FieldError")},
    },
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": True,
}

STATUS: Schema = obj(
    {"status": {"type": "string", "enum": ["ok", "ready"]}},
    description="A health answer.",
)

INDEX: Schema = obj(
    {
        "name": STRING,
        "version": STRING,
        "api": STRING,
        "docs": STRING,
        "openapi": STRING,
        "health": STRING,
    },
    description="Where things are.",
)

V1_INDEX: Schema = obj(
    {"tasks": STRING, "operations": STRING},
    description="The collections of API v1.",
)

HTML_PAGE: Schema = {"type": "string", "description": "An HTML page."}
METRICS_TEXT: Schema = {
    "type": "string",
    "description": "Metrics in Prometheus's text exposition format.",
}

OPENAPI_DOCUMENT: Schema = {
    "type": "object",
    "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0).",
    "required": ["openapi", "info", "paths"],
}

TASK_EVENT: Schema = obj(
    {
        "id": UUID,
        "type": STRING,
        "state": {"type": "string", "enum": [s.value for s in State]},
        "progress": nullable({"type": "number", "minimum": 0, "maximum": 100}),
        "message": nullable(STRING),
        "detailed_state": nullable(STRING),
        "updated_at": TIME,
        "version": {
            **INTEGER,
            "minimum": 1,
            "description": "Raised by every change: a repeated event has the same one",
        },
    },
    description="The data of an `event: task` of GET /v1/events: a task as it is after a change.",
)

TASK_EVENT_STREAM: Schema = {
    "type": "string",
    "description": "Server-Sent Events. Each change is `id: <opaque position>`, `event: task`,"
    " `data: <TaskEvent JSON>`; a comment line `: keep-alive` comes every 15 s of silence."
    " Send the last id back as Last-Event-ID to resume.",
}

LOG_EVENT_STREAM: Schema = {
    "type": "string",
    "description": "Server-Sent Events. Each log line is `id: <n>`, `event: line`,"
    " `data: <LogLine JSON>`; once the task has ended and every line is sent, `event: end`"
    " with `data: <Task JSON>` closes the stream. A comment line `: keep-alive` comes every"
    " 15 s of silence. Send the last id back as Last-Event-ID to resume after that line.",
}

ACKNOWLEDGE_TASKS: Schema = {
    "type": "object",
    "description": "Which tasks to acknowledge: those of `ids`, or those in a `state` and of"
    " a `type` (each a list; empty or absent: any). `{}` acknowledges every task of the"
    " tenant not acknowledged yet.",
    "properties": {
        "ids": {"type": "array", "items": UUID, "maxItems": 1000},
        "state": {"type": "array", "items": {"type": "string", "enum": [s.value for s in State]}},
        "type": {"type": "array", "items": STRING},
    },
    "additionalProperties": False,
}

ACKNOWLEDGED: Schema = obj(
    {"acknowledged": {**INTEGER, "minimum": 0, "description": "Tasks acknowledged now"}},
    description="How many tasks this request acknowledged (those acknowledged before do"
    " not count).",
)

SCHEDULE_FIELDS: dict[str, Schema] = {
    "params": {**OBJECT, "description": "The operation's parameters for every run"},
    "recurrence": {
        **STRING,
        "description": "An ISO 8601 repeating interval (R5/2026-01-01T00:00:00Z/PT1H, PT10M)"
        " or a cron expression (5 fields or @hourly, @daily, ...)",
    },
    "timezone": {**STRING, "description": "IANA time zone a cron expression runs in"},
    "enabled": {"type": "boolean"},
    "overlap": {
        "type": "string",
        "enum": ["skip", "queue"],
        "description": "A run due while the last one goes: skip it, or run it after",
    },
    "failure_threshold": nullable(
        {**INTEGER, "minimum": 1, "description": "Disable after this many failures in a row"}
    ),
    "schedule_threshold": nullable(
        {**NUMBER, "minimum": 0, "description": "Seconds late before a run logs that it is"}
    ),
    "options": {
        "type": "object",
        "description": "Task options for every run",
        "properties": {
            "object_id": STRING,
            "priority": INTEGER,
            "labels": LABELS,
            "timeout": {**NUMBER, "exclusiveMinimum": 0},
            "max_attempts": {**INTEGER, "minimum": 1},
        },
        "additionalProperties": False,
    },
}
SCHEDULE: Schema = obj(
    {
        "id": UUID,
        "name": STRING,
        "tenant": STRING,
        "user": {**STRING, "description": "Who created it; its runs are theirs"},
        "type": {**STRING, "description": "The operation it runs"},
        **SCHEDULE_FIELDS,
        "consecutive_failures": {**INTEGER, "minimum": 0},
        "total_run_count": {**INTEGER, "minimum": 0},
        "remaining_runs": nullable({**INTEGER, "description": "Runs still to come; null: no end"}),
        "first_run": nullable(TIME),
        "next_run": nullable({**TIME, "description": "null: disabled, or no run left"}),
        "last_run_at": nullable(TIME),
        "last_task_id": nullable(UUID),
        "pending_run": nullable({**TIME, "description": "A run waiting for the last to end"}),
        "disabled_reason": nullable(STRING),
        "created_at": TIME,
        "updated_at": TIME,
        "version": INTEGER,
    },
    description="A named schedule: an operation run with fixed parameters on a recurrence.",
)
NEW_SCHEDULE: Schema = {
    "type": "object",
    "description": "A schedule to create; name, type and recurrence are required.",
    "properties": {
        "name": {**STRING, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"},
        "type": {**STRING, "description": "The operation to run"},
        **SCHEDULE_FIELDS,
    },
    "required": ["name", "type", "recurrence"],
    "additionalProperties": False,
}
SCHEDULE_CHANGES: Schema = {
    "type": "object",
    "description": "The fields to change; the others stay.",
    "properties": SCHEDULE_FIELDS,
    "additionalProperties": False,
}
SCHEDULE_LIST: Schema = obj(
    {
        "items": {"type": "array", "items": ref("Schedule")},
        "next_after": nullable({**STRING, "description": "Pass as ?after= for the next page"}),
    },
    description="A page of schedules, by name.",
)

GROUP: Schema = obj(
    {
        "id": STRING,
        "total": {**INTEGER, "minimum": 1},
        "ended": {"type": "boolean", "description": "Every task of the group has ended"},
        "states": {
            "type": "object",
            "description": "How many of its tasks are in each state",
            "properties": {s.value: {**INTEGER, "minimum": 0} for s in State},
            "required": [s.value for s in State],
            "additionalProperties": False,
        },
        "tasks": {**STRING, "description": "Where its tasks are listed"},
    },
    description="A group (job): tasks submitted together, and how far they are.",
)
NEW_GROUP: Schema = {
    "type": "object",
    "description": "Tasks to submit as one new group, all or none.",
    "properties": {
        "tasks": {
            "type": "array",
            "items": ref("SubmitTask"),
            "minItems": 1,
            "maxItems": MAX_GROUP_SUBMIT,
        }
    },
    "required": ["tasks"],
    "additionalProperties": False,
}
SUBMITTED_GROUP: Schema = obj(
    {
        "id": STRING,
        "tasks": {"type": "array", "items": ref("Task")},
        "group": {**STRING, "description": "The group's URL, relative"},
    },
    description="A group just submitted: its id and its tasks, in the order given.",
)

COMPONENTS: dict[str, Schema] = {
    "TaskEvent": TASK_EVENT,
    "TaskEventStream": TASK_EVENT_STREAM,
    "LogEventStream": LOG_EVENT_STREAM,
    "AcknowledgeTasks": ACKNOWLEDGE_TASKS,
    "Acknowledged": ACKNOWLEDGED,
    "Purged": obj({"purged": {**INTEGER, "minimum": 0}}, description="Tasks deleted."),
    "Task": TASK,
    "Reservation": RESERVATION,
    "Group": GROUP,
    "NewGroup": NEW_GROUP,
    "SubmittedGroup": SUBMITTED_GROUP,
    "Schedule": SCHEDULE,
    "NewSchedule": NEW_SCHEDULE,
    "ScheduleChanges": SCHEDULE_CHANGES,
    "ScheduleList": SCHEDULE_LIST,
    "TaskError": TASK_ERROR,
    "TaskList": TASK_LIST,
    "LogLine": LOG_LINE,
    "LogPage": LOG_PAGE,
    "Operation": OPERATION,
    "OperationList": OPERATION_LIST,
    "SubmitTask": SUBMIT_TASK,
    "Problem": PROBLEM,
    "FieldError": FIELD_ERROR,
    "Status": STATUS,
    "Index": INDEX,
    "V1Index": V1_INDEX,
    "HtmlPage": HTML_PAGE,
    "MetricsText": METRICS_TEXT,
    "OpenAPIDocument": OPENAPI_DOCUMENT,
}

HEADERS: dict[str, Schema] = {
    "X-Request-ID": {
        "description": "The request's id: the one sent, or one generated",
        "schema": STRING,
    },
    "ETag": {"description": "The task's entity tag; changes whenever it changes", "schema": STRING},
    "Retry-After": {
        "description": "Seconds to wait before polling again (the task is not finished)",
        "schema": INTEGER,
    },
    "Location": {"description": "The task's URL, relative", "schema": STRING},
    "Operation-Location": {"description": "The task's absolute URL", "schema": STRING},
    "Idempotency-Replayed": {
        "description": "true: this Idempotency-Key was seen before; this is the first task",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Link": {"description": 'The next page: <url>; rel="next"', "schema": STRING},
    "Allow": {"description": "The methods the path serves", "schema": STRING},
    "WWW-Authenticate": {
        "description": 'The challenge of a refused key: Bearer realm="taskgate"',
        "schema": STRING,
    },
}


# -- shared declarations -----------------------------------------------------------------


def problem_reply(description: str) -> Reply:
    return Reply(description, "Problem", media="application/problem+json")


BAD_REQUEST = problem_reply("Bad input: a malformed value, header or query parameter")
NOT_FOUND_TASK = problem_reply("No such task (or not visible to this tenant)")
NOT_FOUND_GROUP = problem_reply("No task of this tenant is in this group")
INVALID = problem_reply("The body or its fields are invalid (``errors`` lists them)")
CONFLICT = problem_reply("The task's state does not allow this")
TOO_LARGE = problem_reply("The body is larger than the server accepts")
UNSUPPORTED = problem_reply("The body is not JSON")

TASK_ID = Param("id", "path", UUID, "The task's id", required=True)
LAST_EVENT_ID = Param(
    "Last-Event-ID",
    "header",
    STRING,
    "Resume a stream after this event: the id of the last event received",
)
REQUEST_ID = Param(
    "X-Request-ID",
    "header",
    {"type": "string", "maxLength": 200, "pattern": "^[!-~]+$"},
    "Your id for this request; echoed back, stored on a submitted task",
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
    "Submitting again with the same key returns the first task instead of a new one",
)

SUBMIT_OPTIONS: tuple[Param, ...] = (
    Param(
        "object_id",
        "query",
        {"type": "string", "maxLength": MAX_OBJECT_ID},
        "What the task acts on",
    ),
    Param("priority", "query", INTEGER, "Higher runs first"),
    Param(
        "label",
        "query",
        {"type": "string", "pattern": "^[^=]+=.*$"},
        "A label as key=value; repeat for several",
        repeat=True,
    ),
    Param("delay", "query", {**NUMBER, "minimum": 0}, "Seconds before the task is due"),
    Param("scheduled_at", "query", TIME, "When the task is due (RFC 3339, not with delay)"),
    Param("timeout", "query", {**NUMBER, "exclusiveMinimum": 0}, "Seconds"),
    Param(
        "max_attempts",
        "query",
        {**INTEGER, "minimum": 1, "maximum": MAX_ATTEMPTS},
        "Attempts before the task fails (default: the operation's)",
    ),
    Param(
        "group_id",
        "query",
        {"type": "string", "pattern": f"^{GROUP_ID.pattern}$"},
        "The group (job) the task joins",
    ),
    Param(
        "exclusive_resource",
        "query",
        RESOURCE_NAME,
        "A resource the task holds alone while it runs; repeat for several",
        repeat=True,
    ),
    Param(
        "shared_resource",
        "query",
        RESOURCE_NAME,
        "A resource the task holds shared while it runs; repeat for several",
        repeat=True,
    ),
)

ACCEPTED = Reply(
    "Accepted: the task is stored and will run",
    "Task",
    headers=("Location", "Operation-Location", "Retry-After", "ETag", "Idempotency-Replayed"),
)
