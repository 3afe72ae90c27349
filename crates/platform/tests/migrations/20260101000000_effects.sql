-- A test handler's effect: how many times each message was applied.
CREATE TABLE effects (
    message_id TEXT PRIMARY KEY,
    applied    INTEGER NOT NULL,
    replica    TEXT NOT NULL
);
