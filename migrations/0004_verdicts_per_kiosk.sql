-- A verdict belongs to one kiosk's request: request ids are chosen by kiosks, so two kiosks may
-- (by accident or malice) use the same one. Keyed by (kiosk, request), a reused id is rejected
-- on its own instead of failing the whole batch of the kiosk that reused it.
CREATE TABLE sync_verdicts_new (
    request_id      TEXT NOT NULL,
    kiosk_id        TEXT NOT NULL REFERENCES kiosks(id),
    outcome         TEXT NOT NULL CHECK (outcome IN ('confirmed', 'relocated', 'rejected', 'cancelled')),
    service_id      TEXT NOT NULL,
    slot_date       TEXT NOT NULL,
    slot_time       TEXT NOT NULL,
    appointment_id  TEXT REFERENCES appointments(id),
    reason          TEXT,
    used_lease      INTEGER NOT NULL DEFAULT 0 CHECK (used_lease IN (0, 1)),
    decided_at      TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, request_id)
);
INSERT INTO sync_verdicts_new SELECT request_id, kiosk_id, outcome, service_id, slot_date,
    slot_time, appointment_id, reason, used_lease, decided_at FROM sync_verdicts;
DROP TABLE sync_verdicts;
ALTER TABLE sync_verdicts_new RENAME TO sync_verdicts;
CREATE INDEX sync_verdicts_by_appointment ON sync_verdicts(appointment_id);
