-- Secrets of the server other than its ticket key, one row each, made once when the database is
-- opened. 'outbox_seal' opens what kiosks seal for the server (a person's name and phone in a
-- request): separate from the ticket key, so replacing one never breaks the other.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    secret      BLOB NOT NULL CHECK (length(secret) = 32),
    created_at  TEXT NOT NULL
);
