-- Workflows: definitions, runs and their steps. Keep in step with ../sqlite/0011_workflows.sql.
--
-- workflows: one row per (namespace, name), written by apply; the definition is the JSON of
--   sluice_core::workflow::Workflow, the source the document as applied. A workflow with a
--   schedule has its cron, zone and absolute next fire time here (NULL: no schedule or
--   suspended), so a restart loses no fire time.
-- workflow_runs: one row per run, never removed by a job purge (history keeps runs). version
--   grows by one on every write (compare-and-set by the tick and the API).
-- workflow_steps: one row per step of a run; job_id is the step's current job (its earlier
--   jobs, from before a rerun, in previous_jobs as a JSON list), template the stored job the
--   step's job is made from (parameters already substituted).

CREATE TABLE workflows (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    definition    TEXT NOT NULL,
    source        TEXT NOT NULL,
    cron          TEXT,
    time_zone     TEXT,
    suspended     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    next_fire_at  BIGINT,
    last_fire_at  BIGINT,
    last_run_id   TEXT,
    last_message  TEXT,
    PRIMARY KEY (namespace, name)
);

CREATE INDEX workflows_due ON workflows (next_fire_at) WHERE next_fire_at IS NOT NULL;

CREATE TABLE workflow_runs (
    id               TEXT NOT NULL PRIMARY KEY,
    namespace        TEXT NOT NULL,
    workflow         TEXT NOT NULL,
    state            TEXT NOT NULL,   -- running | succeeded | failed | cancelled
    cancel_requested BIGINT NOT NULL,
    parameters       TEXT NOT NULL,   -- JSON object
    logical_date     BIGINT NOT NULL,
    trigger_kind     TEXT NOT NULL,   -- user | schedule
    definition       TEXT NOT NULL,   -- JSON: the workflow as it was when the run started
    attempt          BIGINT NOT NULL, -- 1, then + 1 per rerun
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    message          TEXT
);

CREATE INDEX workflow_runs_state ON workflow_runs (state, created_at);
CREATE INDEX workflow_runs_list ON workflow_runs (namespace, workflow, created_at);
CREATE INDEX workflow_runs_created ON workflow_runs (created_at, id);

CREATE TABLE workflow_steps (
    run_id        TEXT NOT NULL,
    step          TEXT NOT NULL,
    position      BIGINT NOT NULL,
    phase         TEXT NOT NULL,     -- waiting | started | skipped | cancelled | failed
    job_id        TEXT,
    previous_jobs TEXT NOT NULL,     -- JSON list of job ids
    template      TEXT NOT NULL,     -- JSON: the stored job
    message       TEXT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (run_id, step)
);

CREATE INDEX workflow_steps_job ON workflow_steps (job_id) WHERE job_id IS NOT NULL;
