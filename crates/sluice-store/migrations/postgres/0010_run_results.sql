-- Job kinds: what a run produced beyond its exit code. Keep in step with ../sqlite/0010_run_results.sql.
--
-- run_results: one row per run (job attempt) that left a result (today a dbt run's nodes, read
--   from dbt's run_results.json when the run ends), written by the leader off the scheduling
--   loop. detail is the JSON of sluice_core::run_result::RunResult. Rows go with their job
--   (a purge of the job drops them).

CREATE TABLE run_results (
    job_id     TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    detail     TEXT NOT NULL,   -- JSON: the whole RunResult
    PRIMARY KEY (job_id, attempt)
);
