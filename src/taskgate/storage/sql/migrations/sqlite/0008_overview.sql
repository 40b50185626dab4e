-- taskgate schema 8: what the dashboard asks of the store.
--
-- Ended tasks by the time they ended, in both tables: GET /v1/stats counts the tasks
-- that ended in a window, per bucket and ending. finished_at first, so a window is one
-- range; tenant and state in the index, so the count reads no row.
CREATE INDEX tasks_finished ON tasks (finished_at, tenant, state)
    WHERE finished_at IS NOT NULL;
CREATE INDEX task_history_finished ON task_history (finished_at, tenant, state);

-- Labels by value, for the task search (GET /v1/tasks?q=): a row per label of every
-- task, in either table. Labels never change after the insert, so triggers keep it: a
-- task inserted into either table writes its rows (an archived copy finds them there
-- already), and a task deleted from one table takes them along once it is in neither.
CREATE TABLE task_labels (
    task_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (task_id, key)
) WITHOUT ROWID;
CREATE INDEX task_labels_value ON task_labels (value, key, task_id);

CREATE TRIGGER tasks_insert_labels AFTER INSERT ON tasks
FOR EACH ROW WHEN NEW.labels IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO task_labels (task_id, key, value)
    SELECT NEW.id, key, value FROM json_each(NEW.labels) WHERE type = 'text';
END;
CREATE TRIGGER task_history_insert_labels AFTER INSERT ON task_history
FOR EACH ROW WHEN NEW.labels IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO task_labels (task_id, key, value)
    SELECT NEW.id, key, value FROM json_each(NEW.labels) WHERE type = 'text';
END;
CREATE TRIGGER tasks_delete_labels AFTER DELETE ON tasks
FOR EACH ROW WHEN OLD.labels IS NOT NULL
BEGIN
    DELETE FROM task_labels WHERE task_id = OLD.id
        AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = OLD.id)
        AND NOT EXISTS (SELECT 1 FROM task_history WHERE id = OLD.id);
END;
CREATE TRIGGER task_history_delete_labels AFTER DELETE ON task_history
FOR EACH ROW WHEN OLD.labels IS NOT NULL
BEGIN
    DELETE FROM task_labels WHERE task_id = OLD.id
        AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = OLD.id)
        AND NOT EXISTS (SELECT 1 FROM task_history WHERE id = OLD.id);
END;

-- the labels of the tasks stored before this migration
INSERT OR IGNORE INTO task_labels (task_id, key, value)
SELECT tasks.id, l.key, l.value FROM tasks, json_each(tasks.labels) AS l
WHERE tasks.labels IS NOT NULL AND l.type = 'text';
INSERT OR IGNORE INTO task_labels (task_id, key, value)
SELECT task_history.id, l.key, l.value FROM task_history, json_each(task_history.labels) AS l
WHERE task_history.labels IS NOT NULL AND l.type = 'text';
