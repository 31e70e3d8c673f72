-- HTTP API authentication: officer/administrator accounts, the devices they log in from,
-- and short-lived bearer tokens. Only the SHA-256 of a token is stored, so a copy of the
-- catalog does not hand out live sessions. Times are unix seconds (UTC) so expiry checks
-- are integer comparisons.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    login           TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('patrol', 'dock', 'investigator', 'supervisor', 'admin')),
    -- PHC string (argon2id), produced by the API layer; never the password itself
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);

-- Devices (tablets, docks) seen at login. A disabled device cannot log in, and its
-- tokens stop working at once.
CREATE TABLE devices (
    device_id       TEXT PRIMARY KEY,
    disabled        INTEGER NOT NULL DEFAULT 0,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL
);

CREATE TABLE tokens (
    -- lower-case hex SHA-256 of the 256-bit random token
    token_sha256    TEXT PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL REFERENCES devices(device_id),
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);
