-- The SLA monitor's schema: what it knows of each complaint (from events) and one row per clock.
-- The scheduler never scans: it reads the earliest `next_fire_at` from a partial index that
-- holds only clocks that can still fire, and takes due rows with FOR UPDATE SKIP LOCKED.

CREATE TABLE complaints (
    complaint_id          TEXT        PRIMARY KEY,
    number                TEXT        NOT NULL DEFAULT '',
    class                 TEXT        NOT NULL DEFAULT '',
    received_at           TIMESTAMPTZ,
    department_id         TEXT        NOT NULL DEFAULT '',
    -- complaint.routed: who must accept (fined for late acceptance, DOMAIN §7).
    acceptance_owner_id   TEXT        NOT NULL DEFAULT '',
    -- complaint.assigned: the handler.
    handler_id            TEXT        NOT NULL DEFAULT '',
    -- complaint.cause_recorded / complaint.resolved: the responsible person named.
    responsible_person_id TEXT        NOT NULL DEFAULT '',
    closed                BOOLEAN     NOT NULL DEFAULT false
);
CREATE INDEX complaints_department ON complaints (department_id);
CREATE INDEX complaints_handler ON complaints (handler_id);

CREATE TABLE clocks (
    complaint_id      TEXT        NOT NULL,
    kind              TEXT        NOT NULL,  -- acceptance, first_feedback, completion, intermediate_result, revisit
    key               TEXT        NOT NULL DEFAULT '',  -- the revisit id for revisit clocks
    -- Each reopening starts a new run of the restarted clocks; emissions are once per run.
    run               INTEGER     NOT NULL DEFAULT 1,
    started_at        TIMESTAMPTZ NOT NULL,
    due_at            TIMESTAMPTZ NOT NULL,
    warn_at           TIMESTAMPTZ NOT NULL,
    state             TEXT        NOT NULL,
    warned_at         TIMESTAMPTZ,
    overdue_days      INTEGER     NOT NULL DEFAULT 0,
    met_at            TIMESTAMPTZ,
    next_fire_at      TIMESTAMPTZ,
    -- The revisit's agent (revisit clocks only); other clocks take the complaint's people.
    agent_id          TEXT        NOT NULL DEFAULT '',
    special_reason    TEXT        NOT NULL DEFAULT '',
    special_reason_by TEXT        NOT NULL DEFAULT '',
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (complaint_id, kind, key)
);
-- The scheduler's only access path: earliest first, active clocks only.
CREATE INDEX clocks_next_fire ON clocks (next_fire_at) WHERE next_fire_at IS NOT NULL;
-- ListAtRisk / ListOverdue.
CREATE INDEX clocks_at_risk ON clocks (due_at) WHERE state = 'warned';
CREATE INDEX clocks_overdue ON clocks (due_at) WHERE state = 'overdue';
