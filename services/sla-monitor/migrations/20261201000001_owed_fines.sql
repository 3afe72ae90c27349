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
