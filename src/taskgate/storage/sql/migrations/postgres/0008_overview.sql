-- taskgate schema 8: what the dashboard asks of the store (as sqlite/0008_overview.sql).
--
-- Ended tasks by the time they ended, in both tables: GET /v1/stats counts the tasks
-- that ended in a window, per bucket and ending. finished_at first, so a window is one
-- range; tenant and state in the index, so the count is an index-only scan.
CREATE INDEX tasks_finished ON tasks (finished_at, tenant, state)
    WHERE finished_at IS NOT NULL;
CREATE INDEX task_history_finished ON task_history (finished_at, tenant, state);

-- Labels by value, for the task search (GET /v1/tasks?q=): a row per label of every
-- task, in either table. Labels never change after the insert, so triggers keep it: a
-- task inserted into either table writes its rows (an archived copy finds them there
-- already), and a task deleted from one table takes them along once it is in neither.
CREATE TABLE task_labels (
    task_id TEXT COLLATE "C" NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (task_id, key)
);
CREATE INDEX task_labels_value ON task_labels (value, key, task_id);

CREATE FUNCTION taskgate_insert_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_labels (task_id, key, value)
    SELECT NEW.id, l.key, l.value #>> '{}' FROM jsonb_each(NEW.labels::jsonb) AS l
    WHERE jsonb_typeof(l.value) = 'string'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE FUNCTION taskgate_delete_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_labels WHERE task_id = OLD.id
        AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = OLD.id)
        AND NOT EXISTS (SELECT 1 FROM task_history WHERE id = OLD.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_insert_labels AFTER INSERT ON tasks
FOR EACH ROW WHEN (NEW.labels IS NOT NULL)
EXECUTE FUNCTION taskgate_insert_labels();
CREATE TRIGGER task_history_insert_labels AFTER INSERT ON task_history
FOR EACH ROW WHEN (NEW.labels IS NOT NULL)
EXECUTE FUNCTION taskgate_insert_labels();
CREATE TRIGGER tasks_delete_labels AFTER DELETE ON tasks
FOR EACH ROW WHEN (OLD.labels IS NOT NULL)
EXECUTE FUNCTION taskgate_delete_labels();
CREATE TRIGGER task_history_delete_labels AFTER DELETE ON task_history
FOR EACH ROW WHEN (OLD.labels IS NOT NULL)
EXECUTE FUNCTION taskgate_delete_labels();

-- the labels of the tasks stored before this migration
INSERT INTO task_labels (task_id, key, value)
SELECT t.id, l.key, l.value #>> '{}' FROM tasks AS t, jsonb_each(t.labels::jsonb) AS l
WHERE t.labels IS NOT NULL AND jsonb_typeof(l.value) = 'string'
ON CONFLICT DO NOTHING;
INSERT INTO task_labels (task_id, key, value)
SELECT t.id, l.key, l.value #>> '{}' FROM task_history AS t, jsonb_each(t.labels::jsonb) AS l
WHERE t.labels IS NOT NULL AND jsonb_typeof(l.value) = 'string'
ON CONFLICT DO NOTHING;
