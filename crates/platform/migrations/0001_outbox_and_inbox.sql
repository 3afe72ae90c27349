-- The transactional outbox: events written in the same transaction as the state change that
-- caused them, published to JetStream by the relay (Nats-Msg-Id = event_id).
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT        NOT NULL UNIQUE,
    complaint_id TEXT        NOT NULL DEFAULT '',
    subject      TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    headers      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
-- The relay reads only what is unpublished, in commit order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The idempotent consumer's memory: a message id is recorded in the same transaction as its
-- effect, so a redelivered message is recognised and acknowledged without a second effect.
CREATE TABLE processed_messages (
    consumer     TEXT        NOT NULL,
    message_id   TEXT        NOT NULL,
    outcome      TEXT        NOT NULL DEFAULT 'applied',
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Messages a consumer gave up on, with the reason (also published on the dead-letter subject).
CREATE TABLE dead_letters (
    consumer     TEXT        NOT NULL,
    message_id   TEXT        NOT NULL,
    subject      TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    deliveries   BIGINT      NOT NULL,
    payload      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
