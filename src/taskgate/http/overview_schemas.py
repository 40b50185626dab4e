"""JSON Schemas of the dashboard's own shapes (`taskgate.http.overview`): who a key is,
the workers, the overview. `taskgate.http.openapi` adds them to ``components/schemas``
beside `taskgate.http.schemas.COMPONENTS`."""

from __future__ import annotations

from taskgate.http.schemas import INTEGER, NUMBER, STRING, TIME, UUID, Schema, nullable, obj, ref
from taskgate.model import State
from taskgate.overview import ENDINGS

COUNT: Schema = {**INTEGER, "minimum": 0}

WHOAMI: Schema = obj(
    {
        "tenant": STRING,
        "user": STRING,
        "role": {"type": "string", "enum": ["read", "write", "admin"]},
        "key_id": nullable({**STRING, "description": "The key's public id (null: no key)"}),
        "auth": {
            "type": "boolean",
            "description": "false: the server runs without keys (everyone is an admin)",
        },
    },
    description="Who requests with this key act as.",
)

WORKER: Schema = obj(
    {
        "id": STRING,
        "node": STRING,
        "pid": INTEGER,
        "concurrency": {**INTEGER, "minimum": 0},
        "started_at": TIME,
        "heartbeat_at": TIME,
        "heartbeat_age": {**NUMBER, "minimum": 0, "description": "Seconds since it"},
        "running": {**COUNT, "description": "Its tasks running or canceling now"},
        "alive": {
            "type": "boolean",
            "description": "Its last heartbeat is at most a lease old",
        },
    },
    description="A worker process, as the store knows it.",
)

WORKER_LIST: Schema = obj(
    {"items": {"type": "array", "items": ref("Worker")}},
    description="Every worker, by node then id.",
)

STATS: Schema = obj(
    {
        "states": obj(
            {s.value: COUNT for s in State},
            description="Tasks in the hot table per state (every state, 0 for none)",
        ),
        "queue_depth": {**COUNT, "description": "Tasks due and waiting for a worker"},
        "oldest_waiting": nullable(
            obj(
                {
                    "id": UUID,
                    "type": STRING,
                    "created_at": TIME,
                    "due_at": TIME,
                    "wait_seconds": {**NUMBER, "minimum": 0},
                },
                description="The task due longest among those waiting",
            )
        ),
        "window": obj(
            {
                "start": TIME,
                "end": TIME,
                "bucket_seconds": {**INTEGER, "minimum": 1},
            },
            description="What series covers: [start, end), in buckets of bucket_seconds",
        ),
        "series": {
            "type": "array",
            "description": "Per bucket, oldest first: the tasks that ended in it, per ending",
            "items": obj(
                {"start": TIME, **{s.value: COUNT for s in ENDINGS}},
                description="Tasks that ended in [start, start + bucket_seconds)",
            ),
        },
    },
    description="An overview of the tasks: states, the queue, endings over time.",
)

OVERVIEW_COMPONENTS: dict[str, Schema] = {
    "Whoami": WHOAMI,
    "Worker": WORKER,
    "WorkerList": WORKER_LIST,
    "Stats": STATS,
}
