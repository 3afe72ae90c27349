-- Dead letters can be replayed once the cause is fixed (`redress deadletters replay`): the
-- message's headers are kept so it is read as it came (intake needs its Content-Type), and the
-- request and its outcome are recorded. The consumer that gave up on it replays it (its handler
-- is idempotent), once per request.
ALTER TABLE dead_letters
    ADD COLUMN headers             JSONB       NOT NULL DEFAULT '{}',
    ADD COLUMN replay_requested_at TIMESTAMPTZ,
    ADD COLUMN replay_requested_by TEXT        NOT NULL DEFAULT '',
    ADD COLUMN replayed_at         TIMESTAMPTZ,
    ADD COLUMN replay_error        TEXT        NOT NULL DEFAULT '';
CREATE INDEX dead_letters_replay ON dead_letters (consumer) WHERE replay_requested_at IS NOT NULL;
