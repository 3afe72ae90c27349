-- Routing's schema: the organisation (departments, staff, routing rules) and each complaint's
-- handling by its department, as routing learned it from intake's events and its own commands.

CREATE TABLE departments (
    department_id       TEXT        PRIMARY KEY,
    name                TEXT        NOT NULL,
    manager_id          TEXT        NOT NULL DEFAULT '',
    service_centre      BOOLEAN     NOT NULL DEFAULT false,
    acceptance_owner_id TEXT        NOT NULL DEFAULT '',
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE staff (
    staff_id      TEXT        PRIMARY KEY,
    name          TEXT        NOT NULL,
    department_id TEXT        NOT NULL,
    role          INTEGER     NOT NULL,
    on_leave      BOOLEAN     NOT NULL DEFAULT false,
    suspended     BOOLEAN     NOT NULL DEFAULT false,
    phone         TEXT        NOT NULL DEFAULT '',
    email         TEXT        NOT NULL DEFAULT '',
    seniority     INTEGER     NOT NULL DEFAULT 0,
    -- Value of `assignment_seq` at this person's latest automatic assignment: ties in load go
    -- to the person assigned longest ago (round robin).
    last_assigned BIGINT      NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_department ON staff (department_id, staff_id);

CREATE SEQUENCE assignment_seq;

-- The rule set in force, tried in `position` order; the first match wins.
CREATE TABLE routing_rules (
    position      INTEGER PRIMARY KEY,
    rule_id       TEXT    NOT NULL,
    category      TEXT    NOT NULL DEFAULT '',
    business      TEXT    NOT NULL DEFAULT '',
    channel       INTEGER NOT NULL DEFAULT 0,
    region        TEXT    NOT NULL DEFAULT '',
    department_id TEXT    NOT NULL
);

-- One row: the default department and the rule set's version.
CREATE TABLE routing_settings (
    singleton             BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    default_department_id TEXT    NOT NULL DEFAULT '',
    version               BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO routing_settings (singleton) VALUES (true);

CREATE TABLE handling (
    complaint_id          TEXT        PRIMARY KEY,
    stage                 TEXT        NOT NULL,
    -- Whether `complaint.received` arrived (details known) and whether it is confirmed; the
    -- two events may be applied in either order by two replicas.
    received              BOOLEAN     NOT NULL DEFAULT false,
    confirmed             BOOLEAN     NOT NULL DEFAULT false,
    number                TEXT        NOT NULL DEFAULT '',
    class                 TEXT        NOT NULL DEFAULT 'C',
    details               BYTEA,                     -- ComplaintDetails (protobuf)
    guidance_actions      TEXT[]      NOT NULL DEFAULT '{}',
    category              TEXT        NOT NULL DEFAULT '',
    group_complaint       BOOLEAN     NOT NULL DEFAULT false,
    customers_affected    INTEGER     NOT NULL DEFAULT 1,
    media_risk            BOOLEAN     NOT NULL DEFAULT false,
    customer_name         TEXT        NOT NULL DEFAULT '',
    customer_type         INTEGER     NOT NULL DEFAULT 0,
    received_at           TIMESTAMPTZ,
    completion_due        TIMESTAMPTZ,
    department_id         TEXT        NOT NULL DEFAULT '',
    assignee_id           TEXT        NOT NULL DEFAULT '',
    acceptance_owner_id   TEXT        NOT NULL DEFAULT '',
    accepted_at           TIMESTAMPTZ,
    valid                 BOOLEAN,
    cause                 TEXT        NOT NULL DEFAULT '',
    responsibility        INTEGER     NOT NULL DEFAULT 0,
    responsible_person_id TEXT        NOT NULL DEFAULT '',
    feedback_count        INTEGER     NOT NULL DEFAULT 0,
    latest_solution       TEXT        NOT NULL DEFAULT '',
    attempt               INTEGER     NOT NULL DEFAULT 0,
    rejection_count       INTEGER     NOT NULL DEFAULT 0,
    handed_in_at          TIMESTAMPTZ,
    result                TEXT        NOT NULL DEFAULT '',
    open                  BOOLEAN     NOT NULL DEFAULT true,
    updated_at            TIMESTAMPTZ NOT NULL
);
-- Open load per handler, and the queues.
CREATE INDEX handling_assignee_open ON handling (assignee_id) WHERE open;
CREATE INDEX handling_department_open ON handling (department_id) WHERE open;

CREATE TABLE subtasks (
    task_id       TEXT        PRIMARY KEY,
    complaint_id  TEXT        NOT NULL REFERENCES handling (complaint_id),
    department_id TEXT        NOT NULL,
    owner_id      TEXT        NOT NULL,
    description   TEXT        NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ,
    result        TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX subtasks_complaint ON subtasks (complaint_id, created_at);
