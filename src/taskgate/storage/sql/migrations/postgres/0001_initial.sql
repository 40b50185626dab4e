-- taskgate schema 1 (PostgreSQL): tasks, their logs, workers.
-- The same tables, columns (in the same order) and indexes as sqlite/0001_initial.sql:
-- times are double precision epoch seconds (UTC), JSON columns hold text written by
-- orjson, flags are integers, so rows look like SQLite's and storage/rows.py reads both.
-- Ids sort bytewise (COLLATE "C"), as in SQLite: lists page by id.

CREATE TABLE tasks (
    id                   TEXT COLLATE "C" PRIMARY KEY, -- UUIDv7, time-ordered
    upid                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    object_id            TEXT,
    tenant               TEXT NOT NULL,
    user_name            TEXT NOT NULL,
    node                 TEXT,
    worker               TEXT,
    state                TEXT NOT NULL,
    detailed_state       TEXT,
    progress             DOUBLE PRECISION,
    progress_detail      TEXT,
    message              TEXT,
    params               TEXT NOT NULL,
    result               TEXT,
    error                TEXT,
    warnings             INTEGER NOT NULL DEFAULT 0,
    created_resources    TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL DEFAULT 1,
    timeout              DOUBLE PRECISION,
    retry_on_worker_loss INTEGER NOT NULL DEFAULT 0,
    cancel_requested_at  DOUBLE PRECISION,
    cancel_attempts      INTEGER NOT NULL DEFAULT 0,
    priority             INTEGER NOT NULL DEFAULT 0,
    idempotency_key      TEXT,
    request_fingerprint  TEXT,                      -- what the idempotency key was used for
    request_id           TEXT,
    group_id             TEXT,
    parent_id            TEXT,
    schedule_id          TEXT,
    labels               TEXT,
    acknowledged_at      DOUBLE PRECISION,
    acknowledged_by      TEXT,
    created_at           DOUBLE PRECISION NOT NULL,
    scheduled_at         DOUBLE PRECISION,
    started_at           DOUBLE PRECISION,
    updated_at           DOUBLE PRECISION NOT NULL,
    finished_at          DOUBLE PRECISION,
    lease_expires_at     DOUBLE PRECISION,
    due_at               DOUBLE PRECISION,          -- set while queued/scheduled: when it may run
    archived             INTEGER NOT NULL DEFAULT 0,
    log_count            INTEGER NOT NULL DEFAULT 0,
    version              INTEGER NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX tasks_upid ON tasks (upid);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- what workers claim: due tasks, highest priority first, oldest first
CREATE INDEX tasks_due ON tasks (priority DESC, due_at) WHERE state IN ('queued', 'scheduled');
-- what the reaper and heartbeats touch
CREATE INDEX tasks_leases ON tasks (worker, lease_expires_at)
    WHERE state IN ('running', 'canceling');
-- lists, newest first
CREATE INDEX tasks_tenant ON tasks (tenant, id);
CREATE INDEX tasks_state ON tasks (state, id);
CREATE INDEX tasks_type ON tasks (type, id);
CREATE INDEX tasks_object ON tasks (object_id, id) WHERE object_id IS NOT NULL;
CREATE INDEX tasks_group ON tasks (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE task_logs (
    task_id TEXT COLLATE "C" NOT NULL,
    n       INTEGER NOT NULL,                       -- 1-based line number
    ts      DOUBLE PRECISION NOT NULL,
    level   TEXT NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (task_id, n)
);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    node         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);
