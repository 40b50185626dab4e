-- taskgate schema 7: history, reserved resources and limits, children.
--
-- History: finished tasks move from tasks (the hot table, kept small: every claim, list
-- and change touches its indexes) to task_history after a retention period, and are
-- deleted from there after a second one. The columns are the same, in the same order;
-- archived is 1 there. Logs stay in task_logs, keyed by task id, until the purge.
--
-- Reservations: a task may reserve resources (exclusive or shared) and count against
-- concurrency limits; task_resources has a row per reservation, held until the task
-- ends (a trigger clears held, whichever statement ends it). Such tasks are claimed by
-- claim_reserved_tasks, which checks the rows; the others never pay for it.

ALTER TABLE tasks ADD COLUMN resources TEXT;      -- JSON {exclusive, shared, limits}; NULL: none
ALTER TABLE tasks ADD COLUMN children TEXT;       -- JSON array of the ids its handler spawned

-- what workers claim, split: tasks that reserve nothing take the plain claim
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (priority DESC, due_at)
    WHERE state IN ('queued', 'scheduled') AND resources IS NULL;
CREATE INDEX tasks_due_reserved ON tasks (priority DESC, due_at)
    WHERE state IN ('queued', 'scheduled') AND resources IS NOT NULL;
-- what retention moves: ended tasks by operation and end
CREATE INDEX tasks_ended ON tasks (type, finished_at)
    WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out');

CREATE TABLE task_resources (
    task_id  TEXT COLLATE "C" NOT NULL,
    mode     TEXT NOT NULL,                         -- exclusive | shared | limit
    resource TEXT NOT NULL,                         -- repository:42; a limit: name:value
    capacity INTEGER,                               -- limit: most holders at once
    held     INTEGER NOT NULL DEFAULT 1,            -- until the task ends
    PRIMARY KEY (task_id, mode, resource)
);
CREATE INDEX task_resources_held ON task_resources (resource, task_id) WHERE held = 1;
CREATE INDEX task_resources_any ON task_resources (resource, task_id);

CREATE FUNCTION taskgate_release_resources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_resources SET held = 0 WHERE task_id = NEW.id AND held = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_release_resources AFTER UPDATE OF state ON tasks
FOR EACH ROW WHEN (NEW.resources IS NOT NULL
    AND NEW.state IN ('succeeded', 'failed', 'canceled', 'timed_out'))
EXECUTE FUNCTION taskgate_release_resources();

CREATE TABLE task_history (
    id                   TEXT COLLATE "C" PRIMARY KEY,
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
    request_fingerprint  TEXT,
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
    due_at               DOUBLE PRECISION,
    archived             INTEGER NOT NULL DEFAULT 1,
    log_count            INTEGER NOT NULL DEFAULT 0,
    version              INTEGER NOT NULL DEFAULT 1,
    user_id              BIGINT,
    resources            TEXT,
    children             TEXT
);
CREATE UNIQUE INDEX task_history_upid ON task_history (upid);
CREATE INDEX task_history_tenant ON task_history (tenant, id);
CREATE INDEX task_history_state ON task_history (state, id);
CREATE INDEX task_history_type ON task_history (type, id);
CREATE INDEX task_history_object ON task_history (object_id, id) WHERE object_id IS NOT NULL;
CREATE INDEX task_history_group ON task_history (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX task_history_parent ON task_history (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX task_history_schedule ON task_history (schedule_id, id)
    WHERE schedule_id IS NOT NULL;
-- what retention purges: by operation and end
CREATE INDEX task_history_ended ON task_history (type, finished_at);
