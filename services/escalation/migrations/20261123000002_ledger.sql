-- The accountability ledger (DOMAIN §7, §9): fines per complaint, doublings, overdue class-D
-- records and late acceptance; suspensions per person and month; business volumes; and the
-- facts the monthly report counts. See docs/adr/0022-accountability-ledger.md.

-- What the ledger needs beyond the ladder's columns.
ALTER TABLE complaints
    -- When the complaint was received (or first seen): the month it counts in for the rate.
    ADD COLUMN received_at TIMESTAMPTZ,
    -- Responsibility from `complaint.cause_recorded` (proto enum); 0 = not said.
    ADD COLUMN responsibility INTEGER NOT NULL DEFAULT 0,
    -- Whether a time limit of this complaint was missed (an `sla.overdue` was seen).
    ADD COLUMN missed_limit BOOLEAN NOT NULL DEFAULT false;

-- One fine or record against one person. Unique per complaint + person + reason + day number,
-- so a redelivered or re-published cause never books twice.
CREATE TABLE ledger_entries (
    complaint_id    TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    reason          TEXT NOT NULL,          -- complaint | overdue | repeat_doubling | late_acceptance
    day             INTEGER NOT NULL DEFAULT 0,
    department_id   TEXT NOT NULL DEFAULT '',
    class           INTEGER NOT NULL DEFAULT 0,
    amount_fen      BIGINT NOT NULL,
    month           TEXT NOT NULL,          -- YYYY-MM, policy timezone
    -- Whether it counts as a complaint against the person toward suspension.
    counts          BOOLEAN NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    source_event_id TEXT NOT NULL DEFAULT '',
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (complaint_id, person_id, reason, day)
);
CREATE INDEX ledger_person_month ON ledger_entries (person_id, month);
CREATE INDEX ledger_month ON ledger_entries (month);

-- Per person and month: the complaints counted and the suspension, emitted once.
CREATE TABLE person_months (
    person_id    TEXT NOT NULL,
    month        TEXT NOT NULL,
    counted      INTEGER NOT NULL DEFAULT 0,
    suspended_at TIMESTAMPTZ,
    PRIMARY KEY (person_id, month)
);

-- Business volume per department and month, entered through the API.
CREATE TABLE business_volumes (
    department_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    volume        BIGINT NOT NULL,
    set_by        TEXT NOT NULL,
    set_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (department_id, month)
);

-- Missed limits, for the report's overdue counts: one per complaint, clock and day late.
CREATE TABLE overdues (
    complaint_id  TEXT NOT NULL,
    clock         INTEGER NOT NULL,
    day           INTEGER NOT NULL,
    department_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    PRIMARY KEY (complaint_id, clock, day)
);
CREATE INDEX overdues_month ON overdues (month, department_id);

-- Repeat complaints: the original, its responsible person and class, for doubling.
CREATE TABLE repeats (
    original_complaint_id TEXT NOT NULL,
    repeat_complaint_id   TEXT NOT NULL,
    department_id         TEXT NOT NULL,
    person_id             TEXT NOT NULL,
    class                 INTEGER NOT NULL,
    month                 TEXT NOT NULL,
    PRIMARY KEY (original_complaint_id, repeat_complaint_id)
);
CREATE INDEX repeats_month ON repeats (month, department_id);
