-- 008: keys the application computes once, in Python, so both stores decide alike.
--
-- Email uniqueness and description search used PostgreSQL's lower(), whose case rules
-- are the server's (libc, by collation), while the in-memory store used Python's:
-- 'İ1@x.io' and 'i1@x.io' were two contributors in memory and one in PostgreSQL, so
-- the copy of the second was refused and that record was missing for good. The
-- application now stores the key it decided on beside each value (app.canonical):
-- email_key = casefold(email), description_lower = Python's lower(description), and
-- the unique and trigram indexes use those columns.
--
-- Existing rows get SQL's lower() as a first value. In the migration's own flow the
-- tables are empty until the backfill, and every write and backfill upsert rewrites
-- both keys (they are part of the newer-wins comparison), so a re-run backfill
-- replaces any key computed here.
ALTER TABLE contributors ADD COLUMN email_key text;
UPDATE contributors SET email_key = lower(email) WHERE email IS NOT NULL;
ALTER TABLE contributors ADD CONSTRAINT contributors_email_key_check
    CHECK ((email IS NULL) = (email_key IS NULL));
DROP INDEX contributors_email_lower_key;
CREATE UNIQUE INDEX contributors_email_fold_key ON contributors (email_key)
    WHERE email_key IS NOT NULL;

ALTER TABLE projects ADD COLUMN description_lower text;
UPDATE projects SET description_lower = lower(description) WHERE description IS NOT NULL;
ALTER TABLE projects ADD CONSTRAINT projects_description_lower_check
    CHECK ((description IS NULL) = (description_lower IS NULL));
-- Same name as 002's index: 005's and 007's maintenance functions refer to it by name.
DROP INDEX projects_description_trgm;
CREATE INDEX projects_description_trgm ON projects USING gin (description_lower gin_trgm_ops);
