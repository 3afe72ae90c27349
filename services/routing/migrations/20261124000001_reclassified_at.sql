-- When the class was last changed by `complaint.reclassified`. Intake's events may be applied
-- out of order (two replicas, redelivery): a reclassification applied before the complaint's
-- `complaint.received` must not be overwritten by the original class, and of two
-- reclassifications the later one wins.
ALTER TABLE handling ADD COLUMN reclassified_at TIMESTAMPTZ;
