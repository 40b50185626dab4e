-- taskgate schema 6: named schedules. A schedule runs one operation with fixed
-- parameters on an ISO 8601 repeating interval or a cron expression in a time zone;
-- the scheduler (one per store) submits each run as a task carrying schedule_id.

CREATE TABLE schedules (
    id                   TEXT NOT NULL PRIMARY KEY,  -- UUIDv7
    name                 TEXT NOT NULL,              -- unique per tenant
    tenant               TEXT NOT NULL,
    user_name            TEXT NOT NULL,              -- who created it; runs are theirs
    user_id              INTEGER,
    type                 TEXT NOT NULL,              -- the operation
    params               TEXT NOT NULL,              -- JSON, validated when created
    options              TEXT,                       -- JSON: the runs' object_id, priority, ...
    recurrence           TEXT NOT NULL,              -- R5/2026-01-01T00:00:00Z/PT1H or cron
    timezone             TEXT NOT NULL,              -- IANA name; cron runs in it
    enabled              INTEGER NOT NULL DEFAULT 1,
    overlap              TEXT NOT NULL,              -- skip | queue
    failure_threshold    INTEGER,                    -- disable after this many failures in a row
    schedule_threshold   REAL,                       -- seconds late before a run says so
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    total_run_count      INTEGER NOT NULL DEFAULT 0,
    remaining_runs       INTEGER,                    -- NULL: no end
    first_run            REAL,
    next_run             REAL,                       -- NULL: no run left
    last_run_at          REAL,
    last_task_id         TEXT,
    last_task_open       INTEGER NOT NULL DEFAULT 0, -- its outcome is not counted yet
    pending_run          REAL,                       -- overlap=queue: a run waiting for the last
    disabled_reason      TEXT,
    created_at           REAL NOT NULL,
    updated_at           REAL NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX schedules_name ON schedules (tenant, name);
CREATE INDEX schedules_due ON schedules (next_run) WHERE enabled = 1;
CREATE INDEX schedules_open ON schedules (last_task_id) WHERE last_task_open = 1;
CREATE INDEX tasks_schedule ON tasks (schedule_id, id) WHERE schedule_id IS NOT NULL;
