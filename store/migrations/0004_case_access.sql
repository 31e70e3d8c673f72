-- Who may see what: investigators assigned to a case may search and view the evidence
-- linked to it (and nothing else); resumable uploads remember who started them, so only
-- that account can add parts or complete them.

CREATE TABLE case_members (
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    login       TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    PRIMARY KEY (case_id, login)
);
CREATE INDEX case_members_by_login ON case_members (login);

CREATE INDEX case_evidence_by_evidence ON case_evidence (evidence_id);

ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT '';
