-- Delivering the notices (issue #13): through which channel each went, the moment it was handed
-- over (a crash after that and before `sent_at` may send it twice: at most one notice a crash,
-- as the sender sends one at a time), the token of its opt-out link; notices about no booking
-- ("your permit is ready"); the people who asked for no more messages; the texts the
-- administration edited; the reminder's schedule and the quiet hours; and who asked to be told
-- when their permit is ready.

-- `appointment_id` becomes optional: SQLite changes a column's constraint by copying the table.
CREATE TABLE notices_new (
    id              INTEGER PRIMARY KEY,
    appointment_id  TEXT REFERENCES appointments(id),
    kind            TEXT NOT NULL,          -- coper_shared::notices::NoticeKind::key
    channel         TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient       TEXT NOT NULL,
    lang            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TEXT,
    failed_at       TEXT,
    last_error      TEXT,
    handed_at       TEXT,                   -- given to the channel; NULL again once recorded
    via             TEXT,                   -- 'log', 'smtp', 'http' once sent
    stop_token      TEXT NOT NULL DEFAULT (lower(hex(randomblob(16))))
);
INSERT INTO notices_new (id, appointment_id, kind, channel, recipient, lang, body, created_at,
    due_at, attempts, sent_at, failed_at, last_error)
SELECT id, appointment_id, kind, channel, recipient, lang, body, created_at, due_at, attempts,
    sent_at, failed_at, last_error FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_due ON notices(due_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX notices_by_appointment ON notices(appointment_id);
CREATE UNIQUE INDEX notices_by_stop_token ON notices(stop_token);

-- Recipients who asked for no more messages, as a keyed hash (no readable contact is kept).
CREATE TABLE notice_opt_outs (
    recipient_hash  TEXT PRIMARY KEY,
    channel         TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    at              TEXT NOT NULL,
    how             TEXT NOT NULL           -- 'stop_reply' or 'email_link'
);

-- Texts edited by the administration, over the ones shipped in shared/notices/.
CREATE TABLE notice_templates (
    lang        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    saved_at    TEXT NOT NULL,
    saved_by    TEXT NOT NULL,
    PRIMARY KEY (lang, kind)
);

-- The reminder before the day, and the hours when no message goes out (local time).
ALTER TABLE settings ADD COLUMN reminder_days_before INTEGER NOT NULL DEFAULT 2
    CHECK (reminder_days_before BETWEEN 0 AND 14);
ALTER TABLE settings ADD COLUMN reminder_at TEXT NOT NULL DEFAULT '10:00';
ALTER TABLE settings ADD COLUMN quiet_from TEXT NOT NULL DEFAULT '20:00';
ALTER TABLE settings ADD COLUMN quiet_until TEXT NOT NULL DEFAULT '08:00';
ALTER TABLE appointments ADD COLUMN reminded_at TEXT;

-- "Tell me when my permit is ready": what the status check was asked (exactly what recognises
-- the permit when an import brings it), where to write, in which language; deleted once told,
-- or when it expires.
CREATE TABLE ready_watches (
    id          INTEGER PRIMARY KEY,
    query       TEXT NOT NULL,              -- JSON of the status check's question
    channel     TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient   TEXT NOT NULL,
    lang        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
