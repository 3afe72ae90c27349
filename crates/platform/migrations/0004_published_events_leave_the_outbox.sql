-- Published events leave the outbox for an archive (ADR 0003, amended).
--
-- Marking a row published was an UPDATE: a new row version and a new entry in every index of
-- the outbox for each event, and the relay's "oldest unpublished first" read walked an index
-- full of dead entries. Moving the row (DELETE … RETURNING into the archive) costs one
-- unindexed insert, and the outbox holds only what waits, so the relay's read stays a few
-- pages whatever the history.
--
-- The archive keeps published events for `REDRESS_OUTBOX_RETENTION_HOURS`, so events the
-- stream lost can be published again: move them back into `outbox` (see ADR 0003).
CREATE TABLE outbox_published (
    seq          BIGINT      NOT NULL,
    event_id     TEXT        NOT NULL,
    complaint_id TEXT        NOT NULL DEFAULT '',
    subject      TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    headers      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Rows arrive in time and sequence order: BRIN finds the expired ones, and the events from a
-- sequence on (what to publish again), for almost nothing per insert.
CREATE INDEX outbox_published_at_brin ON outbox_published USING brin (published_at);
CREATE INDEX outbox_published_seq_brin ON outbox_published USING brin (seq);

INSERT INTO outbox_published
    (seq, event_id, complaint_id, subject, payload, headers, created_at, published_at)
SELECT seq, event_id, complaint_id, subject, payload, headers, created_at, published_at
FROM outbox WHERE published_at IS NOT NULL;
DELETE FROM outbox WHERE published_at IS NOT NULL;
-- Everything left waits; its indexes go with the column.
ALTER TABLE outbox DROP COLUMN published_at;
