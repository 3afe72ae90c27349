-- DOMAIN §9 "The ladder climbs per complaint, not per clock": an escalation gathers every cause
-- of its complaint at its level. The first cause raises it (and notifies); each later missed
-- limit is added here without a new notification. A cause's `step_key` is unique, so a
-- redelivered or repeated cause finds it taken — in this table, whether it raised an escalation
-- or joined one.
CREATE TABLE escalation_causes (
    step_key      TEXT PRIMARY KEY,
    escalation_id TEXT NOT NULL REFERENCES escalations (escalation_id),
    trigger       INTEGER NOT NULL,
    clock         INTEGER NOT NULL DEFAULT 0,
    summary       TEXT NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX escalation_causes_escalation ON escalation_causes (escalation_id, added_at);

INSERT INTO escalation_causes (step_key, escalation_id, trigger, clock, summary, added_at)
SELECT step_key, escalation_id, trigger, clock, summary, raised_at FROM escalations
ON CONFLICT DO NOTHING;

-- Whether the escalation may go up the ladder on its own (unacknowledged or still unresolved).
-- A department manager's escalation that only gathered missed first-feedback or
-- intermediate-result limits stays with the manager (re-sent while unacknowledged): the general
-- manager comes in at the completion limit, not before (DOMAIN §9).
ALTER TABLE escalations ADD COLUMN may_climb BOOLEAN NOT NULL DEFAULT true;

-- The customer type from `complaint.received`: threatening and venting-anger customers go to a
-- superior at once (DOMAIN §2, §9 "Superior at once").
ALTER TABLE complaints ADD COLUMN customer_type INTEGER NOT NULL DEFAULT 0;
