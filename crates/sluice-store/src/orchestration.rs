//! Types of the orchestration part of the [`crate::Store`]: schedules firing runs, retries,
//! the dead-letter queue (DLQ), queue TTLs, requeue and purge.
//!
//! A dead-lettered job stays in state `failed`, with `dlq_at` and `dlq_reason` set (a flag, not
//! a state, so that every other reader of job states is unchanged). A failed job whose failure
//! has not been handled yet has no `failure_class`: the server either retries it (back to
//! `queued`, next attempt) or dead-letters it.

use sluice_core::job::Demand;
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::retry::JobPolicy;
use sluice_core::stored::StoredJob;

/// Longest queue TTL stored, in milliseconds (`i64::MAX / 4`, some 73 million years): a
/// `maxQueueWait` above it is stored as this, so that a queue deadline never overflows.
pub(crate) const QUEUE_TTL_CAP_MS: i64 = i64::MAX / 4;

/// The queue TTL (`maxQueueWait`) of a policy in milliseconds, capped at
/// [`QUEUE_TTL_CAP_MS`]; none when the policy has none.
pub(crate) fn queue_ttl_ms(policy: &JobPolicy) -> Option<i64> {
    policy.max_queue_wait_secs.map(|secs| {
        let ms = secs.saturating_mul(1000);
        i64::try_from(ms).map_or(QUEUE_TTL_CAP_MS, |ms| ms.min(QUEUE_TTL_CAP_MS))
    })
}

/// The orchestration columns of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOrch {
    /// The schedule (in the job's namespace) that started it.
    pub schedule: Option<String>,
    /// The fire time the run stands for (none for a manual trigger).
    pub scheduled_for_ms: Option<i64>,
    /// The attempt that began the current round of retries (1, or the attempt of the last
    /// requeue from the DLQ).
    pub retry_round: u32,
    /// When a retry waiting on backoff becomes eligible (the last one scheduled).
    pub retry_at_ms: Option<i64>,
    /// When a retry or a requeue last put the job in its queue (the queue-TTL clock; none: the
    /// job's `enqueued_at`).
    pub queued_at_ms: Option<i64>,
    /// While the job is queued and has a `maxQueueWait`: its queue deadline, the queue-TTL
    /// clock's start ([`JobOrch::queue_clock_start`]) plus the TTL; the job expires once the
    /// time is past it. None otherwise.
    pub queue_deadline_ms: Option<i64>,
    /// How its last failure was settled: a failure class (`application`, `oom`, ...),
    /// `expired`, or `unclassified` (failed before orchestration existed). None while a failure
    /// is not handled yet, and for jobs that did not fail.
    pub failure_class: Option<String>,
    /// When it entered the dead-letter queue (none: not in it).
    pub dlq_at_ms: Option<i64>,
    /// Why it was dead-lettered.
    pub dlq_reason: Option<String>,
    /// How many times it was preempted ([`crate::Store::preempt_job`]).
    pub preemptions: u32,
}

/// A submitted or running job stopped to make room for a job of higher priority, going back
/// to its queue ([`crate::Store::preempt_job`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preempted {
    /// The job.
    pub id: String,
    /// The state it is expected in: submitted or running.
    pub from: sluice_core::job::JobState,
    /// When.
    pub at_ms: i64,
    /// The timeline message ("preempted by ...").
    pub message: String,
}

impl JobOrch {
    /// Attempts made in the current round, from the job's attempt counter.
    pub fn attempt_in_round(&self, attempt: u32) -> u32 {
        attempt.saturating_sub(self.retry_round.max(1)) + 1
    }

    /// When the queue-TTL clock of a queued job started.
    pub fn queue_clock_start(&self, job: &JobRecord) -> i64 {
        self.queued_at_ms.unwrap_or(job.enqueued_at_ms)
    }
}

/// A job and its orchestration columns.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchJob {
    /// The job.
    pub job: JobRecord,
    /// Its orchestration columns.
    pub orch: JobOrch,
}

/// Which jobs a [`SetFilter`] selects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSet {
    /// Dead-lettered jobs (state failed, in the DLQ), newest dead letter first.
    DeadLetters,
    /// Queued jobs, in queue order (`enqueued_at`, id).
    Queued,
}

/// Selects jobs of a [`JobSet`] for listing, requeue or purge. Every field narrows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFilter {
    /// The set.
    pub set: JobSet,
    /// Only these ids (empty: any).
    pub ids: Vec<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only jobs of one of these namespaces (the caller's); `Some(empty)` selects no job,
    /// `None` does not narrow. Not a filter for [`SetFilter::narrows`]: a caller's own scope
    /// does not stand for an explicit selection.
    pub namespace_in: Option<Vec<String>>,
    /// Only this priority level.
    pub level: Option<String>,
    /// Only runs of this schedule.
    pub schedule: Option<String>,
    /// Only jobs with all of these labels.
    pub labels: Vec<(String, String)>,
    /// Only jobs that entered the set before this time: dead-lettered before it, or (queued)
    /// whose queue clock started before it.
    pub before_ms: Option<i64>,
}

impl SetFilter {
    /// Every job of `set`.
    pub fn all(set: JobSet) -> Self {
        SetFilter {
            set,
            ids: Vec::new(),
            namespace: None,
            namespace_in: None,
            level: None,
            schedule: None,
            labels: Vec::new(),
            before_ms: None,
        }
    }

    /// True when some field narrows the selection.
    pub fn narrows(&self) -> bool {
        !self.ids.is_empty()
            || self.namespace.is_some()
            || self.level.is_some()
            || self.schedule.is_some()
            || !self.labels.is_empty()
            || self.before_ms.is_some()
    }
}

/// Sends a failed job back to its queue for its next attempt ([`crate::Store::retry_job`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryJob {
    /// The job.
    pub id: String,
    /// The attempt that failed (the job's current attempt): a compare-and-set guard.
    pub attempt: u32,
    /// When this is decided.
    pub at_ms: i64,
    /// When the retry becomes eligible (backoff): the job's new `enqueued_at`, so it joins the
    /// tail of its level then.
    pub eligible_at_ms: i64,
    /// Timeline message.
    pub message: String,
    /// A changed job (an OOM retry with more memory).
    pub stored: Option<StoredJob>,
    /// The demand of the changed spec.
    pub demand: Option<Demand>,
}

/// Dead-letters a failed job ([`crate::Store::dead_letter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The job.
    pub id: String,
    /// The attempt that failed (the job's current attempt): a compare-and-set guard.
    pub attempt: u32,
    /// When.
    pub at_ms: i64,
    /// The failure class of the last attempt.
    pub failure_class: String,
    /// Why it is not retried.
    pub reason: String,
}

/// Where a requeued job goes in its (namespace, level) queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeuePlace {
    /// After every job queued now.
    Tail,
    /// Before every job queued now.
    Front,
}

/// Moves a dead-lettered job back to its queue ([`crate::Store::requeue_dead_letter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    /// The job.
    pub id: String,
    /// When.
    pub at_ms: i64,
    /// Tail or front of its level.
    pub place: RequeuePlace,
    /// Timeline message.
    pub message: String,
}

/// A run of a schedule to insert with [`crate::Store::fire_schedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRun {
    /// The job.
    pub job: NewJob,
    /// The fire time it stands for (none for a manual trigger).
    pub scheduled_for_ms: Option<i64>,
}

/// Moving a schedule's next fire time, guarded by compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The next fire time the caller read.
    pub expected_next_fire_at_ms: Option<i64>,
    /// The new next fire time.
    pub next_fire_at_ms: Option<i64>,
}

/// One check of a schedule ([`crate::Store::fire_schedule`]): optionally start a run, optionally
/// move the next fire time, record what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// The schedule's namespace.
    pub namespace: String,
    /// The schedule's name.
    pub name: String,
    /// When.
    pub at_ms: i64,
    /// Move the next fire time (a due check); none for a manual trigger.
    pub advance: Option<Advance>,
    /// The run to start, if any.
    pub run: Option<ScheduledRun>,
    /// What happened, kept as the schedule's last message.
    pub message: String,
}
