-- Preemption: how many times each job was stopped to make room for a job of higher priority.
-- Keep in step with ../postgres/0008_preemption.sql.
--
-- preemptions: counted up by Store::preempt_job, which sends a running job back to its queue
--   as its next run without using a retry (retry_round moves with attempt); the scheduler stops
--   preempting a job once this reaches scheduler.preemption.max_per_job.
-- Not in the history triggers' `UPDATE OF` lists (0004): it does not touch history.

ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
