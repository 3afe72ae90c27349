-- DOMAIN §9 "The registry is the single view of a complaint": the reasons for the current class
-- and the limits in force (redress_domain::limits::LimitsInForce, as JSON: the due times, which
-- are settled, the latest restart), kept from the events that change them. NULL until the
-- first such event: the acknowledgement's reasons and promises are then still in force.
ALTER TABLE complaints ADD COLUMN classification_reasons TEXT[];
ALTER TABLE complaints ADD COLUMN limits JSONB;
