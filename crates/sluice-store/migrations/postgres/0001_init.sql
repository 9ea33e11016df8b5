-- sluice store schema, PostgreSQL flavour. Times are integer milliseconds since the Unix epoch.
-- Keep in step with ../sqlite/0001_init.sql: the conformance suite runs against both.
-- Text keys use COLLATE "C" so that ordering (ids, namespaces, levels) is bytewise, as in SQLite,
-- whatever the database's default collation is.

CREATE TABLE jobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    namespace   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    level       TEXT COLLATE "C" NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    attempt     BIGINT NOT NULL,
    labels      TEXT NOT NULL,   -- JSON object of string -> string (also spread into job_labels)
    spec        TEXT NOT NULL,   -- JSON: the resolved job spec
    demand      TEXT NOT NULL,   -- JSON: sluice_core::job::Demand
    created_at  BIGINT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    backend_ref TEXT,
    exit_code   BIGINT,
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
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key    TEXT COLLATE "C" NOT NULL,
    value  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL, -- copy of jobs.created_at (never changes): label-filtered
                                -- listings walk job_labels_key_value in page order
    PRIMARY KEY (job_id, key)
);

CREATE INDEX job_labels_key_value ON job_labels (key, value, created_at, job_id);

CREATE TABLE job_events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    message    TEXT NOT NULL
);

CREATE INDEX job_events_job ON job_events (job_id, seq);
