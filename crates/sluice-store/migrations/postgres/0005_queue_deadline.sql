-- Queue TTL: each queued job's deadline as an indexed column, so that the server finds the jobs
-- past their `maxQueueWait` by reading only those index entries instead of the whole queue.
-- Keep in step with ../sqlite/0005_queue_deadline.sql.
--
-- queue_ttl_ms: the job's maxQueueWait in milliseconds, from the policy in its spec (NULL: none),
--   capped at 2305843009213693951 (i64::MAX / 4) so that a deadline never overflows.
-- queue_deadline: while the job is queued and has a TTL, COALESCE(queued_at, enqueued_at) +
--   queue_ttl_ms (the job expires once the time is past it); NULL otherwise. The store sets it
--   wherever a job enters its queue (insert, back to queued, retry, requeue) and clears it
--   wherever one leaves (admitted, cancelled, expired).
-- Neither column is in the history triggers' `UPDATE OF` lists (0004): they do not touch history.

ALTER TABLE jobs ADD COLUMN queue_ttl_ms BIGINT;
ALTER TABLE jobs ADD COLUMN queue_deadline BIGINT;

-- Backfill jobs stored before this migration from the policy in their spec (the store writes
-- `"policy": {"maxQueueWaitSecs": N, ...}`; a value that is not a whole number means no TTL).
UPDATE jobs SET queue_ttl_ms = LEAST(t.secs * 1000, 2305843009213693951)::BIGINT
FROM (SELECT id,
             CASE WHEN jsonb_typeof(spec::JSONB #> '{policy,maxQueueWaitSecs}') = 'number'
                  THEN (spec::JSONB #>> '{policy,maxQueueWaitSecs}')::NUMERIC END AS secs
      FROM jobs WHERE spec LIKE '%maxQueueWaitSecs%') AS t
WHERE jobs.id = t.id AND t.secs >= 0 AND scale(t.secs) = 0;
UPDATE jobs SET queue_deadline = COALESCE(queued_at, enqueued_at) + queue_ttl_ms
WHERE state = 'queued' AND queue_ttl_ms IS NOT NULL;

-- Store::queued_past_deadline reads this in deadline order (its query repeats the predicate).
CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline, id)
    WHERE state = 'queued' AND queue_deadline IS NOT NULL;
