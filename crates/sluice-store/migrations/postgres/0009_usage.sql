-- Cost intelligence: what each run held and used. Keep in step with ../sqlite/0009_usage.sql.
--
-- run_usage: one row per run (job attempt) that ended, written by the leader after the run's
--   end (its Spark event log and process usage read off the scheduling loop). The columns
--   queries filter on are columns; the rest (what was held, what was measured, a note) is the
--   JSON of sluice_core::cost::UsageRecord in detail. Rows outlive their jobs (a purge of the
--   job keeps what it cost).

CREATE TABLE run_usage (
    job_id     TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    schedule   TEXT,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT NOT NULL,
    outcome    TEXT NOT NULL,   -- succeeded | failed | oom
    detail     TEXT NOT NULL,   -- JSON: the whole UsageRecord
    PRIMARY KEY (job_id, attempt)
);

CREATE INDEX run_usage_ended ON run_usage (ended_at, namespace);
CREATE INDEX run_usage_job ON run_usage (namespace, name, ended_at);
