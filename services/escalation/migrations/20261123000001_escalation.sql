-- Escalation's schema: what it learned of the organisation and of each complaint from events,
-- the escalations it raised, the notifications that carry them and every delivery attempt,
-- and the accountability ledger behind the monthly report.

-- From `department.upserted` (routing).
CREATE TABLE departments (
    department_id  TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    manager_id     TEXT NOT NULL,
    service_centre BOOLEAN NOT NULL DEFAULT false
);

-- From `staff.upserted` (routing): who the notifications go to.
CREATE TABLE staff (
    staff_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    department_id TEXT NOT NULL,
    role          INTEGER NOT NULL,
    phone         TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    on_leave      BOOLEAN NOT NULL DEFAULT false,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What the ladder needs to know of each complaint, from intake's and routing's events.
CREATE TABLE complaints (
    complaint_id          TEXT PRIMARY KEY,
    number                TEXT NOT NULL DEFAULT '',
    class                 INTEGER NOT NULL DEFAULT 0,
    department_id         TEXT NOT NULL DEFAULT '',
    department_manager_id TEXT NOT NULL DEFAULT '',
    assignee_id           TEXT NOT NULL DEFAULT '',
    responsible_person_id TEXT NOT NULL DEFAULT '',
    resolved              BOOLEAN NOT NULL DEFAULT false,
    closed                BOOLEAN NOT NULL DEFAULT false
);

-- One escalation to one named person. `step_key` names the ladder step
-- (`<complaint>/<trigger>/<cause>/L<level>`): a redelivered or repeated cause finds it taken.
CREATE TABLE escalations (
    escalation_id    TEXT PRIMARY KEY,
    step_key         TEXT NOT NULL UNIQUE,
    complaint_id     TEXT NOT NULL,
    complaint_number TEXT NOT NULL,
    level            INTEGER NOT NULL,
    trigger          INTEGER NOT NULL,
    recipient_id     TEXT NOT NULL,
    recipient_name   TEXT NOT NULL,
    department_id    TEXT NOT NULL,
    class            INTEGER NOT NULL,
    clock            INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    raised_at        TIMESTAMPTZ NOT NULL,
    acknowledge_by   TIMESTAMPTZ NOT NULL,
    -- Next re-send of an unacknowledged notification; NULL once acknowledged or closed.
    resend_at        TIMESTAMPTZ,
    -- When a still-unresolved complaint goes one level further up; NULL at the top or done.
    raise_at         TIMESTAMPTZ,
    acknowledged_at  TIMESTAMPTZ,
    instructions     TEXT NOT NULL DEFAULT '',
    decided_at       TIMESTAMPTZ,
    decided_by       TEXT NOT NULL DEFAULT '',
    decision         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX escalations_complaint ON escalations (complaint_id);
CREATE INDEX escalations_recipient ON escalations (recipient_id, raised_at DESC);
CREATE INDEX escalations_department ON escalations (department_id, raised_at DESC);
CREATE INDEX escalations_resend ON escalations (resend_at) WHERE resend_at IS NOT NULL;
CREATE INDEX escalations_ack ON escalations (acknowledge_by) WHERE state = 'raised';
CREATE INDEX escalations_raise ON escalations (raise_at) WHERE raise_at IS NOT NULL;

-- Exactly one notification per escalation step and recipient.
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY,
    escalation_id   TEXT NOT NULL REFERENCES escalations (escalation_id),
    recipient_id    TEXT NOT NULL,
    body            JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    sends           INTEGER NOT NULL DEFAULT 1,
    UNIQUE (escalation_id, recipient_id)
);

-- One delivery of one send (`round`: 1 the first, 2 the first re-send…) through one channel.
CREATE TABLE deliveries (
    delivery_id     BIGSERIAL PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (notification_id),
    channel         TEXT NOT NULL,
    round           INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    finished_at     TIMESTAMPTZ,
    UNIQUE (notification_id, channel, round)
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt, as it went.
CREATE TABLE delivery_attempts (
    delivery_id BIGINT NOT NULL REFERENCES deliveries (delivery_id),
    attempt     INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    ok          BOOLEAN NOT NULL,
    http_status INTEGER,
    error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);
