-- The notices to people about their bookings (issue #13), written in the same transaction as the
-- change that causes them and sent afterwards by the server's sender task: an outbox, so nothing
-- is lost when a channel is down or the server stops.
CREATE TABLE notices (
    id              INTEGER PRIMARY KEY,
    appointment_id  TEXT NOT NULL REFERENCES appointments(id),
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
    last_error      TEXT
);
CREATE INDEX notices_due ON notices(due_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX notices_by_appointment ON notices(appointment_id);
