-- The ready list's birth dates are stretched (Argon2id, a list-wide salt in server_secrets) before
-- they enter the hashes kiosks hold. The cost is a setting; the stretched keys are kept, so each
-- birth date is stretched once per cost and salt, not at every publication.
ALTER TABLE settings ADD COLUMN ready_stretch_kib INTEGER NOT NULL DEFAULT 19456 CHECK (ready_stretch_kib >= 8);
ALTER TABLE settings ADD COLUMN ready_stretch_passes INTEGER NOT NULL DEFAULT 2 CHECK (ready_stretch_passes >= 1);

CREATE TABLE ready_birth_keys (
    stretch  TEXT NOT NULL,   -- salt:memory:passes
    birth    TEXT NOT NULL,   -- as the list writes it: YYYY, YYYY-MM or YYYY-MM-DD
    key      TEXT NOT NULL,
    PRIMARY KEY (stretch, birth)
) WITHOUT ROWID;
