-- taskgate schema 9: the W3C trace context of the request that submitted a task
-- (taskgate.tracing), so that the span of each of its runs links to the submit's span.
-- NULL when tracing was off at submit.

ALTER TABLE tasks ADD COLUMN traceparent TEXT;
ALTER TABLE task_history ADD COLUMN traceparent TEXT;
