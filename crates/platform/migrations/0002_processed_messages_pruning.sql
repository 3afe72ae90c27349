-- Processed message ids are pruned once no message can come again (see `prune_processed`).
-- Rows arrive in time order, so a BRIN index finds the old ones for almost nothing: it adds no
-- per-row cost to the consumers' inserts the way a B-tree would.
CREATE INDEX processed_messages_processed_at ON processed_messages USING brin (processed_at);
