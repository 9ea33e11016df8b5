-- sluice store schema, SQLite flavour. Times are integer milliseconds since the Unix epoch.
-- Keep in step with ../postgres/0001_init.sql: the conformance suite runs against both.

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    labels      TEXT NOT NULL,   -- JSON object of string -> string (also spread into job_labels)
    spec        TEXT NOT NULL,   -- JSON: the resolved job spec
    demand      TEXT NOT NULL,   -- JSON: sluice_core::job::Demand
    created_at  INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    backend_ref TEXT,
    exit_code   INTEGER,
    message     TEXT
);

-- Scheduler and reconciler: jobs in a state, FIFO by enqueue time.
CREATE INDEX jobs_state_enqueued ON jobs (state, enqueued_at, id);
-- History listing, newest first, keyset-paginated on (created_at, id), optionally narrowed.
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE INDEX jobs_namespace_created ON jobs (namespace, created_at, id);
CREATE INDEX jobs_state_created ON jobs (state, created_at, id);
CREATE INDEX jobs_name_created ON jobs (name, created_at, id);

CREATE TABLE job_labels (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- copy of jobs.created_at (never changes): label-filtered
                                 -- listings walk job_labels_key_value in page order
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;

CREATE INDEX job_labels_key_value ON job_labels (key, value, created_at, job_id);

CREATE TABLE job_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    message    TEXT NOT NULL
);

CREATE INDEX job_events_job ON job_events (job_id, seq);
