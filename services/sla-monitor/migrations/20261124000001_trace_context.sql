-- The W3C traceparent of the first event heard about each complaint. Warnings and overdues are
-- fired by the scheduler, long after any message: it continues this trace, so a complaint's
-- overdue and the escalation it causes sit in the same trace as its intake.
ALTER TABLE complaints ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
