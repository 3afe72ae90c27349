-- The names of the organisation's people (routing's `staff.upserted`), so the registry's
-- timeline says "accepted by Liu Yang", not "accepted by handler-1" (issue 14): a supervisor
-- reads names, and every line names a person the same way.
CREATE TABLE staff_names (
    staff_id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
