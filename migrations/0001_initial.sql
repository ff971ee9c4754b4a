-- coper's first schema: the Questura's settings, services and their opening rules, partner bodies,
-- staff and operator accounts, kiosks, ready permits, appointments and the audit log.
--
-- Conventions: dates are TEXT 'YYYY-MM-DD', wall-clock times TEXT 'HH:MM' in the Questura's time zone
-- (a slot is a local date and time, never a UTC instant), instants TEXT RFC 3339 in UTC. Rules that
-- must hold whatever the code does are written here as CHECKs and triggers.

CREATE TABLE settings (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    questura_name   TEXT NOT NULL,
    address         TEXT NOT NULL,
    phone           TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    time_zone       TEXT NOT NULL DEFAULT 'Europe/Rome',
    patron_month    INTEGER CHECK (patron_month BETWEEN 1 AND 12),
    patron_day      INTEGER CHECK (patron_day BETWEEN 1 AND 31),
    patron_name     TEXT,
    demo_seeded_at  TEXT,
    CHECK ((patron_month IS NULL) = (patron_day IS NULL))
);

CREATE TABLE services (
    id              TEXT PRIMARY KEY
                    CHECK (length(id) BETWEEN 1 AND 40 AND id NOT GLOB '*[^a-z0-9-]*'),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    what_to_bring   TEXT NOT NULL DEFAULT '',
    horizon_days    INTEGER NOT NULL CHECK (horizon_days BETWEEN 1 AND 730),
    lead_minutes    INTEGER NOT NULL CHECK (lead_minutes BETWEEN 0 AND 43200),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    sort_order      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE service_weekly_rules (
    id              INTEGER PRIMARY KEY,
    service_id      TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    weekday         INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO: 1 = Monday
    start_time      TEXT NOT NULL CHECK (start_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    end_time        TEXT NOT NULL CHECK (end_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    slot_minutes    INTEGER NOT NULL CHECK (slot_minutes > 0),
    places          INTEGER NOT NULL CHECK (places > 0),
    CHECK (start_time < end_time)
);
CREATE INDEX service_weekly_rules_by_service ON service_weekly_rules(service_id);

CREATE TABLE service_exceptions (
    id              INTEGER PRIMARY KEY,
    service_id      TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    on_date         TEXT NOT NULL CHECK (on_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    kind            TEXT NOT NULL CHECK (kind IN ('closed', 'open')),
    note            TEXT NOT NULL DEFAULT '',
    UNIQUE (service_id, on_date)
);

-- Hours of an 'open' exception (an extra counter day, or different hours on a date).
CREATE TABLE service_exception_ranges (
    id              INTEGER PRIMARY KEY,
    exception_id    INTEGER NOT NULL REFERENCES service_exceptions(id) ON DELETE CASCADE,
    start_time      TEXT NOT NULL CHECK (start_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    end_time        TEXT NOT NULL CHECK (end_time GLOB '[0-2][0-9]:[0-5][0-9]'),
    slot_minutes    INTEGER NOT NULL CHECK (slot_minutes > 0),
    places          INTEGER NOT NULL CHECK (places > 0),
    CHECK (start_time < end_time)
);

CREATE TABLE partner_bodies (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    address               TEXT NOT NULL,
    city                  TEXT NOT NULL,
    phone                 TEXT NOT NULL DEFAULT '',
    email                 TEXT NOT NULL DEFAULT '',
    opening_hours         TEXT NOT NULL DEFAULT '',
    active                INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    lease_places_per_day  INTEGER NOT NULL DEFAULT 2 CHECK (lease_places_per_day >= 0)
);

-- Staff of the Questura (admin, counter) and operators of partner bodies (operator).
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name     TEXT NOT NULL DEFAULT '',
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'counter', 'operator')),
    partner_body_id  INTEGER REFERENCES partner_bodies(id),
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     TEXT,
    created_at       TEXT NOT NULL,
    -- An operator always belongs to a partner body; Questura staff never do.
    CHECK ((role = 'operator') = (partner_body_id IS NOT NULL))
);

CREATE TABLE kiosks (
    id               TEXT PRIMARY KEY,
    partner_body_id  INTEGER NOT NULL REFERENCES partner_bodies(id),
    label            TEXT NOT NULL,
    public_key       BLOB UNIQUE CHECK (public_key IS NULL OR length(public_key) = 32),
    created_at       TEXT NOT NULL,
    enrolled_at      TEXT,
    revoked_at       TEXT,
    last_seen_at     TEXT,
    CHECK ((public_key IS NULL) = (enrolled_at IS NULL))
);

-- Permits ready for delivery, as exported from the national system. A birth date may be only partly
-- known: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'.
CREATE TABLE ready_permits (
    id                INTEGER PRIMARY KEY,
    surname           TEXT NOT NULL CHECK (length(trim(surname)) > 0),
    given_names       TEXT NOT NULL DEFAULT '',
    birth_date        TEXT NOT NULL CHECK (
                          birth_date GLOB '[0-9][0-9][0-9][0-9]'
                       OR birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'
                       OR birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    fingerprint_date  TEXT NOT NULL CHECK (fingerprint_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    receipt_number    TEXT UNIQUE CHECK (receipt_number IS NULL OR length(receipt_number) = 12),
    pratica_number    TEXT UNIQUE CHECK (pratica_number IS NULL OR length(pratica_number) = 10),
    drawer            TEXT NOT NULL DEFAULT '',
    imported_at       TEXT NOT NULL,
    delivered_at      TEXT
);

-- Places of each slot that has ever been booked or leased, how many are taken, how many are held
-- for kiosks' leases. The CHECK is the last line
-- of defence of coper's first invariant: confirmed appointments in a slot never exceed its places.
-- The triggers below keep `taken` equal to the number of appointments holding a place, inside the
-- very statement that inserts or updates the appointment, so no code path can forget it.
CREATE TABLE slot_capacity (
    service_id   TEXT NOT NULL REFERENCES services(id),
    slot_date    TEXT NOT NULL,
    slot_time    TEXT NOT NULL,
    places       INTEGER NOT NULL CHECK (places >= 0),
    taken        INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL DEFAULT 0,     -- set aside for kiosks' leases
    PRIMARY KEY (service_id, slot_date, slot_time),
    CONSTRAINT slot_full CHECK (taken >= 0 AND held >= 0 AND taken + held <= places)
) WITHOUT ROWID;

CREATE TABLE appointments (
    id               TEXT PRIMARY KEY,               -- UUID v7: sorts by creation time
    booking_code     TEXT NOT NULL UNIQUE,           -- short code a person can type
    service_id       TEXT NOT NULL REFERENCES services(id),
    slot_date        TEXT NOT NULL,
    slot_time        TEXT NOT NULL,
    surname          TEXT NOT NULL CHECK (length(trim(surname)) > 0),
    given_names      TEXT NOT NULL DEFAULT '',
    phone            TEXT,
    ready_permit_id  INTEGER REFERENCES ready_permits(id),
    partner_body_id  INTEGER REFERENCES partner_bodies(id), -- NULL when booked by the Questura
    kiosk_id         TEXT REFERENCES kiosks(id),
    request_id       TEXT UNIQUE,                    -- the kiosk's request: makes replays idempotent
    status           TEXT NOT NULL DEFAULT 'booked'
                     CHECK (status IN ('booked', 'checked_in', 'delivered', 'cancelled', 'no_show')),
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    checked_in_at    TEXT,
    delivered_at     TEXT,
    no_show_at       TEXT,
    cancelled_at     TEXT,
    cancel_reason    TEXT,
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX appointments_by_slot ON appointments(service_id, slot_date, slot_time);
CREATE INDEX appointments_by_partner ON appointments(partner_body_id, slot_date);

CREATE TRIGGER appointment_needs_an_open_slot
BEFORE INSERT ON appointments
WHEN NEW.status <> 'cancelled' AND NOT EXISTS (
    SELECT 1 FROM slot_capacity
    WHERE service_id = NEW.service_id AND slot_date = NEW.slot_date AND slot_time = NEW.slot_time)
BEGIN
    SELECT RAISE(ABORT, 'slot_not_open');
END;

CREATE TRIGGER appointment_takes_a_place
AFTER INSERT ON appointments
WHEN NEW.status <> 'cancelled'
BEGIN
    UPDATE slot_capacity SET taken = taken + 1
    WHERE service_id = NEW.service_id AND slot_date = NEW.slot_date AND slot_time = NEW.slot_time;
END;

-- The lifecycle: booked → checked_in → delivered; booked → cancelled | no_show; a check-in can be
-- undone (booked), and a no-show who turns up late can still be checked in.
CREATE TRIGGER appointment_status_follows_the_lifecycle
BEFORE UPDATE OF status ON appointments
WHEN OLD.status <> NEW.status AND NOT (
       (OLD.status = 'booked'     AND NEW.status IN ('checked_in', 'cancelled', 'no_show'))
    OR (OLD.status = 'checked_in' AND NEW.status IN ('delivered', 'booked'))
    OR (OLD.status = 'no_show'    AND NEW.status IN ('checked_in', 'booked')))
BEGIN
    SELECT RAISE(ABORT, 'invalid_status_transition');
END;

-- Moving an appointment to another slot, or cancelling it, gives its place back; the new slot must
-- have been opened and must have room.
CREATE TRIGGER appointment_moves_its_place
AFTER UPDATE OF status, service_id, slot_date, slot_time ON appointments
BEGIN
    UPDATE slot_capacity SET taken = taken - 1
    WHERE OLD.status <> 'cancelled'
      AND service_id = OLD.service_id AND slot_date = OLD.slot_date AND slot_time = OLD.slot_time;
    SELECT RAISE(ABORT, 'slot_not_open')
    WHERE NEW.status <> 'cancelled' AND NOT EXISTS (
        SELECT 1 FROM slot_capacity
        WHERE service_id = NEW.service_id AND slot_date = NEW.slot_date AND slot_time = NEW.slot_time);
    UPDATE slot_capacity SET taken = taken + 1
    WHERE NEW.status <> 'cancelled'
      AND service_id = NEW.service_id AND slot_date = NEW.slot_date AND slot_time = NEW.slot_time;
END;

-- Who did what, when, from where. Append-only: the schema refuses to change or delete a row.
-- Details never carry names of people, only identifiers.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,        -- 'user:<id>', 'kiosk:<id>', 'system', 'cli'
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT '{}',
    source   TEXT NOT NULL DEFAULT ''
);

CREATE TRIGGER audit_log_is_append_only_update
BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log_is_append_only');
END;

CREATE TRIGGER audit_log_is_append_only_delete
BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log_is_append_only');
END;
