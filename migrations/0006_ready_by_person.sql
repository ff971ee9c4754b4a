-- The import finds a permit by receipt, else pratica (both unique, so indexed), else by the
-- person and dates; the status check finds candidates by fingerprinting date. This index serves
-- both, so neither scans the list (a 20,000-row import against 20,000 stored took 29 s).
CREATE INDEX ready_permits_by_person ON ready_permits(fingerprint_date, surname, given_names, birth_date);
