-- Conversations of the document pre-check opened before the ready list had the person are linked
-- at each import by surname and birth date (issue #14): an index on the birth date keeps that a
-- lookup, not a scan of the whole list per conversation.
CREATE INDEX ready_permits_by_birth ON ready_permits(birth_date);
