-- Durable outbox of domain events (`identification.registered`, ...). An event is written
-- in the same transaction as the audit row it reports, so neither exists without the
-- other; subscribers read it by `seq` (Server-Sent Events `id`) and resume after the last
-- one they saw, so nothing is lost while no one listens.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    audit_id    INTEGER REFERENCES audit_log(id),
    payload     TEXT NOT NULL
);
