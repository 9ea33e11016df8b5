-- History: what the time-series queries of Store::history need, as columns with covering
-- indexes, so that a query over a time range reads only the index entries of that range.
-- Keep in step with ../sqlite/0003_history.sql.
--
-- admitted_at: when the job was last admitted (NULL while queued or if never admitted);
--   wait time = admitted_at - enqueued_at; resources are held from admitted_at to finished_at.
-- dequeued_at: when the job last left its queue (admitted, cancelled, failed; NULL while queued);
--   the job was waiting over [enqueued_at, dequeued_at).
-- cpu_milli, mem_mib: the job's total demand (sum over its pods), copied out of `demand`.

ALTER TABLE jobs ADD COLUMN admitted_at BIGINT;
ALTER TABLE jobs ADD COLUMN dequeued_at BIGINT;
ALTER TABLE jobs ADD COLUMN cpu_milli BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN mem_mib BIGINT NOT NULL DEFAULT 0;

-- Backfill jobs stored before this migration from their demand and timeline.
UPDATE jobs SET
    cpu_milli = COALESCE((SELECT SUM((p ->> 'count')::BIGINT * (p ->> 'cpu_milli')::BIGINT)
                          FROM jsonb_array_elements(jobs.demand::JSONB -> 'pods') AS p), 0),
    mem_mib = COALESCE((SELECT SUM((p ->> 'count')::BIGINT * (p ->> 'mem_mib')::BIGINT)
                        FROM jsonb_array_elements(jobs.demand::JSONB -> 'pods') AS p), 0);
UPDATE jobs SET
    dequeued_at = COALESCE((SELECT MAX(e.at) FROM job_events e
                            WHERE e.job_id = jobs.id AND e.from_state = 'queued' AND e.to_state <> 'queued'),
                           started_at, finished_at, updated_at)
WHERE state <> 'queued';
-- Admitted if the last time the job left its queue was into admitted.
UPDATE jobs SET admitted_at = dequeued_at
WHERE state <> 'queued'
  AND (SELECT e.to_state FROM job_events e
       WHERE e.job_id = jobs.id AND e.from_state = 'queued' AND e.to_state <> 'queued'
       ORDER BY e.seq DESC LIMIT 1) = 'admitted';

-- The history queries scan these by time range and group by (hour, namespace, level) in index
-- order; each index covers its query. The hour expression must stay exactly `column / 3600000`
-- (the queries use the same text). Invariant kept by the store: admitted_at, when set, equals
-- dequeued_at (a job is admitted only from the queue), so the dequeue index needs only the jobs
-- that left the queue without being admitted (cancelled or expired while waiting).
CREATE INDEX jobs_hist_enqueued ON jobs ((enqueued_at / 3600000), namespace, level, enqueued_at);
CREATE INDEX jobs_hist_admitted ON jobs ((admitted_at / 3600000), namespace, level, admitted_at,
    enqueued_at, cpu_milli, mem_mib);
CREATE INDEX jobs_hist_dequeued ON jobs ((dequeued_at / 3600000), namespace, level, dequeued_at,
    enqueued_at) WHERE admitted_at IS NULL;
CREATE INDEX jobs_hist_finished ON jobs ((finished_at / 3600000), namespace, level, finished_at, state,
    admitted_at, cpu_milli, mem_mib);
