-- Enrolled people, their biometric templates, and the audit trail of lookups.
CREATE TABLE subjects (
    id                          INTEGER PRIMARY KEY,
    external_id                 TEXT NOT NULL UNIQUE,
    surname                     TEXT NOT NULL,
    given_name                  TEXT NOT NULL,
    patronymic                  TEXT NOT NULL DEFAULT '',
    date_of_birth               TEXT NOT NULL DEFAULT '',
    address                     TEXT NOT NULL DEFAULT '',
    convicted                   INTEGER NOT NULL DEFAULT 0,
    wanted                      INTEGER NOT NULL DEFAULT 0,
    missing                     INTEGER NOT NULL DEFAULT 0,
    preventive_supervision      INTEGER NOT NULL DEFAULT 0,
    probation_supervision       INTEGER NOT NULL DEFAULT 0,
    administrative_supervision  INTEGER NOT NULL DEFAULT 0,
    created_at                  TEXT NOT NULL
);

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    subject_id  INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    modality    TEXT NOT NULL CHECK (modality IN ('face', 'finger')),
    model       TEXT NOT NULL,
    -- ISO finger position (0 = unknown) for fingerprints, NULL for faces
    position    INTEGER,
    quality     REAL NOT NULL,
    data        BLOB NOT NULL,
    -- sha256 of the source image, so the same image is not enrolled twice
    source_sha256 TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (subject_id, model, source_sha256)
);
CREATE INDEX templates_by_model ON templates (modality, model);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    device      TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    subject_id  INTEGER,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_time ON audit_log (at);
