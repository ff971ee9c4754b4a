-- How to reach the person about their booking (issue #13): the phone was already kept; now an
-- e-mail address, the language of the messages, and when they agreed to receive them (NULL: no
-- consent, no messages). Deleted a configurable number of days after the booking ends.
ALTER TABLE appointments ADD COLUMN email TEXT;
ALTER TABLE appointments ADD COLUMN notice_lang TEXT;
ALTER TABLE appointments ADD COLUMN consent_at TEXT;
-- Days after a booking ends (delivered, cancelled, no-show) its phone and e-mail are kept.
ALTER TABLE settings ADD COLUMN contact_retention_days INTEGER NOT NULL DEFAULT 30
    CHECK (contact_retention_days BETWEEN 0 AND 365);
