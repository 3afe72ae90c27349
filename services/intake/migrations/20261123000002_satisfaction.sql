-- The customer's satisfaction from the latest revisit (DOMAIN §6), kept on the complaint.
ALTER TABLE complaints ADD COLUMN satisfaction TEXT NOT NULL DEFAULT '';
