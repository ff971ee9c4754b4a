-- Staff web sessions, the server's own signing key, and the counter's check-in window.

-- One row per logged-in browser. Only a hash of the cookie's token is kept, so a copy of the
-- database cannot be used to log in; the CSRF token is per session and goes in every form.
CREATE TABLE web_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_by_user ON web_sessions(user_id);

-- The key the server signs its own bookings' tickets with (kiosks sign theirs with their own).
CREATE TABLE server_identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    secret_key  BLOB NOT NULL CHECK (length(secret_key) = 32),
    created_at  TEXT NOT NULL
);

-- How long before and after the slot's start a person is checked in without a warning.
ALTER TABLE settings ADD COLUMN checkin_early_minutes INTEGER NOT NULL DEFAULT 60
    CHECK (checkin_early_minutes BETWEEN 0 AND 720);
ALTER TABLE settings ADD COLUMN checkin_late_minutes INTEGER NOT NULL DEFAULT 90
    CHECK (checkin_late_minutes BETWEEN 0 AND 720);
