-- The monthly analysis by cause (who or what was responsible, from `complaint.cause_recorded`)
-- and its complaint-rate bands (DOMAIN §7: complaints ÷ the business volume entered per
-- department and month, from escalation's `department.business_volume_entered`).
ALTER TABLE complaints ADD COLUMN cause TEXT NOT NULL DEFAULT '';

CREATE TABLE business_volumes (
    department_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    volume        BIGINT NOT NULL,
    PRIMARY KEY (department_id, month)
);
