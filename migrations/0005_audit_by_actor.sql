-- A locked staff account still opens to the right password from a computer it logged in from
-- before: that question ("has this actor done this action from this address?") is answered from
-- the audit log, by this index.
CREATE INDEX audit_log_by_actor ON audit_log(actor, action, source);
