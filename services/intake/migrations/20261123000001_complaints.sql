-- Intake's schema: the complaints it accepted (with the integrator's idempotency key), and the
-- registry that staff and dashboards read — each complaint's current summary and its full
-- timeline, built from the events of every service as they arrive.

CREATE SEQUENCE complaint_number_seq;

CREATE TABLE complaints (
    complaint_id    TEXT        PRIMARY KEY,
    number          TEXT        NOT NULL UNIQUE,
    -- The integrator's own id: one complaint per submission, however often it is sent.
    source_system   TEXT        NOT NULL,
    external_id     TEXT        NOT NULL,
    details         BYTEA       NOT NULL,          -- ComplaintDetails (protobuf), byte-exact
    acknowledgement BYTEA       NOT NULL,          -- the Acknowledgement returned, replayed on duplicates
    class           TEXT        NOT NULL,
    status          TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    department_id   TEXT,
    assignee_id     TEXT,
    overdue         BOOLEAN     NOT NULL DEFAULT false,
    confirmed       BOOLEAN     NOT NULL DEFAULT false,
    received_at     TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (source_system, external_id)
);

-- ListComplaints pages newest first by (received_at, complaint_id); each filter has an index
-- that leads with its column so a filtered page is an index range scan, not a table scan.
CREATE INDEX complaints_received ON complaints (received_at DESC, complaint_id DESC);
CREATE INDEX complaints_status ON complaints (status, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_class ON complaints (class, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_department ON complaints (department_id, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_channel ON complaints (channel, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_overdue ON complaints (received_at DESC, complaint_id DESC) WHERE overdue;

CREATE TABLE timeline (
    seq            BIGSERIAL   PRIMARY KEY,
    complaint_id   TEXT        NOT NULL,
    event_id       TEXT        NOT NULL UNIQUE,
    kind           TEXT        NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    actor_id       TEXT        NOT NULL,
    actor_name     TEXT        NOT NULL,
    actor_role     INTEGER     NOT NULL,
    summary        TEXT        NOT NULL,
    source_service TEXT        NOT NULL
);
CREATE INDEX timeline_complaint ON timeline (complaint_id, occurred_at, seq);
