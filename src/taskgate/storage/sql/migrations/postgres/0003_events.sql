-- taskgate schema 3: task changes in the order they happened, for the events stream.
-- GET /v1/events resumes (Last-Event-ID) by reading the tasks changed since a position
-- (updated_at, id); this index makes that a range scan in change order. Every change
-- raises updated_at, so the index is rewritten on each one: it is the only index on it.

CREATE INDEX tasks_changes ON tasks (updated_at, id);
