-- The sync core: kiosk enrolment, the synchronised Automerge documents and their per-kiosk sync
-- states, the verdicts on kiosks' requests, and leases (places set aside for offline bookings).

-- One-time codes that bind a kiosk's key to a partner body. Only a hash of the code is kept.
CREATE TABLE enrolment_codes (
    code_hash        TEXT PRIMARY KEY,
    partner_body_id  INTEGER NOT NULL REFERENCES partner_bodies(id),
    label            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    used_at          TEXT,
    kiosk_id         TEXT REFERENCES kiosks(id)
);

-- Automerge documents: a snapshot plus the incremental changes saved since, compacted into a new
-- snapshot now and then.
CREATE TABLE sync_documents (
    name        TEXT PRIMARY KEY,
    snapshot    BLOB NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE sync_document_changes (
    name   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (name, seq)
);

-- What the server last knew each kiosk had of each document, so a reconnect resumes the sync
-- instead of resending everything.
CREATE TABLE sync_peer_states (
    kiosk_id  TEXT NOT NULL REFERENCES kiosks(id),
    name      TEXT NOT NULL,
    state     BLOB NOT NULL,
    PRIMARY KEY (kiosk_id, name)
);

-- The server's verdict on every request a kiosk sent. Written in the same transaction as the
-- appointment it reports; the inbox documents are projections of this table.
CREATE TABLE sync_verdicts (
    request_id      TEXT PRIMARY KEY,
    kiosk_id        TEXT NOT NULL REFERENCES kiosks(id),
    outcome         TEXT NOT NULL CHECK (outcome IN ('confirmed', 'relocated', 'rejected', 'cancelled')),
    service_id      TEXT NOT NULL,
    slot_date       TEXT NOT NULL,
    slot_time       TEXT NOT NULL,
    appointment_id  TEXT REFERENCES appointments(id),
    reason          TEXT,
    used_lease      INTEGER NOT NULL DEFAULT 0 CHECK (used_lease IN (0, 1)),
    decided_at      TEXT NOT NULL
);
CREATE INDEX sync_verdicts_by_kiosk ON sync_verdicts(kiosk_id);

-- Places of a slot leased to a kiosk. The places not yet used (granted - used) are counted in
-- slot_capacity.held. A lease only grows while it lives; it is deleted only once expired and the
-- kiosk has synced everything it wrote before.
CREATE TABLE leases (
    kiosk_id       TEXT NOT NULL REFERENCES kiosks(id),
    service_id     TEXT NOT NULL REFERENCES services(id),
    slot_date      TEXT NOT NULL,
    slot_time      TEXT NOT NULL,
    lease_id       TEXT NOT NULL UNIQUE,
    granted        INTEGER NOT NULL CHECK (granted >= 0),
    used           INTEGER NOT NULL DEFAULT 0,
    expires_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (kiosk_id, service_id, slot_date, slot_time),
    CHECK (used BETWEEN 0 AND granted)
);
