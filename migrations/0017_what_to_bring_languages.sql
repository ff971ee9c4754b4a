-- "What to bring" in the other languages the administration gives (issue #15): a JSON object,
-- language → text; Italian stays in `what_to_bring`. The public site and the kiosk's reminder
-- show the reader's language, or the Italian marked as such.
ALTER TABLE services ADD COLUMN what_to_bring_in TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(what_to_bring_in));
