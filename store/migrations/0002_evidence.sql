-- Evidence vault: footage items, thumbnails, incidents, cases, legal holds, the custody
-- log, deletion records and the ingest journal.
--
-- Timestamps in this file's tables are UTC `YYYY-MM-DDTHH:MM:SSZ` (fixed width), so SQL
-- string comparison is time order.

CREATE TABLE evidence (
    id              INTEGER PRIMARY KEY,
    -- BLAKE3 of the file bytes, lower-case hex; the blob lives at blobs/<digest>
    digest          TEXT NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    device          TEXT NOT NULL,
    officer         TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('body_camera', 'dock', 'other_device')),
    original_name   TEXT NOT NULL DEFAULT '',
    container       TEXT NOT NULL,
    video_codec     TEXT NOT NULL,
    audio_codec     TEXT,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    creation_time   TEXT,
    recorded_from   TEXT NOT NULL,
    recorded_to     TEXT NOT NULL,
    -- where recorded_from came from: 'declared' (caller), 'metadata' (creation_time), 'file_mtime'
    time_source     TEXT NOT NULL,
    damaged         INTEGER NOT NULL DEFAULT 0,
    damage_reason   TEXT,
    tier            TEXT NOT NULL CHECK (tier IN ('general', 'administrative', 'crime')),
    expires_at      TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleting', 'deleted')),
    -- sweeper claim: which node is deleting this item and since when (lease)
    sweep_claim     TEXT,
    sweep_claimed_at TEXT,
    ingested_at     TEXT NOT NULL,
    ingested_by     TEXT NOT NULL
);
CREATE INDEX evidence_by_officer_time ON evidence (officer, recorded_from, recorded_to);
CREATE INDEX evidence_by_expiry ON evidence (state, expires_at);

CREATE TABLE thumbnails (
    evidence_id INTEGER NOT NULL REFERENCES evidence(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    pts_ms      INTEGER NOT NULL,
    object_key  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (evidence_id, idx)
);

CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    reference   TEXT NOT NULL UNIQUE,
    offence     TEXT NOT NULL CHECK (offence IN ('crime', 'administrative', 'control_check', 'other')),
    officer     TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    report      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE evidence_incidents (
    evidence_id INTEGER NOT NULL REFERENCES evidence(id),
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    linked_at   TEXT NOT NULL,
    PRIMARY KEY (evidence_id, incident_id)
);

CREATE TABLE cases (
    id          INTEGER PRIMARY KEY,
    reference   TEXT NOT NULL UNIQUE,
    opened_at   TEXT NOT NULL,
    closed_at   TEXT
);

CREATE TABLE case_evidence (
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    evidence_id INTEGER NOT NULL REFERENCES evidence(id),
    linked_at   TEXT NOT NULL,
    linked_by   TEXT NOT NULL,
    PRIMARY KEY (case_id, evidence_id)
);

CREATE TABLE holds (
    id          INTEGER PRIMARY KEY,
    evidence_id INTEGER NOT NULL REFERENCES evidence(id),
    reason      TEXT NOT NULL,
    placed_by   TEXT NOT NULL,
    placed_at   TEXT NOT NULL,
    released_by TEXT,
    released_at TEXT
);
CREATE INDEX holds_by_evidence ON holds (evidence_id);

-- Append-only, hash-chained, signed. `seq` is assigned by the writer as last + 1, so two
-- concurrent writers collide on the primary key instead of forking the chain.
CREATE TABLE custody_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    signature   TEXT NOT NULL
);
CREATE INDEX custody_by_subject ON custody_log (subject);
CREATE TRIGGER custody_log_no_update BEFORE UPDATE ON custody_log
BEGIN SELECT RAISE(ABORT, 'custody_log is append-only'); END;
CREATE TRIGGER custody_log_no_delete BEFORE DELETE ON custody_log
BEGIN SELECT RAISE(ABORT, 'custody_log is append-only'); END;

-- What the sweeper deleted and why, signed by the node's custody key.
CREATE TABLE deletions (
    id          INTEGER PRIMARY KEY,
    evidence_id INTEGER NOT NULL UNIQUE REFERENCES evidence(id),
    digest      TEXT NOT NULL,
    deleted_at  TEXT NOT NULL,
    record      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    signature   TEXT NOT NULL
);

-- Ingests in flight. A row here with a dead owner is rolled back by recovery: its staging
-- object is removed, and so is the blob it may have committed, unless an evidence row or
-- another ingest in flight owns that digest.
CREATE TABLE ingest_journal (
    id            TEXT PRIMARY KEY,
    staging_key   TEXT NOT NULL,
    digest        TEXT,
    -- set *before* the commit copy starts: a kill during or right after it must still
    -- lead recovery to the blob
    commit_started INTEGER NOT NULL DEFAULT 0,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);

-- Resumable uploads: parts land as staging objects, each with its BLAKE3 chaining value,
-- so a dock that lost power sends only the missing parts and the digest needs no re-read.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    part_size       INTEGER NOT NULL,
    declared_len    INTEGER NOT NULL,
    declared_digest TEXT,
    created_at      TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed', 'aborted'))
);

CREATE TABLE upload_parts (
    upload_id   TEXT NOT NULL REFERENCES uploads(id),
    idx         INTEGER NOT NULL,
    len         INTEGER NOT NULL,
    cv          TEXT NOT NULL,
    PRIMARY KEY (upload_id, idx)
);
