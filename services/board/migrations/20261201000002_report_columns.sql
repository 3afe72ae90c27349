-- What the policy's reports break complaints down by (DOMAIN §8: the supervisor's daily log,
-- the monthly analysis, the yearly department report), kept on the projection.
ALTER TABLE complaints
    ADD COLUMN channel       TEXT NOT NULL DEFAULT '',
    ADD COLUMN category      TEXT NOT NULL DEFAULT '',
    ADD COLUMN customer_type TEXT NOT NULL DEFAULT '',
    ADD COLUMN business      TEXT NOT NULL DEFAULT '',
    ADD COLUMN resolved_at   TIMESTAMPTZ,
    ADD COLUMN closed_at     TIMESTAMPTZ,
    ADD COLUMN satisfied     BOOLEAN,
    ADD COLUMN ever_overdue  BOOLEAN NOT NULL DEFAULT false;

CREATE INDEX complaints_received ON complaints (received_at);
