-- The document pre-check, kept by the administration (issue #14): the documents it adds beside
-- the shipped catalogue, the checklists per service and kind of permit, and the short answers on
-- times and procedures shown on the public site and offered to staff as replies.

-- A document the administration added: its name in Italian and in the languages given (JSON
-- object language → text). Never deleted while a conversation may name it: retired instead, so
-- conversations that asked for it keep its name and state.
CREATE TABLE precheck_documents (
    id          INTEGER PRIMARY KEY,
    names       TEXT NOT NULL CHECK (json_valid(names) AND json_extract(names, '$.it') <> ''),
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);

-- A checklist: the documents (codes of the shipped catalogue, or `x<id>` of the table above)
-- asked for a kind of permit at a service.
CREATE TABLE precheck_kinds (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
    documents   TEXT NOT NULL CHECK (json_valid(documents)),
    UNIQUE (service, name)
);

-- An answer on times and procedures, per service ('' for all): question and answer per language.
-- Retired rather than deleted, so a conversation that used it as a reply still reads it.
CREATE TABLE precheck_answers (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL DEFAULT '',
    question    TEXT NOT NULL CHECK (json_valid(question) AND json_extract(question, '$.it') <> ''),
    answer      TEXT NOT NULL CHECK (json_valid(answer) AND json_extract(answer, '$.it') <> ''),
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);

-- The checklist a conversation started from, and when the person was last told by message that
-- the Questura wrote or marked something (at most one such message in a while).
ALTER TABLE precheck_files ADD COLUMN kind_id INTEGER REFERENCES precheck_kinds(id) ON DELETE SET NULL;
ALTER TABLE precheck_files ADD COLUMN told_at TEXT;
