-- taskgate schema 1: tasks, their logs, workers.
-- Times are REAL epoch seconds (UTC). JSON columns hold text written by orjson.

CREATE TABLE tasks (
    id                   TEXT PRIMARY KEY,          -- UUIDv7, time-ordered
    upid                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    object_id            TEXT,
    tenant               TEXT NOT NULL,
    user_name            TEXT NOT NULL,
    node                 TEXT,
    worker               TEXT,
    state                TEXT NOT NULL,
    detailed_state       TEXT,
    progress             REAL,
    progress_detail      TEXT,
    message              TEXT,
    params               TEXT NOT NULL,
    result               TEXT,
    error                TEXT,
    warnings             INTEGER NOT NULL DEFAULT 0,
    created_resources    TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL DEFAULT 1,
    timeout              REAL,
    retry_on_worker_loss INTEGER NOT NULL DEFAULT 0,
    cancel_requested_at  REAL,
    cancel_attempts      INTEGER NOT NULL DEFAULT 0,
    priority             INTEGER NOT NULL DEFAULT 0,
    idempotency_key      TEXT,
    request_fingerprint  TEXT,                      -- what the idempotency key was used for
    request_id           TEXT,
    group_id             TEXT,
    parent_id            TEXT,
    schedule_id          TEXT,
    labels               TEXT,
    acknowledged_at      REAL,
    acknowledged_by      TEXT,
    created_at           REAL NOT NULL,
    scheduled_at         REAL,
    started_at           REAL,
    updated_at           REAL NOT NULL,
    finished_at          REAL,
    lease_expires_at     REAL,
    due_at               REAL,                      -- set while queued/scheduled: when it may run
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
    task_id TEXT NOT NULL,
    n       INTEGER NOT NULL,                       -- 1-based line number
    ts      REAL NOT NULL,
    level   TEXT NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (task_id, n)
) WITHOUT ROWID;

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    node         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
