-- Authentication and the audit log. Keep in step with ../postgres/0006_auth.sql.
--
-- api_tokens: one row per API token. The secret itself is never stored: secret_hash is the
--   lowercase hex SHA-256 of the whole token string the client sends (the server makes it from
--   32 random bytes), so a copy of the database gives no usable token. bindings is a JSON array
--   of {"namespace": "NS" or "*", "role": "viewer" | "submitter" | "operator" | "admin"}.
-- audit_log: who did what, to which job or object of which namespace, when, from where. Ids are
--   ULIDs given by the server (time-ordered); rows older than the retention are deleted by the
--   tick's roll-up step.

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    subject     TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    bindings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE audit_log (
    id        TEXT PRIMARY KEY NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    subject   TEXT NOT NULL,
    action    TEXT NOT NULL,
    namespace TEXT,
    target    TEXT,
    detail    TEXT,
    peer      TEXT
);

CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_namespace_at ON audit_log (namespace, at, id);
