-- A lateness fine a clock owes but could not record when it went overdue, because the monitor did
-- not yet know who was responsible: the assignment was made in time, but its event reached the
-- monitor after the due time (found by the fault suite when a NATS leader change delayed events).
-- Recorded against the person once their assignment (or a cause naming them) arrives, if they
-- were responsible by the due time; dropped if the first person named came after it.
CREATE TABLE owed_fines (
    complaint_id      TEXT        NOT NULL,
    kind              TEXT        NOT NULL,
    key               TEXT        NOT NULL DEFAULT '',
    overdue_event_id  TEXT        NOT NULL,
    due_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (complaint_id, kind, key)
);

-- When the first handler was assigned (the assignment's own time, not when the monitor heard of
-- it): a lateness fine goes to a handler only if they had the complaint by the due time.
ALTER TABLE complaints ADD COLUMN first_named_at TIMESTAMPTZ;
