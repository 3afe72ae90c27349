-- When the registry's class was last set (by a reclassification or a validity decision, at the
-- time the change was made): of two class changes the later one wins, whatever order they
-- arrive in (DOMAIN §9 "The registry is the single view").
ALTER TABLE complaints ADD COLUMN class_set_at TIMESTAMPTZ;
