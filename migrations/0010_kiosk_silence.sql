-- A kiosk silent for longer than this (minutes) is flagged on its partner body's page: it should
-- sync every few seconds while its office is open.
ALTER TABLE settings ADD COLUMN kiosk_silent_minutes INTEGER NOT NULL DEFAULT 30 CHECK (kiosk_silent_minutes BETWEEN 1 AND 10080);
