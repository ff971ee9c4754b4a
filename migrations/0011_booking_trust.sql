-- A booking every party can trust (issue #12).

-- The counter's steps can be undone within the day: a delivery goes back to checked in, besides
-- the undos the lifecycle already allowed (a check-in or a no-show back to booked).
DROP TRIGGER appointment_status_follows_the_lifecycle;
CREATE TRIGGER appointment_status_follows_the_lifecycle
BEFORE UPDATE OF status ON appointments
WHEN OLD.status <> NEW.status AND NOT (
       (OLD.status = 'booked'     AND NEW.status IN ('checked_in', 'cancelled', 'no_show'))
    OR (OLD.status = 'checked_in' AND NEW.status IN ('delivered', 'booked'))
    OR (OLD.status = 'delivered'  AND NEW.status = 'checked_in')
    OR (OLD.status = 'no_show'    AND NEW.status IN ('checked_in', 'booked')))
BEGIN
    SELECT RAISE(ABORT, 'invalid_status_transition');
END;

-- One active booking per ready permit and service: booked or checked in, for today or later (a
-- past day's booking never marked absent does not stop a new one). Enforced on every new
-- booking; rows already stored are left as they are (a second booking made before this rule is
-- cancelled by staff, not by a migration). "Today" is the booking's creation date in UTC, which
-- differs from the Questura's only around midnight.
CREATE TRIGGER appointment_one_active_per_permit
BEFORE INSERT ON appointments
WHEN NEW.ready_permit_id IS NOT NULL AND NEW.status IN ('booked', 'checked_in') AND EXISTS (
    SELECT 1 FROM appointments
    WHERE ready_permit_id = NEW.ready_permit_id AND service_id = NEW.service_id
      AND status IN ('booked', 'checked_in') AND slot_date >= substr(NEW.created_at, 1, 10))
BEGIN
    SELECT RAISE(ABORT, 'already_booked');
END;
CREATE TRIGGER appointment_one_active_per_permit_again
BEFORE UPDATE OF status ON appointments
WHEN NEW.ready_permit_id IS NOT NULL AND NEW.status IN ('booked', 'checked_in')
  AND OLD.status NOT IN ('booked', 'checked_in') AND EXISTS (
    SELECT 1 FROM appointments
    WHERE ready_permit_id = NEW.ready_permit_id AND service_id = NEW.service_id AND id <> NEW.id
      AND status IN ('booked', 'checked_in') AND slot_date >= NEW.slot_date)
BEGIN
    SELECT RAISE(ABORT, 'already_booked');
END;
CREATE INDEX appointments_by_permit ON appointments(ready_permit_id) WHERE ready_permit_id IS NOT NULL;

-- Where the Questura moved a booking from (closing a day, a change of hours), when and why, so
-- the partner body that booked it gets the list of its moved bookings with old and new times.
ALTER TABLE appointments ADD COLUMN moved_from_date TEXT;
ALTER TABLE appointments ADD COLUMN moved_from_time TEXT;
ALTER TABLE appointments ADD COLUMN moved_at TEXT;
ALTER TABLE appointments ADD COLUMN moved_reason TEXT;

-- An entry of the ready list the administration removed (a wrong row): it leaves the kiosks' index,
-- the status check and the counter; a later import that brings it again restores it.
ALTER TABLE ready_permits ADD COLUMN removed_at TEXT;
-- When the administration last corrected the entry (the last import's time stays the import's).
ALTER TABLE ready_permits ADD COLUMN corrected_at TEXT;
