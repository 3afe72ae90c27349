-- The board's projection: what a wall screen shows about each complaint, folded from the
-- events of the other services. Rebuilt by replaying the stream when lost; read by the
-- wallboard after a reload or a restart instead of replaying.

CREATE TABLE complaints (
    complaint_id     TEXT PRIMARY KEY,
    complaint_number TEXT NOT NULL DEFAULT '',
    class            TEXT NOT NULL DEFAULT '',
    department_id    TEXT NOT NULL DEFAULT '',
    handler_id       TEXT NOT NULL DEFAULT '',
    handler_name     TEXT NOT NULL DEFAULT '',
    -- received, routed, assigned, accepted, reopened, resolved, closed
    stage            TEXT NOT NULL DEFAULT 'received',
    stage_rank       INT  NOT NULL DEFAULT 0,
    received_at      TIMESTAMPTZ,
    completion_due   TIMESTAMPTZ,
    -- The last warning: which clock and when it falls due.
    risk_clock       TEXT,
    risk_due         TIMESTAMPTZ,
    -- The first missed limit: which clock and since when.
    overdue_clock    TEXT,
    overdue_since    TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX complaints_open ON complaints (department_id, class, stage) WHERE stage_rank < 5;
CREATE INDEX complaints_at_risk ON complaints (risk_due) WHERE stage_rank < 5 AND risk_due IS NOT NULL;
CREATE INDEX complaints_overdue ON complaints (overdue_since) WHERE stage_rank < 5 AND overdue_since IS NOT NULL;

CREATE TABLE departments (
    department_id TEXT PRIMARY KEY,
    name          TEXT NOT NULL
);

CREATE TABLE escalations (
    escalation_id   TEXT PRIMARY KEY,
    complaint_id    TEXT NOT NULL,
    level           INT  NOT NULL,
    recipient_id    TEXT NOT NULL,
    recipient_name  TEXT NOT NULL,
    department_id   TEXT NOT NULL,
    summary         TEXT NOT NULL,
    raised_at       TIMESTAMPTZ NOT NULL,
    acknowledge_by  TIMESTAMPTZ,
    acknowledged_at TIMESTAMPTZ
);

CREATE INDEX escalations_waiting ON escalations (raised_at) WHERE acknowledged_at IS NULL;

CREATE TABLE revisits (
    revisit_id    TEXT PRIMARY KEY,
    complaint_id  TEXT NOT NULL,
    department_id TEXT NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ,
    reached       BOOLEAN,
    satisfied     BOOLEAN
);

CREATE INDEX revisits_due ON revisits (due_at);
