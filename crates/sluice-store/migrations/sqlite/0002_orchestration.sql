-- Orchestration: schedules, retries, the dead-letter queue and queue TTLs.
-- Keep in step with ../postgres/0002_orchestration.sql: the conformance suite runs against both.

-- Per job (all NULL or default for jobs stored before this migration):
ALTER TABLE jobs ADD COLUMN schedule TEXT;          -- the schedule (in the job's namespace) that started it
ALTER TABLE jobs ADD COLUMN scheduled_for INTEGER;  -- the fire time the run stands for
ALTER TABLE jobs ADD COLUMN retry_round INTEGER NOT NULL DEFAULT 1; -- attempt that began the current
                                                    -- round of retries (a requeue starts a new one)
ALTER TABLE jobs ADD COLUMN retry_at INTEGER;       -- when a retry waiting on backoff becomes eligible
ALTER TABLE jobs ADD COLUMN queued_at INTEGER;      -- when a retry or requeue last put it in its queue
                                                    -- (the queue-TTL clock; NULL: enqueued_at)
ALTER TABLE jobs ADD COLUMN failure_class TEXT;     -- set when a failure is settled (dead-lettered);
                                                    -- NULL on a failed job: not handled yet
ALTER TABLE jobs ADD COLUMN dlq_at INTEGER;         -- when it entered the dead-letter queue
ALTER TABLE jobs ADD COLUMN dlq_reason TEXT;        -- why

-- Failures from before this migration are history, not dead letters.
UPDATE jobs SET failure_class = 'unclassified' WHERE state = 'failed';

CREATE INDEX jobs_dlq ON jobs (dlq_at, id) WHERE dlq_at IS NOT NULL;
CREATE INDEX jobs_schedule ON jobs (namespace, schedule, state) WHERE schedule IS NOT NULL;

CREATE TABLE schedules (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    cron          TEXT NOT NULL,    -- the expression as written (cron, @daily, @every 10m)
    time_zone     TEXT NOT NULL,    -- IANA name
    concurrency   TEXT NOT NULL,    -- Allow | Forbid | Replace
    missed_runs   TEXT NOT NULL,    -- Skip | RunOnce
    catch_up_window_secs INTEGER NOT NULL,
    suspended     INTEGER NOT NULL, -- 0 or 1
    level         TEXT NOT NULL,    -- priority level of its runs
    template      TEXT NOT NULL,    -- JSON: the job every run is made from (a job's stored spec)
    source        TEXT NOT NULL,    -- the document as submitted
    created_at    INTEGER NOT NULL, -- also the anchor of @every
    updated_at    INTEGER NOT NULL,
    next_fire_at  INTEGER,          -- absolute: survives restarts; NULL when suspended
    last_fire_at  INTEGER,
    last_job_id   TEXT,
    last_message  TEXT,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE suspended = 0;
