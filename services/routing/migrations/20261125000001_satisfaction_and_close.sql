-- DOMAIN §9 "Resolution needs feedback" and "Closing".
-- The customer's latest recorded satisfaction (a feedback that asked it, or a revisit that
-- reached the customer), shown in GetHandling and carried by `complaint.closed`.
ALTER TABLE handling ADD COLUMN satisfied BOOLEAN;
-- Whether a feedback recorded the customer's satisfaction since the complaint was last
-- (re)opened: resolution needs it; a reopen clears it.
ALTER TABLE handling ADD COLUMN satisfaction_recorded BOOLEAN NOT NULL DEFAULT false;
-- When it was closed (explicitly, or after its revisits: ADR 0018); NULL unless closed.
ALTER TABLE handling ADD COLUMN closed_at TIMESTAMPTZ;
