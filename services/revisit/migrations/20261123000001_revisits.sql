-- The revisit service's schema: what it learned about each complaint from the events (enough to
-- plan revisits and to show the agent whom to call), the revisits themselves (one row per
-- complaint, occasion and sequence: planning twice never plans twice), and the event ids
-- applied (dedup by the id inside the payload, whatever the Nats-Msg-Id of its delivery).

CREATE TABLE complaints (
    complaint_id          TEXT        PRIMARY KEY,
    number                TEXT        NOT NULL DEFAULT '',
    class                 TEXT,
    customer_name         TEXT        NOT NULL DEFAULT '',
    customer_phone        TEXT        NOT NULL DEFAULT '',
    summary               TEXT        NOT NULL DEFAULT '',
    department_id         TEXT        NOT NULL DEFAULT '',
    department_manager_id TEXT        NOT NULL DEFAULT '',
    assignee_id           TEXT        NOT NULL DEFAULT '',
    responsible_person_id TEXT        NOT NULL DEFAULT '',
    result                TEXT        NOT NULL DEFAULT '',
    accepted_at           TIMESTAMPTZ,
    resolutions           INTEGER     NOT NULL DEFAULT 0,
    resolved_at           TIMESTAMPTZ,
    on_site_services      INTEGER     NOT NULL DEFAULT 0,
    on_site_at            TIMESTAMPTZ,
    completion_due        TIMESTAMPTZ,
    closed                BOOLEAN     NOT NULL DEFAULT false,
    repeat_count          INTEGER     NOT NULL DEFAULT 0,
    -- The background planner looks at a waiting complaint again from this time on.
    waiting_check_at      TIMESTAMPTZ,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX complaints_waiting ON complaints (waiting_check_at)
    WHERE resolved_at IS NULL AND NOT closed AND waiting_check_at IS NOT NULL;

CREATE TABLE on_site_services (
    complaint_id TEXT        NOT NULL REFERENCES complaints,
    served_at    TIMESTAMPTZ NOT NULL,
    recorded_by  TEXT        NOT NULL,
    PRIMARY KEY (complaint_id, served_at)
);

CREATE TABLE revisits (
    revisit_id                TEXT        PRIMARY KEY,
    complaint_id              TEXT        NOT NULL REFERENCES complaints,
    kind                      TEXT        NOT NULL,
    sequence                  INTEGER     NOT NULL,
    -- scheduled | claimed | unreached | completed | signed_off | cancelled
    state                     TEXT        NOT NULL,
    -- By when the revisit must be made (the rate report's measure); never moves.
    due_at                    TIMESTAMPTZ NOT NULL,
    -- When the agent should call next: due_at, then each retry's time. NULL once attempts are
    -- used up or the revisit is done.
    call_at                   TIMESTAMPTZ,
    agent_id                  TEXT,
    attempts                  INTEGER     NOT NULL DEFAULT 0,
    reached                   BOOLEAN,
    satisfied                 BOOLEAN,
    feelings                  TEXT        NOT NULL DEFAULT '',
    remaining_dissatisfaction TEXT        NOT NULL DEFAULT '',
    opinions                  TEXT        NOT NULL DEFAULT '',
    appointed_answer_at       TIMESTAMPTZ,
    method                    TEXT,
    new_issues                BOOLEAN     NOT NULL DEFAULT false,
    complains_again           BOOLEAN     NOT NULL DEFAULT false,
    repeat_reason             TEXT        NOT NULL DEFAULT '',
    completed_at              TIMESTAMPTZ,
    signed_by                 TEXT,
    sign_off_result           TEXT        NOT NULL DEFAULT '',
    signed_at                 TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL,
    UNIQUE (complaint_id, kind, sequence)
);
CREATE INDEX revisits_call ON revisits (call_at, revisit_id) WHERE call_at IS NOT NULL;
CREATE INDEX revisits_due ON revisits (due_at);

CREATE TABLE applied_events (
    event_id   TEXT        PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
