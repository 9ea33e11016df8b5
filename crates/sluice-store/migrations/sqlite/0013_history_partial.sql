-- The history indexes of admissions and ends hold only the jobs they can answer for: a job
-- waiting in its queue (never admitted, not ended) has neither time, and every query of these
-- indexes asks for one of them (an end in a range, or no end yet having been admitted). Left
-- whole, every submit wrote two entries that no query reads (a seventh of the SQLite writer's
-- time per submitted job), and reading the jobs still holding room walked past every queued
-- job's entry. The queries repeat each condition as written (history/scan.rs Column::filter).
-- Keep in step with ../postgres/0013_history_partial.sql.
DROP INDEX jobs_hist_admitted;
CREATE INDEX jobs_hist_admitted ON jobs (admitted_at / 3600000, namespace, level, admitted_at,
    enqueued_at, cpu_milli, mem_mib) WHERE admitted_at IS NOT NULL;
DROP INDEX jobs_hist_finished;
CREATE INDEX jobs_hist_finished ON jobs (finished_at / 3600000, namespace, level, finished_at, state,
    admitted_at, cpu_milli, mem_mib) WHERE finished_at IS NOT NULL OR admitted_at IS NOT NULL;
