-- One-time facts about this catalog file, so start-up work done once is not redone
-- (e.g. `subjects_encrypted`: every subject row is known to be encrypted at rest).
CREATE TABLE catalog_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
