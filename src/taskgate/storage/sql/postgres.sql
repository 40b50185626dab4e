-- taskgate's named queries for PostgreSQL: the names and fragments of sqlite.sql, with
-- the same meaning (a unit test compares them). Parameters are psycopg's named ones.
-- Times are double precision epoch seconds; JSON columns are text, as in SQLite, and
-- JSON parameters (ids, states, types, labels) are JSON text, read with ::jsonb.

-- name: insert_task
-- A new task; nothing when (tenant, idempotency_key) already exists.
INSERT INTO tasks (
    id, upid, type, object_id, tenant, user_name, user_id, node, state, params, attempt,
    max_attempts, timeout, retry_on_worker_loss, priority, idempotency_key,
    request_fingerprint, request_id, group_id, parent_id, schedule_id, labels, resources,
    created_at, scheduled_at, updated_at, due_at, traceparent
) VALUES (
    %(id)s, %(upid)s, %(type)s, %(object_id)s, %(tenant)s, %(user_name)s, %(user_id)s,
    %(node)s, %(state)s, %(params)s, 0, %(max_attempts)s, %(timeout)s,
    %(retry_on_worker_loss)s::integer, %(priority)s, %(idempotency_key)s,
    %(request_fingerprint)s, %(request_id)s, %(group_id)s, %(parent_id)s, %(schedule_id)s,
    %(labels)s, %(resources)s,
    %(created_at)s, %(scheduled_at)s, %(created_at)s, %(due_at)s, %(traceparent)s
)
ON CONFLICT DO NOTHING
RETURNING *

-- name: get_task
SELECT * FROM tasks WHERE id = %(id)s

-- name: get_task_version
-- A task's version (raised by every change) and tenant: tells whether a copy is current.
SELECT version, tenant FROM tasks WHERE id = %(id)s

-- name: get_task_by_upid
SELECT * FROM tasks WHERE upid = %(upid)s

-- name: get_archived_task
-- A task in history (read when the hot table has no such id).
SELECT * FROM task_history WHERE id = %(id)s

-- name: get_archived_task_version
SELECT version, tenant FROM task_history WHERE id = %(id)s

-- name: get_archived_task_by_upid
SELECT * FROM task_history WHERE upid = %(upid)s

-- name: get_task_by_idempotency_key
SELECT * FROM tasks WHERE tenant = %(tenant)s AND idempotency_key = %(idempotency_key)s

-- name: get_tasks
-- Several tasks by id (:ids, a JSON array), in no particular order: one read for a batch
-- of change notifications, however many waiters and streams watch each task.
SELECT * FROM tasks WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))

-- name: list_tasks
-- A page of tasks, newest first; the chosen fragments filter it.
SELECT * FROM tasks
WHERE /*where*/
ORDER BY id DESC
LIMIT %(limit)s

-- name: list_tasks.before
id < %(before_id)s

-- name: list_tasks.since
id >= %(since_id)s

-- name: list_tasks.until
id < %(until_id)s

-- name: list_tasks.tenant
tenant = %(tenant)s

-- name: list_tasks.states
state IN (SELECT jsonb_array_elements_text(%(states)s::jsonb))

-- name: list_tasks.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: list_tasks.object_id
object_id = %(object_id)s

-- name: list_tasks.labels
-- every (key, value) pair of :labels, a JSON object, is among the task's labels
NOT EXISTS (
    SELECT 1 FROM jsonb_each(%(labels)s::jsonb) AS wanted
    WHERE tasks.labels::jsonb -> wanted.key IS DISTINCT FROM wanted.value
)

-- name: list_tasks.acknowledged
-- :acknowledged is 1 (acknowledged tasks only) or 0 (tasks not acknowledged yet)
(acknowledged_at IS NOT NULL) = (%(acknowledged)s::integer <> 0)

-- name: list_tasks.schedule_id
schedule_id = %(schedule_id)s

-- name: list_tasks.group_id
group_id = %(group_id)s

-- name: list_tasks.parent_id
parent_id = %(parent_id)s

-- name: list_tasks.resource
-- reserves :resource, exclusive or shared
id IN (
    SELECT task_id FROM task_resources
    WHERE resource = %(resource)s AND mode IN ('exclusive', 'shared')
)

-- name: list_history
-- A page of tasks in history, newest first: list_tasks's filters, on task_history.
-- fragments: list_tasks
SELECT * FROM task_history AS tasks
WHERE /*where*/
ORDER BY id DESC
LIMIT %(limit)s

-- name: search_tasks
-- list_tasks over the tasks a search finds (TaskService.list, TaskFilter.q): the task
-- whose id is :q_id, those acting on object :q, those with a label whose value is :q,
-- and those with the label :q_key = :q_value. Each is an exact lookup on an index
-- (the primary key, tasks_object, task_labels_value); the chosen fragments then filter
-- what they found, newest first.
-- fragments: list_tasks
WITH found (task_id) AS (
    SELECT %(q_id)s::text WHERE %(q_id)s::text IS NOT NULL
    UNION SELECT id FROM tasks WHERE object_id = %(q)s::text
    UNION SELECT task_id FROM task_labels WHERE value = %(q)s::text
    UNION SELECT task_id FROM task_labels
        WHERE value = %(q_value)s::text AND key = %(q_key)s::text
)
SELECT tasks.* FROM found JOIN tasks ON tasks.id = found.task_id
WHERE /*where*/
ORDER BY tasks.id DESC
LIMIT %(limit)s

-- name: search_history
-- The same in history (task_labels holds the labels of both tables).
-- fragments: list_tasks
WITH found (task_id) AS (
    SELECT %(q_id)s::text WHERE %(q_id)s::text IS NOT NULL
    UNION SELECT id FROM task_history WHERE object_id = %(q)s::text
    UNION SELECT task_id FROM task_labels WHERE value = %(q)s::text
    UNION SELECT task_id FROM task_labels
        WHERE value = %(q_value)s::text AND key = %(q_key)s::text
)
SELECT tasks.* FROM found JOIN task_history AS tasks ON tasks.id = found.task_id
WHERE /*where*/
ORDER BY tasks.id DESC
LIMIT %(limit)s

-- name: list_changes
-- Tasks in the order they last changed, (updated_at, id), after the position
-- (:after_ts, :after_id): an events stream's replay. The chosen fragments filter them.
SELECT * FROM tasks
WHERE (updated_at, id) > (%(after_ts)s, %(after_id)s) AND /*where*/
ORDER BY updated_at, id
LIMIT %(limit)s

-- name: list_changes.tenant
tenant = %(tenant)s

-- name: list_changes.states
state IN (SELECT jsonb_array_elements_text(%(states)s::jsonb))

-- name: list_changes.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: list_changes.ids
id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))

-- name: get_log
-- Lines start+1 .. start+limit of a task's log.
SELECT n, ts, level, text FROM task_logs
WHERE task_id = %(task_id)s AND n > %(start)s
ORDER BY n
LIMIT %(limit)s

-- name: claim_tasks
-- Take up to :limit due tasks for :worker. FOR UPDATE SKIP LOCKED: concurrent claimers
-- lock different rows and never wait for one another.
WITH due AS (
    SELECT id FROM tasks
    WHERE state IN ('queued', 'scheduled') AND resources IS NULL AND due_at <= %(now)s
    ORDER BY priority DESC, due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET
    state = 'running',
    worker = %(worker)s,
    attempt = attempt + 1,
    started_at = %(now)s,
    lease_expires_at = %(lease_expires_at)s,
    due_at = NULL,
    updated_at = %(now)s,
    version = version + 1
FROM due
WHERE tasks.id = due.id
RETURNING tasks.*

-- name: lock_reserved_claims
-- Claims of reserved tasks take turns: this transaction lock, taken before the claim's
-- statement starts (and so before its snapshot), makes each see what the one before
-- claimed, on every node. Claims of other tasks never take it.
SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(8386095523530290290)) AS turn

-- name: reserved_candidates
-- The due tasks that reserve resources or count against limits, with what each
-- reserves, in submit order: the service chooses among them (taskgate.reservations).
SELECT t.id, t.priority, t.due_at, r.mode, r.resource, r.capacity
FROM tasks AS t
JOIN task_resources AS r ON r.task_id = t.id
WHERE t.state IN ('queued', 'scheduled') AND t.resources IS NOT NULL
  AND t.due_at <= %(now)s
ORDER BY t.id, r.mode, r.resource

-- name: reservation_holders
-- What the tasks that run hold: holders per (mode, resource).
SELECT r.mode, r.resource, COUNT(*) AS holders
FROM task_resources AS r
JOIN tasks AS o ON o.id = r.task_id
WHERE r.held = 1 AND o.state IN ('running', 'canceling')
GROUP BY r.mode, r.resource

-- name: claim_reserved_tasks
-- Take the chosen reserved tasks (:ids, a JSON array in the order chosen) for :worker,
-- each only if it still waits, is due, and conflicts with no task that runs and no
-- task chosen before it (see sqlite.sql). Run after lock_reserved_claims, in its
-- transaction: it sees every claim committed before it.
WITH chosen AS MATERIALIZED (
    SELECT (e.pos - 1)::integer AS pos, e.id
    FROM jsonb_array_elements_text(%(ids)s::jsonb) WITH ORDINALITY AS e(id, pos)
), wants AS MATERIALIZED (
    SELECT chosen.pos, r.task_id, r.mode, r.resource, r.capacity
    FROM chosen JOIN task_resources AS r ON r.task_id = chosen.id
), due AS (
    SELECT t.id FROM chosen JOIN tasks AS t ON t.id = chosen.id
    WHERE t.state IN ('queued', 'scheduled') AND t.resources IS NOT NULL
      AND t.due_at <= %(now)s
      AND NOT EXISTS (
        SELECT 1 FROM wants AS mine
        JOIN task_resources AS other ON other.resource = mine.resource AND other.held = 1
        JOIN tasks AS o ON o.id = other.task_id
        WHERE mine.task_id = t.id AND mine.mode <> 'limit' AND other.mode <> 'limit'
          AND (mine.mode = 'exclusive' OR other.mode = 'exclusive')
          AND o.state IN ('running', 'canceling')
      )
      AND NOT EXISTS (
        SELECT 1 FROM wants AS mine
        JOIN wants AS other ON other.resource = mine.resource AND other.pos < mine.pos
        WHERE mine.task_id = t.id AND mine.mode <> 'limit' AND other.mode <> 'limit'
          AND (mine.mode = 'exclusive' OR other.mode = 'exclusive')
      )
      AND NOT EXISTS (
        SELECT 1 FROM wants AS mine
        WHERE mine.task_id = t.id AND mine.mode = 'limit' AND mine.capacity <= (
            SELECT COUNT(*) FROM task_resources AS other
            JOIN tasks AS o ON o.id = other.task_id
            WHERE other.resource = mine.resource AND other.held = 1 AND other.mode = 'limit'
              AND o.state IN ('running', 'canceling')
        ) + (
            SELECT COUNT(*) FROM wants AS other
            WHERE other.resource = mine.resource AND other.mode = 'limit'
              AND other.pos < mine.pos
        )
      )
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE tasks SET
    state = 'running',
    worker = %(worker)s,
    attempt = attempt + 1,
    started_at = %(now)s,
    lease_expires_at = %(lease_expires_at)s,
    due_at = NULL,
    updated_at = %(now)s,
    version = version + 1
FROM due
WHERE tasks.id = due.id
RETURNING tasks.*

-- name: next_due_at
-- When the next waiting task becomes due (None when nothing waits), and apart, the next
-- reserved task not due yet: one already due waits for a conflicting one to end, which
-- notifies, so it sets no timer.
SELECT (
    SELECT MIN(due_at) FROM tasks
    WHERE state IN ('queued', 'scheduled') AND resources IS NULL
) AS due_at, (
    SELECT MIN(due_at) FROM tasks
    WHERE state IN ('queued', 'scheduled') AND resources IS NOT NULL AND due_at > %(now)s
) AS reserved_due_at

-- name: insert_task_resources
-- A reservation of a task inserted just before (none when it was not: a replay).
INSERT INTO task_resources (task_id, mode, resource, capacity)
SELECT %(task_id)s, %(mode)s, %(resource)s, %(capacity)s::integer
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = %(task_id)s)

-- name: top_waiting_priority
-- The highest priority among waiting tasks (None when nothing waits).
SELECT MAX(priority) AS priority FROM (
    SELECT MAX(priority) AS priority FROM tasks
    WHERE state IN ('queued', 'scheduled') AND resources IS NULL
    UNION ALL
    SELECT MAX(priority) FROM tasks
    WHERE state IN ('queued', 'scheduled') AND resources IS NOT NULL
) AS waiting

-- name: promote_starved
-- Tasks due since before :starved_before behind higher priorities are raised to :top,
-- so that they start before anything that became due after them.
UPDATE tasks SET priority = %(top)s, updated_at = %(now)s, version = version + 1
WHERE id IN (
    SELECT id FROM tasks
    WHERE state IN ('queued', 'scheduled') AND priority < %(top)s
      AND due_at < %(starved_before)s
    LIMIT %(limit)s
)
RETURNING id, priority

-- name: renew_leases
-- Only the tasks the worker knows it holds (:ids, a JSON array): a task claimed for it
-- whose claim it never heard back from (the connection died after the commit) is not
-- kept alive, and the reaper takes it back when its lease runs out.
UPDATE tasks SET lease_expires_at = %(lease_expires_at)s
WHERE worker = %(worker)s AND state IN ('running', 'canceling')
  AND id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))

-- name: upsert_worker
INSERT INTO workers (id, node, pid, concurrency, started_at, heartbeat_at)
VALUES (%(id)s, %(node)s, %(pid)s, %(concurrency)s, %(now)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- name: delete_worker
DELETE FROM workers WHERE id = %(id)s

-- name: list_workers
SELECT * FROM workers ORDER BY started_at

-- name: running_per_worker
-- How many tasks each worker runs (canceling ones too: their handlers have not
-- stopped), from the partial index tasks_leases alone.
SELECT worker, COUNT(*) AS running FROM tasks
WHERE state IN ('running', 'canceling') AND worker IS NOT NULL
GROUP BY worker

-- name: state_counts
-- How many tasks of the hot table are in each state (history holds only ended ones).
SELECT state, COUNT(*) AS count FROM tasks
WHERE /*where*/
GROUP BY state

-- name: state_counts.tenant
tenant = %(tenant)s

-- name: queue_depth
-- How many tasks are due and waiting for a worker at :now.
SELECT COUNT(*) AS count FROM tasks
WHERE (state = 'queued' OR (state = 'scheduled' AND due_at <= %(now)s)) AND /*where*/

-- name: queue_depth.tenant
tenant = %(tenant)s

-- name: oldest_waiting
-- The task due longest among those waiting for a worker at :now.
SELECT id, type, created_at, due_at FROM tasks
WHERE (state = 'queued' OR (state = 'scheduled' AND due_at <= %(now)s)) AND /*where*/
ORDER BY due_at, id
LIMIT 1

-- name: oldest_waiting.tenant
tenant = %(tenant)s

-- name: ended_counts
-- The tasks of the hot table that ended in [:window_start, :window_end), counted per
-- bucket of :bucket_seconds (0 is the first) and ending: an index-only range of
-- tasks_finished.
SELECT floor((finished_at - %(window_start)s) / %(bucket_seconds)s)::integer AS bucket,
    state, COUNT(*) AS count
FROM tasks
WHERE finished_at >= %(window_start)s AND finished_at < %(window_end)s
  AND state IN ('succeeded', 'failed', 'canceled', 'timed_out') AND /*where*/
GROUP BY bucket, state

-- name: ended_counts.tenant
tenant = %(tenant)s

-- name: archived_ended_counts
-- The same in history, on task_history_finished.
-- fragments: ended_counts
SELECT floor((finished_at - %(window_start)s) / %(bucket_seconds)s)::integer AS bucket,
    state, COUNT(*) AS count
FROM task_history AS tasks
WHERE finished_at >= %(window_start)s AND finished_at < %(window_end)s
  AND state IN ('succeeded', 'failed', 'canceled', 'timed_out') AND /*where*/
GROUP BY bucket, state

-- name: active_task_counts
-- The tasks not ended, per type and state (on tasks_state: ended ones are not read),
-- with how many waiting ones are due (those that reserve resources apart) and when the
-- longest due fell due: the gauges of /metrics.
SELECT type, state, COUNT(*) AS tasks,
    SUM(CASE WHEN state IN ('queued', 'scheduled') AND due_at <= %(now)s THEN 1 ELSE 0 END)
        AS due,
    SUM(CASE WHEN state IN ('queued', 'scheduled') AND due_at <= %(now)s
        AND resources IS NOT NULL THEN 1 ELSE 0 END) AS due_reserved,
    MIN(CASE WHEN state IN ('queued', 'scheduled') AND due_at <= %(now)s THEN due_at END)
        AS oldest_due
FROM tasks
WHERE state IN ('queued', 'scheduled', 'suspended', 'running', 'canceling')
GROUP BY type, state

-- name: take_leader
-- :holder takes the role :name unless another holder renewed it since :stale_before
-- (SQLite: the row is the lease; PostgreSQL passes infinity: its lock decided).
INSERT INTO leaders (name, holder, node, pid, since, renewed_at)
VALUES (%(name)s, %(holder)s, %(node)s, %(pid)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder,
    node = excluded.node,
    pid = excluded.pid,
    since = excluded.since,
    renewed_at = excluded.renewed_at
WHERE leaders.holder = excluded.holder OR leaders.renewed_at < %(stale_before)s
RETURNING holder

-- name: renew_leader
-- The holder renews its row, unless it let it run out (last renewed before :stale_before).
UPDATE leaders SET renewed_at = %(now)s
WHERE name = %(name)s AND holder = %(holder)s AND renewed_at >= %(stale_before)s
RETURNING holder

-- name: drop_leader
-- :holder lets the role go; a row another holder wrote since stays.
DELETE FROM leaders WHERE name = %(name)s AND holder = %(holder)s

-- name: forget_leader
-- Worker :holder is known to be gone: the roles it held are free at once (a lease; a
-- PostgreSQL lock went with its connection).
DELETE FROM leaders WHERE holder = %(holder)s

-- name: list_leaders
SELECT * FROM leaders ORDER BY name

-- name: expire_worker_leases
-- A worker is known to be gone: its leases end now.
UPDATE tasks SET lease_expires_at = %(now)s
WHERE worker = %(worker)s AND state IN ('running', 'canceling')

-- name: recover_lost_tasks
-- Tasks whose worker stopped renewing its lease: re-queued when the operation allows
-- it and attempts remain, canceled when a cancel was asked, else failed.
UPDATE tasks SET
    state = CASE
        WHEN state = 'canceling' THEN 'canceled'
        WHEN retry_on_worker_loss <> 0 AND attempt < max_attempts THEN 'queued'
        ELSE 'failed' END,
    error = CASE
        WHEN state = 'canceling' THEN NULL
        WHEN retry_on_worker_loss <> 0 AND attempt < max_attempts THEN error
        ELSE %(error)s END,
    due_at = CASE
        WHEN state <> 'canceling' AND retry_on_worker_loss <> 0 AND attempt < max_attempts
        THEN %(now)s END,
    finished_at = CASE
        WHEN state <> 'canceling' AND retry_on_worker_loss <> 0 AND attempt < max_attempts
        THEN NULL ELSE %(now)s END,
    lease_expires_at = NULL,
    updated_at = %(now)s,
    version = version + 1
WHERE state IN ('running', 'canceling') AND lease_expires_at < %(now)s
RETURNING *

-- name: request_cancel
-- Waiting (or suspended) tasks end at once; running ones are asked to stop.
UPDATE tasks SET
    state = CASE WHEN state IN ('running', 'canceling') THEN 'canceling' ELSE 'canceled' END,
    finished_at = CASE WHEN state IN ('running', 'canceling') THEN NULL ELSE %(now)s END,
    due_at = NULL,
    cancel_requested_at = COALESCE(cancel_requested_at, %(now)s),
    cancel_attempts = cancel_attempts + 1,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND state IN ('queued', 'scheduled', 'suspended', 'running', 'canceling')
RETURNING *

-- name: cancel_tasks
-- request_cancel for up to :limit tasks still going, in id order after :after_id, that
-- the chosen fragments select (a group, a parent's children); their ids, types and
-- states.
UPDATE tasks SET
    state = CASE WHEN state IN ('running', 'canceling') THEN 'canceling' ELSE 'canceled' END,
    finished_at = CASE WHEN state IN ('running', 'canceling') THEN NULL ELSE %(now)s END,
    due_at = NULL,
    cancel_requested_at = COALESCE(cancel_requested_at, %(now)s),
    cancel_attempts = cancel_attempts + 1,
    updated_at = %(now)s,
    version = version + 1
-- the state is tested again outside: a task that ended meanwhile is left as it ended
WHERE state IN ('queued', 'scheduled', 'suspended', 'running', 'canceling') AND id IN (
    SELECT id FROM tasks
    WHERE state IN ('queued', 'scheduled', 'suspended', 'running', 'canceling')
      AND id > %(after_id)s AND /*where*/
    ORDER BY id
    LIMIT %(limit)s
)
RETURNING id, type, state, resources, children

-- name: cancel_tasks.tenant
tenant = %(tenant)s

-- name: cancel_tasks.group_id
group_id = %(group_id)s

-- name: cancel_tasks.parent_id
parent_id = %(parent_id)s

-- name: suspend_task
-- A waiting task is held: no worker claims it until it is resumed. due_at stays.
UPDATE tasks SET state = 'suspended', updated_at = %(now)s, version = version + 1
WHERE id = %(id)s AND state IN ('queued', 'scheduled')
RETURNING *

-- name: resume_task
-- A suspended task waits again: queued, or scheduled while its time has not come.
UPDATE tasks SET
    state = CASE WHEN due_at > %(now)s THEN 'scheduled' ELSE 'queued' END,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND state = 'suspended'
RETURNING *

-- name: suspend_tasks
-- suspend_task for up to :limit waiting tasks in id order after :after_id that the
-- chosen fragments select; their ids.
UPDATE tasks SET state = 'suspended', updated_at = %(now)s, version = version + 1
WHERE state IN ('queued', 'scheduled') AND id IN (
    SELECT id FROM tasks
    WHERE state IN ('queued', 'scheduled') AND id > %(after_id)s AND /*where*/
    ORDER BY id
    LIMIT %(limit)s
)
RETURNING id, resources

-- name: suspend_tasks.tenant
tenant = %(tenant)s

-- name: suspend_tasks.group_id
group_id = %(group_id)s

-- name: resume_tasks
-- resume_task for up to :limit suspended tasks in id order after :after_id that the
-- chosen fragments select; their ids.
UPDATE tasks SET
    state = CASE WHEN due_at > %(now)s THEN 'scheduled' ELSE 'queued' END,
    updated_at = %(now)s,
    version = version + 1
WHERE state = 'suspended' AND id IN (
    SELECT id FROM tasks
    WHERE state = 'suspended' AND id > %(after_id)s AND /*where*/
    ORDER BY id
    LIMIT %(limit)s
)
RETURNING id, resources

-- name: resume_tasks.tenant
tenant = %(tenant)s

-- name: resume_tasks.group_id
group_id = %(group_id)s

-- name: group_states
-- How many tasks of group :group_id are in each state, in the hot table.
SELECT state, COUNT(*) AS count FROM tasks
WHERE group_id = %(group_id)s AND /*where*/
GROUP BY state

-- name: group_states.tenant
tenant = %(tenant)s

-- name: archived_group_states
-- The same in history.
-- fragments: group_states
SELECT state, COUNT(*) AS count FROM task_history AS tasks
WHERE group_id = %(group_id)s AND /*where*/
GROUP BY state

-- name: insert_child_task
-- A task spawned by the handler of :parent_id, only while attempt :parent_attempt of
-- :parent_worker holds it; nothing when its idempotency key exists (a retried parent
-- spawning it again).
INSERT INTO tasks (
    id, upid, type, object_id, tenant, user_name, user_id, node, state, params, attempt,
    max_attempts, timeout, retry_on_worker_loss, priority, idempotency_key,
    request_fingerprint, request_id, group_id, parent_id, schedule_id, labels, resources,
    created_at, scheduled_at, updated_at, due_at, traceparent
)
SELECT
    %(id)s, %(upid)s, %(type)s, %(object_id)s::text, %(tenant)s, %(user_name)s,
    %(user_id)s::bigint, %(node)s, %(state)s, %(params)s, 0, %(max_attempts)s::integer,
    %(timeout)s::double precision, %(retry_on_worker_loss)s::integer, %(priority)s::integer,
    %(idempotency_key)s::text, %(request_fingerprint)s::text, %(request_id)s::text,
    %(group_id)s::text, %(parent_id)s::text, %(schedule_id)s::text, %(labels)s::text,
    %(resources)s::text, %(created_at)s::double precision,
    %(scheduled_at)s::double precision, %(created_at)s::double precision,
    %(due_at)s::double precision, %(traceparent)s::text
WHERE EXISTS (
    SELECT 1 FROM tasks
    WHERE id = %(parent_id)s AND worker = %(parent_worker)s
      AND attempt = %(parent_attempt)s AND state IN ('running', 'canceling')
)
ON CONFLICT DO NOTHING
RETURNING *

-- name: add_child
-- Record child :child_id (inserted just before) at the end of the children of :id.
UPDATE tasks SET
    children = (COALESCE(children, '[]')::jsonb || jsonb_build_array(%(child_id)s::text))::text,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND EXISTS (SELECT 1 FROM tasks AS child WHERE child.id = %(child_id)s)
RETURNING id

-- name: acknowledge_task
-- Acknowledge one task (its state is unchanged); no row when it already was: the first
-- acknowledgment stands.
UPDATE tasks SET
    acknowledged_at = %(now)s,
    acknowledged_by = %(user)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND acknowledged_at IS NULL
RETURNING *

-- name: acknowledge_archived_task
-- The same for a task in history.
UPDATE task_history SET
    acknowledged_at = %(now)s,
    acknowledged_by = %(user)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND acknowledged_at IS NULL
RETURNING *

-- name: acknowledge_tasks
-- Acknowledge up to :limit tasks not acknowledged yet, in id order after :after_id, that
-- the chosen fragments select; their ids. Callers loop, one short transaction a batch.
UPDATE tasks SET
    acknowledged_at = %(now)s,
    acknowledged_by = %(user)s,
    updated_at = %(now)s,
    version = version + 1
-- acknowledged_at is tested again outside: a concurrent acknowledgment that committed
-- first is seen on the row version it left, and the first one stands
WHERE acknowledged_at IS NULL AND id IN (
    SELECT id FROM tasks
    WHERE acknowledged_at IS NULL AND id > %(after_id)s AND /*where*/
    ORDER BY id
    LIMIT %(limit)s
)
RETURNING id

-- name: acknowledge_tasks.tenant
tenant = %(tenant)s

-- name: acknowledge_tasks.states
state IN (SELECT jsonb_array_elements_text(%(states)s::jsonb))

-- name: acknowledge_tasks.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: acknowledge_listed
-- Acknowledge the tasks of :ids (a JSON array) not acknowledged yet that the chosen
-- fragments select; their ids.
UPDATE tasks SET
    acknowledged_at = %(now)s,
    acknowledged_by = %(user)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND acknowledged_at IS NULL AND /*where*/
RETURNING id

-- name: acknowledge_listed.tenant
tenant = %(tenant)s

-- name: acknowledge_listed.states
state IN (SELECT jsonb_array_elements_text(%(states)s::jsonb))

-- name: acknowledge_listed.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: finish_task
-- The worker holding attempt :attempt ends the task in :state.
UPDATE tasks SET
    state = %(state)s,
    result = %(result)s,
    error = %(error)s,
    message = COALESCE(%(message)s, message),
    progress = CASE WHEN %(state)s = 'succeeded' THEN 100.0 ELSE progress END,
    finished_at = %(now)s,
    lease_expires_at = NULL,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND worker = %(worker)s AND attempt = %(attempt)s
  AND state IN ('running', 'canceling')
RETURNING *

-- name: retry_task
-- The worker holding attempt :attempt gives the task back for another attempt at :due_at.
UPDATE tasks SET
    state = CASE WHEN %(due_at)s > %(now)s THEN 'scheduled' ELSE 'queued' END,
    scheduled_at = CASE WHEN %(due_at)s > %(now)s THEN %(due_at)s ELSE scheduled_at END,
    due_at = %(due_at)s,
    error = %(error)s,
    lease_expires_at = NULL,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND worker = %(worker)s AND attempt = %(attempt)s AND state = 'running'
RETURNING *

-- name: update_progress
-- What a running handler reported since the last flush.
UPDATE tasks SET
    progress = COALESCE(%(progress)s, progress),
    progress_detail = COALESCE(%(progress_detail)s, progress_detail),
    message = COALESCE(%(message)s, message),
    detailed_state = COALESCE(%(detailed_state)s, detailed_state),
    created_resources = COALESCE(%(created_resources)s, created_resources),
    warnings = warnings + %(warnings)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND worker = %(worker)s AND attempt = %(attempt)s
  AND state IN ('running', 'canceling')

-- name: reserve_log_lines
-- Make room for :count lines; append_log_line then numbers them from the new end.
UPDATE tasks SET log_count = log_count + %(count)s, updated_at = %(now)s, version = version + 1
WHERE id = %(task_id)s
RETURNING log_count

-- name: append_log_line
-- Line :i (1-based) of a batch of :count reserved just before, in the same transaction.
INSERT INTO task_logs (task_id, n, ts, level, text)
VALUES (
    %(task_id)s,
    (SELECT log_count FROM tasks WHERE id = %(task_id)s) - %(count)s + %(i)s,
    %(ts)s, %(level)s, %(text)s
)

-- name: delete_task
DELETE FROM tasks
WHERE id = %(id)s AND state IN ('succeeded', 'failed', 'canceled', 'timed_out')
RETURNING id

-- name: delete_archived_task
DELETE FROM task_history WHERE id = %(id)s RETURNING id

-- name: delete_task_log
-- The log of a task deleted just before, in the same transaction.
DELETE FROM task_logs
WHERE task_id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = %(id)s)
  AND NOT EXISTS (SELECT 1 FROM task_history WHERE id = %(id)s)

-- name: delete_task_resources
-- The reservations of a task deleted just before.
DELETE FROM task_resources
WHERE task_id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = %(id)s)
  AND NOT EXISTS (SELECT 1 FROM task_history WHERE id = %(id)s)

-- name: purgeable_tasks
-- Up to :limit ended tasks in id order after :after_id that the chosen fragments select.
SELECT id FROM tasks
WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out') AND id > %(after_id)s
  AND /*where*/
ORDER BY id
LIMIT %(limit)s

-- name: purgeable_tasks.tenant
tenant = %(tenant)s

-- name: purgeable_tasks.states
state IN (SELECT jsonb_array_elements_text(%(states)s::jsonb))

-- name: purgeable_tasks.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: purgeable_tasks.finished_before
finished_at < %(finished_before)s

-- name: purgeable_history
-- The same in history.
-- fragments: purgeable_tasks
SELECT id FROM task_history AS tasks
WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out') AND id > %(after_id)s
  AND /*where*/
ORDER BY id
LIMIT %(limit)s

-- name: purge_tasks
-- Delete the tasks :ids (a JSON array) that have ended; their ids.
DELETE FROM tasks
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND state IN ('succeeded', 'failed', 'canceled', 'timed_out')
RETURNING id

-- name: purge_history
-- Delete the tasks :ids from history; their ids.
DELETE FROM task_history
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
RETURNING id

-- name: purge_task_logs
-- The logs of the tasks :ids that purge_tasks or purge_history deleted just before, in
-- the same transaction.
DELETE FROM task_logs
WHERE task_id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = task_logs.task_id)
  AND NOT EXISTS (SELECT 1 FROM task_history WHERE task_history.id = task_logs.task_id)

-- name: purge_task_resources
-- Their reservations.
DELETE FROM task_resources
WHERE task_id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = task_resources.task_id)
  AND NOT EXISTS (SELECT 1 FROM task_history WHERE task_history.id = task_resources.task_id)

-- name: ended_types
-- The operations of the ended tasks in the hot table, one index probe each.
WITH RECURSIVE found (type) AS (
    SELECT MIN(type) FROM tasks
    WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out')
    UNION ALL
    SELECT (
        SELECT MIN(type) FROM tasks
        WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out') AND type > found.type
    ) FROM found WHERE found.type IS NOT NULL
)
SELECT type FROM found WHERE type IS NOT NULL

-- name: archived_types
-- The operations of the tasks in history, one index probe each.
WITH RECURSIVE found (type) AS (
    SELECT MIN(type) FROM task_history
    UNION ALL
    SELECT (SELECT MIN(type) FROM task_history WHERE type > found.type)
    FROM found WHERE found.type IS NOT NULL
)
SELECT type FROM found WHERE type IS NOT NULL

-- name: expired_tasks
-- Up to :limit ended tasks of operation :type in the hot table that ended before
-- :finished_before, the oldest first.
SELECT id FROM tasks
WHERE state IN ('succeeded', 'failed', 'canceled', 'timed_out')
  AND type = %(type)s AND finished_at < %(finished_before)s
ORDER BY finished_at
LIMIT %(limit)s

-- name: expired_history
-- The same in history.
SELECT id FROM task_history
WHERE type = %(type)s AND finished_at < %(finished_before)s
ORDER BY finished_at
LIMIT %(limit)s

-- name: archive_tasks
-- Copy the ended tasks :ids (a JSON array) into history; drop_archived then deletes
-- them from the hot table, in the same transaction.
INSERT INTO task_history (
    id, upid, type, object_id, tenant, user_name, node, worker, state, detailed_state,
    progress, progress_detail, message, params, result, error, warnings, created_resources,
    attempt, max_attempts, timeout, retry_on_worker_loss, cancel_requested_at,
    cancel_attempts, priority, idempotency_key, request_fingerprint, request_id, group_id,
    parent_id, schedule_id, labels, acknowledged_at, acknowledged_by, created_at,
    scheduled_at, started_at, updated_at, finished_at, lease_expires_at, due_at, archived,
    log_count, version, user_id, resources, children, traceparent
)
SELECT
    id, upid, type, object_id, tenant, user_name, node, worker, state, detailed_state,
    progress, progress_detail, message, params, result, error, warnings, created_resources,
    attempt, max_attempts, timeout, retry_on_worker_loss, cancel_requested_at,
    cancel_attempts, priority, idempotency_key, request_fingerprint, request_id, group_id,
    parent_id, schedule_id, labels, acknowledged_at, acknowledged_by, created_at,
    scheduled_at, started_at, updated_at, finished_at, lease_expires_at, due_at, 1,
    log_count, version + 1, user_id, resources, children, traceparent
FROM tasks
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND state IN ('succeeded', 'failed', 'canceled', 'timed_out')

-- name: drop_archived
-- Delete from the hot table the tasks :ids that archive_tasks copied; their ids.
DELETE FROM tasks
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND EXISTS (SELECT 1 FROM task_history WHERE task_history.id = tasks.id)
RETURNING id

-- name: insert_key
-- A new API key (its secret only as a salted hash).
INSERT INTO api_keys (
    id, tenant, user_name, user_id, role, secret_hash, description, created_at, expires_at
) VALUES (
    %(id)s, %(tenant)s, %(user_name)s, %(user_id)s, %(role)s, %(secret_hash)s,
    %(description)s, %(created_at)s, %(expires_at)s
)
RETURNING *

-- name: insert_first_key
-- The same, only while the store has no key at all (serve's first start makes one).
INSERT INTO api_keys (
    id, tenant, user_name, user_id, role, secret_hash, description, created_at, expires_at
)
SELECT
    %(id)s::text, %(tenant)s::text, %(user_name)s::text, %(user_id)s::bigint, %(role)s::text,
    %(secret_hash)s::text, %(description)s::text, %(created_at)s::double precision,
    %(expires_at)s::double precision
WHERE NOT EXISTS (SELECT 1 FROM api_keys)
RETURNING *

-- name: get_key
SELECT * FROM api_keys WHERE id = %(id)s

-- name: list_keys
-- API keys, oldest first; the chosen fragments filter them.
SELECT * FROM api_keys
WHERE /*where*/
ORDER BY created_at, id

-- name: list_keys.tenant
tenant = %(tenant)s

-- name: revoke_key
-- Revoke a key now; no row when it does not exist or was already revoked.
UPDATE api_keys SET revoked_at = %(now)s
WHERE id = %(id)s AND revoked_at IS NULL
RETURNING *

-- name: insert_secret
-- A shared secret, unless one of that name exists (then that one stays: first wins).
INSERT INTO secrets (name, value, created_at) VALUES (%(name)s, %(value)s, %(created_at)s)
ON CONFLICT (name) DO NOTHING

-- name: get_secret
SELECT value FROM secrets WHERE name = %(name)s

-- name: insert_schedule
-- A new schedule; nothing when the tenant already has one of that name.
INSERT INTO schedules (
    id, name, tenant, user_name, user_id, type, params, options, recurrence, timezone,
    enabled, overlap, failure_threshold, schedule_threshold, remaining_runs, first_run,
    next_run, disabled_reason, created_at, updated_at
) VALUES (
    %(id)s, %(name)s, %(tenant)s, %(user_name)s, %(user_id)s, %(type)s, %(params)s,
    %(options)s, %(recurrence)s, %(timezone)s, %(enabled)s::integer, %(overlap)s,
    %(failure_threshold)s, %(schedule_threshold)s,
    %(remaining_runs)s, %(first_run)s, %(next_run)s, %(disabled_reason)s, %(now)s, %(now)s
)
ON CONFLICT DO NOTHING
RETURNING *

-- name: get_schedule
SELECT * FROM schedules WHERE id = %(id)s

-- name: get_schedule_by_name
SELECT * FROM schedules WHERE tenant = %(tenant)s AND name = %(name)s

-- name: list_schedules
-- A page of schedules by name (then id); the chosen fragments filter it.
SELECT * FROM schedules
WHERE /*where*/
ORDER BY name, id
LIMIT %(limit)s

-- name: list_schedules.tenant
tenant = %(tenant)s

-- name: list_schedules.after
-- the page after the schedule (:after_name, :after_id)
(name > %(after_name)s OR (name = %(after_name)s AND id > %(after_id)s))

-- name: list_schedules.enabled
enabled = %(enabled)s::integer

-- name: list_schedules.types
type IN (SELECT jsonb_array_elements_text(%(types)s::jsonb))

-- name: update_schedule
-- Replace what a user may change, if nobody changed the schedule since it was read.
UPDATE schedules SET
    params = %(params)s,
    options = %(options)s,
    recurrence = %(recurrence)s,
    timezone = %(timezone)s,
    enabled = %(enabled)s::integer,
    overlap = %(overlap)s,
    failure_threshold = %(failure_threshold)s,
    schedule_threshold = %(schedule_threshold)s,
    consecutive_failures = %(consecutive_failures)s,
    remaining_runs = %(remaining_runs)s,
    first_run = %(first_run)s,
    next_run = %(next_run)s,
    pending_run = %(pending_run)s,
    disabled_reason = %(disabled_reason)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND version = %(version)s
RETURNING *

-- name: delete_schedule
DELETE FROM schedules WHERE id = %(id)s RETURNING id

-- name: due_schedules
-- Up to :limit enabled schedules whose next run is due at :now, earliest first.
SELECT * FROM schedules
WHERE enabled = 1 AND next_run <= %(now)s
ORDER BY next_run
LIMIT %(limit)s

-- name: next_schedule_run
-- When the next enabled schedule falls due (None when none will).
SELECT MIN(next_run) AS next_run FROM schedules WHERE enabled = 1

-- name: ended_schedule_runs
-- Up to :limit schedules whose last run ended (or is gone) and is not counted yet, with
-- that run's state (NULL: gone).
-- A run already in history counts as it ended.
SELECT schedules.*, COALESCE(tasks.state, task_history.state) AS last_task_state
FROM schedules
LEFT JOIN tasks ON tasks.id = schedules.last_task_id
LEFT JOIN task_history ON task_history.id = schedules.last_task_id
WHERE schedules.last_task_open = 1
  AND (tasks.id IS NULL OR tasks.state IN ('succeeded', 'failed', 'canceled', 'timed_out'))
LIMIT %(limit)s

-- name: fire_schedule
-- Record run :task_id of the schedule read at :version; insert_scheduled_task then
-- inserts the task only if this took.
UPDATE schedules SET
    last_task_id = %(task_id)s,
    last_task_open = 1,
    last_run_at = %(now)s,
    total_run_count = total_run_count + 1,
    remaining_runs = %(remaining_runs)s,
    next_run = %(next_run)s,
    pending_run = NULL,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND version = %(version)s
RETURNING *

-- name: insert_scheduled_task
-- A schedule's run: the task fire_schedule just recorded, and only then.
INSERT INTO tasks (
    id, upid, type, object_id, tenant, user_name, user_id, node, state, params, attempt,
    max_attempts, timeout, retry_on_worker_loss, priority, idempotency_key,
    request_fingerprint, request_id, group_id, parent_id, schedule_id, labels, resources,
    created_at, scheduled_at, updated_at, due_at, log_count, warnings, traceparent
)
SELECT
    %(id)s, %(upid)s, %(type)s, %(object_id)s::text, %(tenant)s, %(user_name)s,
    %(user_id)s::integer, %(node)s, %(state)s, %(params)s, 0, %(max_attempts)s::integer,
    %(timeout)s::double precision, %(retry_on_worker_loss)s::integer, %(priority)s::integer,
    %(idempotency_key)s::text, %(request_fingerprint)s::text, %(request_id)s::text,
    %(group_id)s::text, %(parent_id)s::text, %(schedule_id)s, %(labels)s::text,
    %(resources)s::text, %(created_at)s::double precision,
    %(scheduled_at)s::double precision, %(created_at)s::double precision,
    %(due_at)s::double precision, %(log_count)s::integer,
    %(warnings)s::integer, %(traceparent)s::text
WHERE EXISTS (SELECT 1 FROM schedules WHERE id = %(schedule_id)s AND last_task_id = %(id)s)
RETURNING *

-- name: append_scheduled_log_line
-- Line :n of a run insert_scheduled_task just inserted (none if it did not).
INSERT INTO task_logs (task_id, n, ts, level, text)
SELECT %(task_id)s, %(n)s::integer, %(ts)s::double precision, %(level)s, %(text)s
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = %(task_id)s)

-- name: hold_schedule_run
-- A due run that does not start now: skipped (overlap skip) or held for the last run to
-- end (overlap queue, :pending_run), and the schedule moved on to :next_run.
UPDATE schedules SET
    remaining_runs = %(remaining_runs)s,
    next_run = %(next_run)s,
    pending_run = %(pending_run)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND version = %(version)s
RETURNING *

-- name: count_schedule_run
-- The last run's outcome, counted: failures in a row, and the schedule disabled when they
-- reach its threshold.
UPDATE schedules SET
    last_task_open = 0,
    consecutive_failures = %(consecutive_failures)s,
    enabled = %(enabled)s::integer,
    disabled_reason = %(disabled_reason)s,
    updated_at = %(now)s,
    version = version + 1
WHERE id = %(id)s AND version = %(version)s
RETURNING *
