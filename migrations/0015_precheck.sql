-- The document pre-check (issue #14, the Ancona seed): Questura staff with the new `precheck`
-- role open a file for a person's application, ask for documents from a checklist, exchange
-- messages with the person, look at the pictures they send, and mark each document.

-- The new role: SQLite changes a CHECK constraint by copying the table. (Web sessions, the only
-- rows pointing at users, are dropped with the old table: staff log in again after the update.)
CREATE TABLE users_new (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name     TEXT NOT NULL DEFAULT '',
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'counter', 'precheck', 'operator')),
    partner_body_id  INTEGER REFERENCES partner_bodies(id),
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     TEXT,
    created_at       TEXT NOT NULL,
    CHECK ((role = 'operator') = (partner_body_id IS NOT NULL))
);
INSERT INTO users_new SELECT id, username, display_name, password_hash, role, partner_body_id,
    active, failed_logins, locked_until, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- One conversation per application. The person is known by the pratica number and/or names
-- and birth date; the booking, once there is one. The page's token (unguessable, 128 bits) is
-- kept so staff can show it again as a QR code for the assisted path; a new one revokes it.
CREATE TABLE precheck_files (
    id              INTEGER PRIMARY KEY,
    pratica         TEXT NOT NULL DEFAULT '',
    surname         TEXT NOT NULL,
    given_names     TEXT NOT NULL DEFAULT '',
    birth_date      TEXT NOT NULL DEFAULT '',
    ready_permit_id INTEGER REFERENCES ready_permits(id),
    appointment_id  TEXT REFERENCES appointments(id),
    lang            TEXT NOT NULL DEFAULT 'it',
    token           TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'complete', 'closed')),
    -- Whose turn it is: 'us' (the Questura) or 'person'.
    waiting         TEXT NOT NULL DEFAULT 'person' CHECK (waiting IN ('us', 'person')),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    closed_at       TEXT
);
CREATE INDEX precheck_files_by_state ON precheck_files(state, waiting, updated_at);

-- The documents asked for, and where each stands.
CREATE TABLE precheck_items (
    file_id     INTEGER NOT NULL REFERENCES precheck_files(id) ON DELETE CASCADE,
    document    TEXT NOT NULL,                  -- coper_shared::precheck::DOCUMENTS
    state       TEXT NOT NULL DEFAULT 'requested'
                CHECK (state IN ('requested', 'received', 'valid', 'invalid', 'original')),
    reason      TEXT,                           -- coper_shared::precheck::REASONS, when invalid
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (file_id, document)
);

-- The conversation: a canned phrase (shown in the person's language) or free text (shown as
-- written, marked as Italian when staff wrote it).
CREATE TABLE precheck_messages (
    id          INTEGER PRIMARY KEY,
    file_id     INTEGER NOT NULL REFERENCES precheck_files(id) ON DELETE CASCADE,
    author      TEXT NOT NULL CHECK (author IN ('staff', 'person')),
    phrase      TEXT,                           -- coper_shared::precheck::PHRASES
    document    TEXT,                           -- what the phrase is about
    body        TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL,
    by          TEXT NOT NULL
);
CREATE INDEX precheck_messages_by_file ON precheck_messages(file_id, id);

-- What the person sent: re-encoded pictures (no metadata) and PDFs, stored as files in the data
-- folder's `precheck/`, out of the web root.
CREATE TABLE precheck_uploads (
    id          INTEGER PRIMARY KEY,
    file_id     INTEGER NOT NULL REFERENCES precheck_files(id) ON DELETE CASCADE,
    document    TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('image', 'pdf')),
    stored_as   TEXT NOT NULL UNIQUE,
    bytes       INTEGER NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX precheck_uploads_by_file ON precheck_uploads(file_id);
