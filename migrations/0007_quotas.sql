-- Quotas: places one partner body (all its kiosks together), and each of its kiosks, may hold per
-- day and per week of slots, so one kiosk can never empty the agenda. Set by the administration
-- on the partner body's page; these defaults hold for bodies created before and after.
ALTER TABLE partner_bodies ADD COLUMN quota_day INTEGER NOT NULL DEFAULT 40 CHECK (quota_day >= 0);
ALTER TABLE partner_bodies ADD COLUMN quota_week INTEGER NOT NULL DEFAULT 150 CHECK (quota_week >= 0);
ALTER TABLE partner_bodies ADD COLUMN kiosk_quota_day INTEGER NOT NULL DEFAULT 20 CHECK (kiosk_quota_day >= 0);
ALTER TABLE partner_bodies ADD COLUMN kiosk_quota_week INTEGER NOT NULL DEFAULT 80 CHECK (kiosk_quota_week >= 0);

-- What a kiosk holds, by slot date, is counted from this (a partner body's from appointments_by_partner).
CREATE INDEX appointments_by_kiosk ON appointments(kiosk_id, slot_date) WHERE kiosk_id IS NOT NULL;
