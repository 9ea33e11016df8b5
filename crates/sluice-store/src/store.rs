//! The [`Store`] trait and the types its job methods take and return. The types of the history
//! and of orchestration live in [`crate::history`] and [`crate::orchestration`].

use std::sync::Arc;

use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use tokio::sync::mpsc;

use crate::auth::{AuditEntry, AuditFilter, NewToken, TokenRecord};
use crate::error::StoreError;
use crate::history::{HistoryQuery, HistorySeries, RollUp};
use crate::lease::{Lease, StoreChange};
use crate::orchestration::{
    DeadLetter, Fire, JobOrch, JobSet, OrchJob, Preempted, Requeue, RetryJob, SetFilter,
};
use crate::workflow::{
    NewWorkflow, RunFilter, RunUpdate, WorkflowApplied, WorkflowFire, WorkflowRecord,
    WorkflowRunRecord,
};

/// Persistent job state. Object safe: the server holds an `Arc<dyn Store>`.
///
/// Text, the same on SQLite and PostgreSQL:
///
/// - Messages sluice writes for people are always stored: transition messages, notes, retry,
///   requeue and schedule messages, dead-letter and expiry reasons. NUL and every other control
///   character except `\n` and `\t` are stored as U+FFFD (the job's message and its timeline
///   show the replaced text), so a message quoting a command line or a path can never fail a
///   write.
/// - Values stored or matched exactly (ids, namespaces, names, levels, label keys and values,
///   backend refs, failure classes, schedule fields, and every filter of a read) are never
///   altered: one that contains NUL, which PostgreSQL cannot keep in text, fails with
///   [`StoreError::InvalidInput`] naming the field, before anything is read or written. JSON
///   columns (specs, templates, demands) escape control characters, so any JSON value is kept.
///
/// Errors: [`StoreError::is_unavailable`] tells a database that cannot serve now (retry later)
/// from every other failure; the Display of database errors carries no driver text.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a job in state queued (attempt 1, `enqueued_at = updated_at = created_at`, no
    /// message; a queue deadline of `created_at` plus its spec's `maxQueueWait`, if any, see
    /// [`JobOrch::queue_deadline_ms`]) and its first timeline event (from none to queued,
    /// message "queued"), in one transaction. Fails with [`StoreError::Duplicate`] if the id
    /// exists.
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError>;

    /// Inserts each job as [`Store::insert_job`] does, all in one transaction where the
    /// database allows (group commit): one result per job, in order, each as it would be alone
    /// (a duplicate id fails only its own job). Every job is durable when this returns.
    /// Default: one [`Store::insert_job`] after another.
    async fn insert_jobs(&self, jobs: &[NewJob]) -> Vec<Result<JobRecord, StoreError>> {
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            out.push(self.insert_job(job).await);
        }
        out
    }

    /// Inserts each job as [`Store::insert_jobs`] does and, with each job inserted, appends
    /// its audit entry (`audits[i]` goes with `jobs[i]`; missing or `None` for none), in the
    /// same transaction where the database allows, so that one commit makes a batch of submits
    /// and their audit trail durable. One result per job, in order. An entry that cannot be
    /// written is logged, not returned: its job has been submitted. Default:
    /// [`Store::insert_jobs`], then [`Store::record_audits`] for the jobs inserted.
    async fn insert_jobs_audited(
        &self,
        jobs: &[NewJob],
        audits: &[Option<AuditEntry>],
    ) -> Vec<Result<JobRecord, StoreError>> {
        let out = self.insert_jobs(jobs).await;
        let entries: Vec<AuditEntry> = out
            .iter()
            .zip(audits)
            .filter_map(|(r, a)| a.as_ref().filter(|_| r.is_ok()).cloned())
            .collect();
        for (e, r) in entries.iter().zip(self.record_audits(&entries).await) {
            if let Err(err) = r {
                tracing::error!(
                    actor = %e.actor,
                    action = %e.action,
                    "recording the audit entry failed: {err}"
                );
            }
        }
        out
    }

    /// The job with this id, if any.
    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Jobs matching `filter`, newest first (`created_at` desc, then id desc), at most `limit`
    /// of them (a `limit` of 0 is taken as 1). Keyset pagination: `cursor` is the opaque
    /// [`JobPage::next_cursor`] of the previous page (with the same filter); `None` for the
    /// first page. A cursor this store did not hand out fails with [`StoreError::BadCursor`].
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage, StoreError>;

    /// All jobs in any of these states, ordered by (`enqueued_at`, id). Used by the scheduler and
    /// the reconciler. No states: no jobs.
    async fn jobs_in_states(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError>;

    /// Compare-and-set state change plus a timeline event, in one transaction.
    ///
    /// Fails with [`StoreError::InvalidTransition`] if `!t.from.can_move_to(t.to)` (checked
    /// first, without touching the database), [`StoreError::NotFound`] if there is no such job,
    /// and [`StoreError::Conflict`] if the job's state is not `t.from`; nothing is written then.
    ///
    /// On success: state = `t.to`, `updated_at = t.at_ms`, message = `t.message`;
    /// `started_at` is set when entering running (if unset); `finished_at` when entering a
    /// terminal state; `backend_ref` and `exit_code` when given (kept otherwise). `enqueued_at`
    /// never changes, so a job going admitted -> queued keeps its place. A job going from
    /// submitted or running back to queued (the backend stopped its run, e.g. the deadlock
    /// watchdog) starts a new attempt: `attempt` + 1, `backend_ref`, `started_at` and
    /// `exit_code` cleared. Leaving `queued` clears the job's queue deadline; going back to it
    /// restores the deadline it had (its queue-TTL clock did not restart). Returns the updated
    /// job.
    async fn transition(&self, t: &Transition) -> Result<JobRecord, StoreError>;

    /// Applies each transition as [`Store::transition`] does, in order, in one transaction
    /// where the database allows (a tick's admissions, say): one result per transition, each as
    /// it would be alone (a conflict fails only its own). Default: one after another.
    async fn transitions(&self, ts: &[Transition]) -> Vec<Result<JobRecord, StoreError>> {
        let mut out = Vec::with_capacity(ts.len());
        for t in ts {
            out.push(self.transition(t).await);
        }
        out
    }

    /// Appends a timeline note that does not change the job (event from = to = the current
    /// state), e.g. "re-attached after restart". [`StoreError::NotFound`] if there is no such job.
    async fn add_note(&self, id: &str, at_ms: i64, message: &str) -> Result<(), StoreError>;

    /// The job's timeline, oldest first. [`StoreError::NotFound`] if there is no such job.
    async fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError>;

    /// Per (namespace, level) with queued jobs: how many are queued and the oldest `enqueued_at`
    /// among them. Sorted by namespace, then level (bytewise).
    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError>;

    /// Time series over the job history, per (namespace, level) that had anything in the range
    /// or waiting or holding resources all along it, sorted by namespace then level (bytewise):
    /// queue length, wait-time percentiles, jobs finished by outcome, and the jobs, CPU and
    /// memory held by admitted jobs, one [`HistoryPoint`] per bucket. Whole hours that are
    /// rolled up (see [`Store::roll_up_history`]) are read from one row per hour and series,
    /// the rest in SQL over indexes on the time columns; the answer is the same either way.
    /// [`StoreError::BadQuery`] if the step or the range is invalid (see
    /// [`HistoryQuery::buckets`]).
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError>;

    /// Rolls up the history of closed hours, one bounded step: drops rollups that writes into
    /// rolled-up hours made stale, then rolls up the next hours (at most [`ROLL_UP_HOURS`](crate::ROLL_UP_HOURS) with
    /// anything in them) that ended before `now_ms` minus [`ROLL_UP_MARGIN_MS`](crate::ROLL_UP_MARGIN_MS), in one
    /// transaction. Cheap when there is nothing to do: call it periodically. Safe to call from
    /// several processes at once. [`RollUp::done`] tells whether another call has work now.
    async fn roll_up_history(&self, now_ms: i64) -> Result<RollUp, StoreError>;

    // --- Orchestration: schedules, retries, dead-letter queue, queue TTL, requeue, purge. ---

    /// Inserts a schedule (its `updated_at` = `created_at`, no last fire).
    /// [`StoreError::DuplicateSchedule`] if one with this namespace and name exists.
    async fn create_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord, StoreError>;

    /// The schedule with this namespace and name, if any.
    async fn get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Schedules, of one namespace or all, sorted by namespace then name (bytewise).
    async fn list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Schedules not suspended whose next fire time is at or before `now_ms`, earliest first.
    async fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Suspends or resumes a schedule and sets its next fire time (none while suspended), with
    /// `message` as its last message. [`StoreError::NoSchedule`] if there is no such schedule.
    async fn set_schedule_suspended(
        &self,
        namespace: &str,
        name: &str,
        suspended: bool,
        next_fire_at_ms: Option<i64>,
        at_ms: i64,
        message: &str,
    ) -> Result<ScheduleRecord, StoreError>;

    /// Replaces a schedule's definition (expression, time zone, policies, suspended, level,
    /// template, source) and its next fire time with those of `s`, as of `at_ms` (its
    /// `updated_at`); its creation time, last fire, last run and last message stay
    /// (`s.created_at_ms` is not used). [`StoreError::NoSchedule`] if there is no such schedule.
    async fn update_schedule(
        &self,
        s: &NewSchedule,
        at_ms: i64,
    ) -> Result<ScheduleRecord, StoreError>;

    /// Deletes a schedule; its runs stay (with their link). False if there was none.
    async fn delete_schedule(&self, namespace: &str, name: &str) -> Result<bool, StoreError>;

    /// One check of a schedule, in one transaction: with `advance`, moves the next fire time if
    /// it is still the expected one and the schedule is not suspended (else
    /// [`StoreError::Stale`], nothing written); inserts the run, if any, as a queued job linked
    /// to the schedule (as [`Store::insert_job`]) and records it as the last fire; sets the
    /// last message. [`StoreError::NoSchedule`] if there is no such schedule. Returns the run.
    async fn fire_schedule(&self, f: &Fire) -> Result<Option<JobRecord>, StoreError>;

    /// The orchestration columns of a job; none if there is no such job.
    async fn job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError>;

    /// Jobs of the filter's set, at most `limit` (0 is taken as 1), dead letters newest first,
    /// queued jobs in queue order.
    async fn select_jobs(&self, filter: &SetFilter, limit: u32)
    -> Result<Vec<OrchJob>, StoreError>;

    /// Deletes the jobs among `ids` that are still in `set` (with their labels and timeline);
    /// returns the ids deleted.
    async fn delete_jobs(&self, set: JobSet, ids: &[String]) -> Result<Vec<String>, StoreError>;

    /// Failed jobs whose failure has not been handled (no failure class, not dead-lettered),
    /// ordered by (`updated_at`, id).
    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError>;

    /// Sends an unsettled failed job at attempt `r.attempt` back to `queued` as attempt + 1, in
    /// one transaction with a timeline event: `enqueued_at` = `retry_at` = `queued_at` =
    /// `r.eligible_at_ms`; run fields (started, finished, backend ref, exit code) cleared; spec and
    /// demand replaced when given; the queue deadline moved to `r.eligible_at_ms` plus the
    /// (new) spec's `maxQueueWait`. [`StoreError::Stale`] if the job is not in that state;
    /// [`StoreError::NotFound`] if there is no such job.
    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError>;

    /// Sends a job whose run was stopped to make room for a job of higher priority back to
    /// `queued`, in one transaction with its timeline event: as [`Store::transition`] from
    /// `p.from` (submitted or running) to queued (the next run is `attempt` + 1, run fields
    /// cleared, `enqueued_at` unchanged so it keeps its place), and also `retry_round` + 1, so
    /// the preempted run does not count against its retries, and `preemptions` + 1
    /// ([`JobOrch::preemptions`]). No failure is recorded. [`StoreError::Conflict`] if the job is
    /// not in `p.from`; [`StoreError::NotFound`] if there is no such job;
    /// [`StoreError::InvalidTransition`] if `p.from` is neither submitted nor running.
    async fn preempt_job(&self, p: &Preempted) -> Result<JobRecord, StoreError>;

    /// Dead-letters an unsettled failed job at attempt `d.attempt` (state stays failed; its
    /// message, the last error, is kept), with a timeline note. Errors as [`Store::retry_job`].
    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError>;

    /// Moves a queued job to failed and into the dead-letter queue (failure class `expired`,
    /// message and reason `reason`; queue deadline cleared), with a timeline event.
    /// [`StoreError::Conflict`] if it is no longer queued; [`StoreError::NotFound`] if there is
    /// no such job.
    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError>;

    /// Moves a dead-lettered job back to `queued` as attempt + 1, beginning a new round of
    /// retries, at the tail (`enqueued_at` = now) or the front (just before the earliest job
    /// queued in its namespace and level) of its level; clears the dead-letter and run fields;
    /// restarts its queue-TTL clock (queue deadline `r.at_ms` plus its `maxQueueWait`); keeps
    /// its timeline and adds an event. [`StoreError::NotDeadLettered`] if it is not in the
    /// dead-letter queue; [`StoreError::NotFound`] if there is no such job.
    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError>;

    /// Queued jobs whose queue deadline ([`JobOrch::queue_deadline_ms`]) is before `now_ms`,
    /// i.e. that waited longer than their `maxQueueWait`: earliest deadline first (then id), at
    /// most `limit` (0 is taken as 1). Reads only the index entries of those jobs, however long
    /// the queue is.
    async fn queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError>;

    /// How many jobs are in the dead-letter queue.
    async fn count_dead_letters(&self) -> Result<u64, StoreError>;

    // --- Authentication and the audit log. ---

    /// Inserts an API token (not revoked). [`StoreError::DuplicateToken`] if its id or its
    /// secret hash is taken.
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError>;

    /// The token whose secret hash is `secret_hash`, revoked or expired ones included (the
    /// caller checks [`TokenRecord::is_active`]); none if there is none.
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, revoked and expired ones included, oldest first (then by id).
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a token at `at_ms` (a token revoked already keeps its first revocation time);
    /// returns it. [`StoreError::NoToken`] if there is no such token.
    async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<TokenRecord, StoreError>;

    /// How many tokens were ever made (revoked and expired ones included).
    async fn count_tokens(&self) -> Result<u64, StoreError>;

    /// Appends an entry to the audit log. Free text (subject, detail, peer) is made storable
    /// as transition messages are; ids, actors, actions, namespaces and targets are exact.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Appends each entry as [`Store::record_audit`] does, all in one transaction where the
    /// database allows (group commit): one result per entry, in order, each as it would be
    /// alone. Every entry written is durable when this returns. Default: one
    /// [`Store::record_audit`] after another.
    async fn record_audits(&self, entries: &[AuditEntry]) -> Vec<Result<(), StoreError>> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            out.push(self.record_audit(entry).await);
        }
        out
    }

    /// Audit entries matching `filter`, newest first (time, then id, descending), at most
    /// `limit` (0 is taken as 1).
    async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes the audit entries older than `before_ms`; returns how many.
    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError>;

    // --- Replicas: the leader's lease, fencing, and the change feed. ---

    /// Takes the lease `name` for `holder` until the database's clock passes now + `ttl_ms`,
    /// if it is free: never taken, expired, released, or held by `holder` itself. Its epoch
    /// grows by one (1 for the first). None if another holder has it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError>;

    /// Extends `lease` to the database's now + `ttl_ms` if it still has this holder and epoch
    /// (even if it expired meanwhile, as long as nobody took it); None if it was taken.
    async fn renew_lease(&self, lease: &Lease, ttl_ms: i64) -> Result<Option<Lease>, StoreError>;

    /// Releases `lease` at once if it still has this holder and epoch (its epoch stays; the
    /// next acquisition raises it). Releasing a lease that was taken over does nothing.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The lease as stored, if it was ever taken.
    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, StoreError>;

    /// This store with every write fenced by `lease`: each write transaction first checks, in
    /// the transaction, that the lease still has its holder and epoch, and fails with
    /// [`StoreError::Fenced`] without writing anything if not. Reads are not affected.
    fn fenced(&self, lease: &Lease) -> Arc<dyn Store>;

    /// Follows the writes of other processes sharing the database (PostgreSQL: LISTEN/NOTIFY):
    /// each job write (insert, state change, retry, requeue, expiry, a schedule's run, delete)
    /// committed by another store object is reported by id, and stop requests
    /// ([`Store::request_stop`]) from anyone. None where there is no such feed (SQLite, whose
    /// database has one server). The feed ends when the receiver is dropped.
    async fn changes(&self) -> Result<Option<mpsc::Receiver<StoreChange>>, StoreError>;

    /// Asks whoever follows [`Store::changes`] (the leader) to stop the run of job `id`.
    /// False where there is no feed.
    async fn request_stop(&self, id: &str) -> Result<bool, StoreError>;

    /// Replaces a schedule's template (the job every run is made from) and sets `message` as
    /// its last message: right-sizing advice applied on request. [`StoreError::NoSchedule`] if
    /// there is no such schedule.
    async fn set_schedule_template(
        &self,
        namespace: &str,
        name: &str,
        template: &serde_json::Value,
        at_ms: i64,
        message: &str,
    ) -> Result<sluice_core::schedule::ScheduleRecord, StoreError>;

    /// Records what a run held and used (once per run; recording the same job attempt again
    /// replaces it). A write: fenced like the others.
    async fn put_usage(&self, record: &sluice_core::cost::UsageRecord) -> Result<(), StoreError>;

    /// The usage records of runs that ended in the filter's range, oldest end first, at most
    /// `limit` (0 is taken as 1).
    async fn usage(
        &self,
        filter: &crate::usage::UsageFilter,
        limit: u32,
    ) -> Result<Vec<sluice_core::cost::UsageRecord>, StoreError>;

    /// Records what a run produced (a dbt run's nodes), once per run; recording the same job
    /// attempt again replaces it. A write: fenced like the others.
    async fn put_run_result(
        &self,
        job_id: &str,
        attempt: u32,
        at_ms: i64,
        result: &sluice_core::run_result::RunResult,
    ) -> Result<(), StoreError>;

    /// The results of a job's runs, by attempt (oldest first).
    async fn run_results(
        &self,
        job_id: &str,
    ) -> Result<Vec<(u32, sluice_core::run_result::RunResult)>, StoreError>;

    // --- Workflows: definitions, runs and their steps. ---

    /// Creates the workflow `w` names, or replaces its definition if its document differs
    /// (its creation time, runs and last fire stay; the next fire time too unless the
    /// schedule's expression, zone or suspension changed), or does nothing when it is the same.
    async fn apply_workflow(
        &self,
        w: &NewWorkflow,
    ) -> Result<(WorkflowApplied, WorkflowRecord), StoreError>;

    /// The workflow with this namespace and name, if any.
    async fn get_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<WorkflowRecord>, StoreError>;

    /// Workflows, of one namespace or all, by namespace then name.
    async fn list_workflows(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// Workflows whose next fire time is at or before `now_ms`, earliest first.
    async fn due_workflows(&self, now_ms: i64) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// One start of a workflow, in one transaction: with `advance`, moves the next fire time
    /// if it still is the expected one (else [`StoreError::Stale`], nothing written); inserts
    /// the run, if any, with its steps waiting (attempt 1, version 1) and records it as the
    /// last fire; sets the last message. [`StoreError::NoWorkflow`] if there is no such
    /// workflow. Returns the run.
    async fn fire_workflow(
        &self,
        f: &WorkflowFire,
    ) -> Result<Option<WorkflowRunRecord>, StoreError>;

    /// The run with this id, with its steps, if any.
    async fn get_workflow_run(&self, id: &str) -> Result<Option<WorkflowRunRecord>, StoreError>;

    /// Runs matching `filter`, newest first, with their steps, at most `limit` (0 is taken as
    /// 1). Runs are never removed with their jobs: they are the workflows' history.
    async fn list_workflow_runs(
        &self,
        filter: &RunFilter,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, StoreError>;

    /// One write of a run, in one transaction, if its version still is `u.expected_version`
    /// (else [`StoreError::Stale`], nothing written): each step change (a start inserts its
    /// job queued, as [`Store::insert_job`]), then the run's state, cancel request, attempt
    /// and message; the version grows by one. [`StoreError::NoWorkflowRun`] if there is no
    /// such run. Returns the run as written and the jobs inserted.
    async fn update_workflow_run(
        &self,
        u: &RunUpdate,
    ) -> Result<(WorkflowRunRecord, Vec<JobRecord>), StoreError>;

    /// Closes the connections (waiting for operations in flight). Calls made afterwards fail.
    async fn close(&self);
}

/// Which jobs [`Store::list_jobs`] returns. Every field narrows; the default matches every job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs of this namespace.
    pub namespace: Option<String>,
    /// Only jobs of one of these namespaces (the caller's); `Some(empty)` matches no job,
    /// `None` does not narrow.
    pub namespace_in: Option<Vec<String>>,
    /// Only jobs in one of these states; empty means any state.
    pub states: Vec<JobState>,
    /// Only jobs carrying all of these labels (key = value).
    pub labels: Vec<(String, String)>,
    /// Only jobs created at or after this time.
    pub created_from_ms: Option<i64>,
    /// Only jobs created before this time (exclusive).
    pub created_to_ms: Option<i64>,
    /// Only jobs with exactly this name.
    pub name: Option<String>,
}

/// One page of [`Store::list_jobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// Pass this to get the next page; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

/// A compare-and-set state change for [`Store::transition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The job.
    pub id: String,
    /// The state the caller believes the job is in.
    pub from: JobState,
    /// The state to move to.
    pub to: JobState,
    /// When the change happens.
    pub at_ms: i64,
    /// Why: becomes the job's message and the timeline event's message.
    pub message: String,
    /// The backend's handle for the run, if this change learned it.
    pub backend_ref: Option<String>,
    /// The run's exit code, if this change learned it.
    pub exit_code: Option<i32>,
}

impl Transition {
    /// A transition with no backend ref and no exit code.
    pub fn new(
        id: impl Into<String>,
        from: JobState,
        to: JobState,
        at_ms: i64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            from,
            to,
            at_ms,
            message: message.into(),
            backend_ref: None,
            exit_code: None,
        }
    }

    /// Sets the backend ref.
    pub fn with_backend_ref(mut self, backend_ref: impl Into<String>) -> Self {
        self.backend_ref = Some(backend_ref.into());
        self
    }

    /// Sets the exit code.
    pub fn with_exit_code(mut self, exit_code: i32) -> Self {
        self.exit_code = Some(exit_code);
        self
    }
}

/// Queue depth of one (namespace, level), from [`Store::queue_stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStat {
    /// The namespace.
    pub namespace: String,
    /// The priority level.
    pub level: String,
    /// How many jobs are queued.
    pub queued: u64,
    /// The oldest `enqueued_at` among them.
    pub oldest_enqueued_at_ms: i64,
}
