//! Orchestration around the queues: schedules that fire runs, retries of failed attempts by
//! failure class, the dead-letter queue (DLQ), queue TTLs, requeue and purge.
//!
//! [`run`] is called once per submitter tick, after the reconciler (so that failures seen in this
//! tick are handled at once) and before the scheduling cycle (so that runs started now are
//! considered at once). Every decision is taken by a pure function of `sluice_core` with the time
//! passed in, and its outcome is one compare-and-set transaction of the store; all state (next
//! fire times, retry times, DLQ flags) is absolute and stored, so a restart loses nothing: a
//! schedule due while sluice was down follows its missed-run policy, a retry waiting on backoff
//! is still run when its time comes.
//!
//! - **Schedules** ([`fire_schedules`]): each due schedule is planned by
//!   [`sluice_core::schedule::plan_fire`]; a run is an ordinary job linked to its schedule (label
//!   `sluice.io/schedule`), queued at the template's level; the concurrency policy decides about
//!   runs still active (Forbid skips, Replace cancels them first).
//! - **Retries** ([`settle_failures`]): each failed job whose failure is not handled yet is
//!   classified ([`sluice_core::retry::classify`], reading the run's log for
//!   `java.lang.OutOfMemoryError`), then retried after a backoff (back to `queued` as the next
//!   attempt, eligible at an absolute time; an OOM retry may raise the memory) or dead-lettered.
//! - **Queue TTL** ([`expire_queued`]): a queued job that waited longer than its `maxQueueWait`
//!   is moved to the DLQ ("expired in queue"). The store keeps each queued job's deadline in an
//!   index ([`sluice_store::Store::queued_past_deadline`]), so a tick reads only the expired
//!   jobs, not the queue.

use std::collections::BTreeSet;

use sluice_backend::{BackendError, RunRef};
use sluice_core::capacity::fits_empty;
use sluice_core::job::{JobRecord, JobState, NewJob};
use sluice_core::retry::{
    self, Decision, FailureClass, FailureFacts, JAVA_OOM, JobPolicy, classify, decide, jitter_seed,
    stored_spec,
};
use sluice_core::schedule::{
    ConcurrencyAction, NewSchedule, SCHEDULE_LABEL, ScheduleRecord, concurrency_action,
    parse_schedule, plan_fire,
};
use sluice_core::sizing::job_demand;
use sluice_core::spec::{Job, ParseOptions, SpecError};
use sluice_core::stored::{decode_max_queue_wait_secs, decode_policy};
use sluice_store::{
    Advance, DeadLetter, Fire, JobSet, OrchJob, Requeue, RequeuePlace, RetryJob, ScheduledRun,
    SetFilter, StoreError, Transition,
};

use crate::scheduler::TickError;
use crate::state::AppState;

/// Most bytes of a run's log searched for `java.lang.OutOfMemoryError`.
pub const OOM_LOG_SCAN_BYTES: u64 = 16 << 20;
/// Most queued jobs expired per tick (any others past their deadline expire in the next ticks).
pub const TTL_EXPIRE_LIMIT: u32 = 100_000;
/// Queued jobs past their deadline read from the store at a time.
pub const TTL_BATCH: u32 = 1_000;
/// Most jobs one requeue or purge request touches.
pub const BULK_LIMIT: u32 = 10_000;

/// Errors of the orchestration operations the API calls.
#[derive(Debug, thiserror::Error)]
pub enum OrchError {
    /// The document or a field is invalid (400).
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// The template could never run on this backend (422).
    #[error("{0}")]
    NeverFits(String),
    /// A request that would touch every job without saying so (400).
    #[error("{0}")]
    NoFilter(String),
    /// The store failed or refused (its variants map to 404 / 409 / 500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Encoding JSON failed (a bug).
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Runs every orchestration step of one tick at `now_ms`: fires due schedules, settles failed
/// attempts (retry or DLQ) and expires queued jobs past their queue TTL.
pub async fn run(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    fire_schedules(state, now_ms).await?;
    settle_failures(state, now_ms).await?;
    expire_queued(state, now_ms).await?;
    Ok(())
}

/// How late a fire time may be seen and still count as on time (not missed): a minute, or four
/// scheduling intervals if that is longer.
pub fn on_time_ms(state: &AppState) -> i64 {
    let interval = i64::try_from(state.config.scheduler.interval_ms).unwrap_or(i64::MAX);
    interval.saturating_mul(4).max(60_000)
}

fn levels_opts(state: &AppState) -> ParseOptions<'_> {
    ParseOptions {
        priority: None,
        levels: &state.levels,
    }
}

/// Parses and validates a schedule document and stores it, next fire time computed from
/// `now_ms` (none when created suspended). The template must fit the empty backend.
pub async fn create_schedule(
    state: &AppState,
    text: &str,
    now_ms: i64,
) -> Result<ScheduleRecord, OrchError> {
    let sched = parse_schedule(text, levels_opts(state), now_ms)?;
    job_demand(&sched.template)?;
    let demand = state.backend.demand(&sched.template).map_err(|e| match e {
        BackendError::Rejected(m) => OrchError::NeverFits(format!(
            "the runs of schedule {}/{} can never run on the {} backend: {m}",
            sched.namespace,
            sched.name,
            state.backend.kind()
        )),
        other => OrchError::Backend(other),
    })?;
    let report = state.backend.capacity().await?;
    if !report.snapshot.allocatable.is_empty()
        && let Err(nofit) = fits_empty(&demand, &report.snapshot.allocatable)
    {
        return Err(OrchError::NeverFits(format!(
            "the runs of schedule {}/{} can never run on the {} backend: {nofit}",
            sched.namespace,
            sched.name,
            state.backend.kind()
        )));
    }
    if let Some(why) = state.backend.never_runs(&sched.template, &demand) {
        return Err(OrchError::NeverFits(format!(
            "the runs of schedule {}/{} can never run on the {} backend: {why}",
            sched.namespace,
            sched.name,
            state.backend.kind()
        )));
    }
    let cadence = sched.cadence(now_ms)?;
    let next = if sched.suspend {
        None
    } else {
        cadence.next_after(now_ms)
    };
    let template = stored_spec(&sched.template, &sched.policy)?;
    let rec = state
        .store
        .create_schedule(&NewSchedule {
            namespace: sched.namespace.clone(),
            name: sched.name.clone(),
            cron: sched.cron.clone(),
            time_zone: sched.time_zone.clone(),
            concurrency: sched.concurrency,
            missed_runs: sched.missed_runs,
            catch_up_window_secs: sched.catch_up_window_secs,
            suspended: sched.suspend,
            level: sched.template.level.clone(),
            template,
            source: text.to_string(),
            created_at_ms: now_ms,
            next_fire_at_ms: next,
        })
        .await?;
    state.wake.notify_one();
    Ok(rec)
}

/// Suspends (no fire times) or resumes (next fire time from `now_ms`; fire times passed while
/// suspended are not run) a schedule.
pub async fn set_suspended(
    state: &AppState,
    namespace: &str,
    name: &str,
    suspend: bool,
    now_ms: i64,
) -> Result<ScheduleRecord, OrchError> {
    let s = state
        .store
        .get_schedule(namespace, name)
        .await?
        .ok_or_else(|| StoreError::NoSchedule {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let (next, message) = if suspend {
        (None, "suspended by a user".to_string())
    } else {
        (
            s.cadence()?.next_after(now_ms),
            "resumed by a user".to_string(),
        )
    };
    let rec = state
        .store
        .set_schedule_suspended(namespace, name, suspend, next, now_ms, &message)
        .await?;
    state.wake.notify_one();
    Ok(rec)
}

/// Starts a run of a schedule now ("run now"), whatever its next fire time, suspension or
/// concurrency policy; the next fire time is unchanged.
pub async fn trigger(
    state: &AppState,
    namespace: &str,
    name: &str,
    now_ms: i64,
) -> Result<JobRecord, OrchError> {
    let s = state
        .store
        .get_schedule(namespace, name)
        .await?
        .ok_or_else(|| StoreError::NoSchedule {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let job = run_of(state, &s, now_ms)?;
    let id = job.id.clone();
    let rec = state
        .store
        .fire_schedule(&Fire {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            at_ms: now_ms,
            advance: None,
            run: Some(ScheduledRun {
                job,
                scheduled_for_ms: None,
            }),
            message: format!("started run {id} (triggered by a user)"),
        })
        .await?
        .ok_or_else(|| StoreError::NotFound(id))?;
    state.metrics.job_submitted(&rec.namespace, &rec.level);
    state.wake.notify_one();
    Ok(rec)
}

/// The job a run of schedule `s` starts as: the template, labelled with the schedule.
fn run_of(state: &AppState, s: &ScheduleRecord, now_ms: i64) -> Result<NewJob, OrchError> {
    let mut job: Job = serde_json::from_value(s.template.clone()).map_err(|e| {
        StoreError::Corrupt(format!(
            "the template of schedule {}/{} does not decode: {e}",
            s.namespace, s.name
        ))
    })?;
    let policy = decode_policy(&s.template).map_err(|e| {
        StoreError::Corrupt(format!(
            "the template of schedule {}/{}: {e}",
            s.namespace, s.name
        ))
    })?;
    job.labels.insert(SCHEDULE_LABEL.into(), s.name.clone());
    job_demand(&job)?;
    let demand = state.backend.demand(&job)?;
    Ok(NewJob {
        id: state.new_id(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        level: job.level.clone(),
        labels: job.labels.clone(),
        spec: stored_spec(&job, &policy)?,
        demand,
        created_at_ms: now_ms,
    })
}

/// The runs of a schedule still active (queued, admitted, submitted or running).
async fn active_runs(state: &AppState, s: &ScheduleRecord) -> Result<Vec<JobRecord>, StoreError> {
    let mut out = Vec::new();
    let candidates = state
        .store
        .jobs_in_states(&[
            JobState::Queued,
            JobState::Admitted,
            JobState::Submitted,
            JobState::Running,
        ])
        .await?;
    for j in candidates {
        if j.namespace != s.namespace
            || j.labels.get(SCHEDULE_LABEL).map(String::as_str) != Some(s.name.as_str())
        {
            continue;
        }
        // The label could be copied onto any job: trust the store's link.
        if let Some(o) = state.store.job_orch(&j.id).await?
            && o.schedule.as_deref() == Some(s.name.as_str())
        {
            out.push(j);
        }
    }
    Ok(out)
}

/// Cancels a job from inside a tick (the cycle lock is held): stops its run if it has one.
async fn cancel_job(state: &AppState, rec: &JobRecord, message: &str, now_ms: i64) {
    if matches!(rec.state, JobState::Submitted | JobState::Running) {
        let run = RunRef {
            job_id: rec.id.clone(),
            attempt: rec.attempt,
            backend_ref: rec.backend_ref.clone(),
        };
        if let Err(e) = state.backend.cancel(&run).await {
            tracing::warn!(job = %rec.id, "cancel for Replace: {e}");
        }
    }
    let t = Transition::new(
        rec.id.clone(),
        rec.state,
        JobState::Cancelled,
        now_ms,
        message,
    );
    match state.store.transition(&t).await {
        Ok(after) => state.metrics.transitioned(t.from, &after),
        Err(e) => tracing::info!(job = %rec.id, "not cancelled for Replace: {e}"),
    }
}

/// Fires every due schedule once (see the module documentation).
pub async fn fire_schedules(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    for s in state.store.due_schedules(now_ms).await? {
        if let Err(e) = fire_one(state, &s, now_ms).await {
            match e {
                // Another replica or a user changed it meanwhile: look again next tick.
                OrchError::Store(StoreError::Stale(_) | StoreError::NoSchedule { .. }) => {}
                OrchError::Store(e) => return Err(e.into()),
                OrchError::Backend(e) => return Err(e.into()),
                other => {
                    // The template no longer makes a job (a level removed from the
                    // configuration, say): suspend the schedule and say why, instead of failing
                    // every tick.
                    let message = format!("suspended: cannot start a run: {other}");
                    tracing::warn!(schedule = %format!("{}/{}", s.namespace, s.name), "{message}");
                    state
                        .store
                        .set_schedule_suspended(&s.namespace, &s.name, true, None, now_ms, &message)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

async fn fire_one(state: &AppState, s: &ScheduleRecord, now_ms: i64) -> Result<(), OrchError> {
    let Some(next) = s.next_fire_at_ms else {
        return Ok(());
    };
    let cadence = s.cadence()?;
    let window = i64::try_from(s.catch_up_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let plan = plan_fire(
        &cadence,
        s.missed_runs,
        window,
        next,
        now_ms,
        on_time_ms(state),
    );
    let mut parts = Vec::new();
    let mut run = None;
    if let Some(for_ms) = plan.fire_for {
        let active = active_runs(state, s).await?;
        let ids: Vec<String> = active.iter().map(|j| j.id.clone()).collect();
        let start = match concurrency_action(s.concurrency, &ids) {
            ConcurrencyAction::Fire => true,
            ConcurrencyAction::Skip { reason } => {
                let note = format!(
                    "schedule {} skipped its run for {}: this run is still active (concurrencyPolicy Forbid)",
                    s.name,
                    cadence.format(for_ms)
                );
                for j in &active {
                    if let Err(e) = state.store.add_note(&j.id, now_ms, &note).await {
                        tracing::debug!(job = %j.id, "note: {e}");
                    }
                }
                parts.push(format!("run for {} {reason}", cadence.format(for_ms)));
                false
            }
            ConcurrencyAction::Replace { cancel } => {
                for j in &active {
                    cancel_job(
                        state,
                        j,
                        &format!(
                            "cancelled: replaced by the run of schedule {} for {} (concurrencyPolicy Replace)",
                            s.name,
                            cadence.format(for_ms)
                        ),
                        now_ms,
                    )
                    .await;
                }
                parts.push(format!("replaced run {}", cancel.join(", ")));
                true
            }
        };
        if start {
            let job = run_of(state, s, now_ms)?;
            parts.insert(
                0,
                format!(
                    "started run {} for {}{}",
                    job.id,
                    cadence.format(for_ms),
                    if plan.catch_up {
                        " (catch-up of a run missed while sluice was down)"
                    } else {
                        ""
                    }
                ),
            );
            run = Some(ScheduledRun {
                job,
                scheduled_for_ms: Some(for_ms),
            });
        }
    }
    if let Some((first, last)) = plan.skipped_range {
        let why = if plan.fire_for.is_some() {
            "at most one run per check".to_string()
        } else {
            format!(
                "missedRunPolicy {}, catch-up window {} s",
                s.missed_runs, s.catch_up_window_secs
            )
        };
        parts.push(format!(
            "skipped {} missed fire time(s) from {} to {} ({why})",
            plan.skipped,
            cadence.format(first),
            cadence.format(last)
        ));
    }
    if parts.is_empty() {
        parts.push("no run".into());
    }
    let started = run
        .as_ref()
        .map(|r| (r.job.namespace.clone(), r.job.level.clone()));
    state
        .store
        .fire_schedule(&Fire {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            at_ms: now_ms,
            advance: Some(Advance {
                expected_next_fire_at_ms: Some(next),
                next_fire_at_ms: plan.next_fire_at,
            }),
            run,
            message: parts.join("; "),
        })
        .await?;
    if let Some((ns, level)) = started {
        state.metrics.job_submitted(&ns, &level);
    }
    Ok(())
}

/// Whether the run's log mentions `java.lang.OutOfMemoryError` (read through
/// `Backend::logs`, at most [`OOM_LOG_SCAN_BYTES`]).
async fn log_has_oom(state: &AppState, rec: &JobRecord) -> bool {
    let run = RunRef {
        job_id: rec.id.clone(),
        attempt: rec.attempt,
        backend_ref: rec.backend_ref.clone(),
    };
    let mut offset = 0u64;
    let mut carry = String::new();
    while offset < OOM_LOG_SCAN_BYTES {
        let chunk = match state.backend.logs(&run, offset, 1 << 20).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(job = %rec.id, "log scan: {e}");
                return false;
            }
        };
        let text = format!("{carry}{}", chunk.data);
        if text.contains(JAVA_OOM) {
            return true;
        }
        if chunk.next_offset <= offset {
            return false;
        }
        offset = chunk.next_offset;
        // Keep the end of this chunk, in case the marker spans two chunks.
        let keep = text.len().saturating_sub(JAVA_OOM.len());
        carry = text
            .char_indices()
            .find(|(i, _)| *i >= keep)
            .map(|(i, _)| text[i..].to_string())
            .unwrap_or_default();
    }
    false
}

fn fmt_delay(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", ms.div_ceil(1000))
    }
}

/// Handles every failed attempt not yet handled: retry (after a backoff, maybe with more
/// memory) or dead-letter, by the job's policy and the failure's class.
pub async fn settle_failures(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    for rec in state.store.unsettled_failures().await? {
        match settle_one(state, &rec, now_ms).await {
            Ok(()) | Err(StoreError::Stale(_) | StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn settle_one(state: &AppState, rec: &JobRecord, now_ms: i64) -> Result<(), StoreError> {
    let policy = decode_policy(&rec.spec)
        .map_err(|e| StoreError::Corrupt(format!("job {}: {e}", rec.id)))?;
    let orch = state.store.job_orch(&rec.id).await?.unwrap_or_default();
    let message = rec.message.clone().unwrap_or_default();
    let mut facts = FailureFacts {
        message: &message,
        exit_code: rec.exit_code,
        log_tail: "",
    };
    let mut class = classify(&facts);
    if matches!(class, FailureClass::Application | FailureClass::Watchdog)
        && rec.backend_ref.is_some()
        && log_has_oom(state, rec).await
    {
        facts.log_tail = JAVA_OOM;
        class = classify(&facts);
    }
    let in_round = orch.attempt_in_round(rec.attempt);
    match decide(&policy, class, in_round, jitter_seed(&rec.id, rec.attempt)) {
        Decision::Retry {
            next_attempt_in_round,
            delay_ms,
            raise_memory,
        } => {
            let mut spec = None;
            let mut demand = None;
            let mut note = String::new();
            if let Some((factor, cap)) = raise_memory {
                match raised(state, rec, &policy, factor, cap).await {
                    Ok(Some((s, d, change))) => {
                        spec = Some(s);
                        demand = Some(d);
                        note = format!("; {change}");
                    }
                    Ok(None) => note = "; memory already at oomMemoryCap, not raised".into(),
                    Err(why) => note = format!("; memory not raised: {why}"),
                }
            }
            let eligible = now_ms.saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
            let max = policy.max_attempts();
            let r = RetryJob {
                id: rec.id.clone(),
                attempt: rec.attempt,
                at_ms: now_ms,
                eligible_at_ms: eligible,
                message: format!(
                    "retry: attempt {in_round} of {max} failed ({class}: {message}); attempt \
                     {next_attempt_in_round} of {max} after a backoff of {}, at {}{note}",
                    fmt_delay(delay_ms),
                    crate::api::rfc3339(eligible),
                ),
                spec,
                demand,
            };
            let after = state.store.retry_job(&r).await?;
            state.metrics.job_retried(&after.namespace, &after.level);
            tracing::info!(job = %rec.id, %class, delay_ms, "retrying");
        }
        Decision::GiveUp { reason } => {
            let reason = format!("{reason}, after {in_round} attempt(s)");
            state
                .store
                .dead_letter(&DeadLetter {
                    id: rec.id.clone(),
                    attempt: rec.attempt,
                    at_ms: now_ms,
                    failure_class: class.as_str().into(),
                    reason,
                })
                .await?;
            tracing::info!(job = %rec.id, %class, "dead-lettered");
        }
    }
    Ok(())
}

/// The job's spec and demand with memory raised by `factor` (capped), if it can grow and the
/// result still fits the empty backend.
async fn raised(
    state: &AppState,
    rec: &JobRecord,
    policy: &JobPolicy,
    factor: f64,
    cap: Option<u64>,
) -> Result<Option<(serde_json::Value, sluice_core::job::Demand, String)>, String> {
    let job: Job = serde_json::from_value(rec.spec.clone())
        .map_err(|e| format!("the stored spec does not decode: {e}"))?;
    let Some(r) = retry::raise_memory(&job, factor, cap).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let demand = state.backend.demand(&r.job).map_err(|e| e.to_string())?;
    let report = state.backend.capacity().await.map_err(|e| e.to_string())?;
    if !report.snapshot.allocatable.is_empty()
        && let Err(nofit) = fits_empty(&demand, &report.snapshot.allocatable)
    {
        return Err(format!(
            "{} would never fit the backend ({nofit})",
            r.change
        ));
    }
    if let Some(why) = state.backend.never_runs(&r.job, &demand) {
        return Err(format!(
            "{} would never run on the backend ({why})",
            r.change
        ));
    }
    let spec = stored_spec(&r.job, policy).map_err(|e| e.to_string())?;
    let change = format!("out of memory: {} (demand now {demand})", r.change);
    Ok(Some((spec, demand, change)))
}

/// Moves every queued job that waited longer than its `maxQueueWait` (up to
/// [`TTL_EXPIRE_LIMIT`] of them) to the DLQ, earliest deadline first. Reads only the jobs past
/// their queue deadline, [`TTL_BATCH`] at a time: each one handled leaves the queue (or had
/// already left it), so the next batch holds the next ones.
pub async fn expire_queued(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    let mut handled: u32 = 0;
    while handled < TTL_EXPIRE_LIMIT {
        let batch = state
            .store
            .queued_past_deadline(now_ms, TTL_BATCH.min(TTL_EXPIRE_LIMIT - handled))
            .await?;
        let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        for OrchJob { job, orch } in batch {
            let since = orch.queue_clock_start(&job);
            // The store set the deadline from this policy; should the two disagree, the
            // deadline (what selected the job) still tells the TTL.
            // A policy that does not decode only loses the TTL from the message: the
            // deadline is what selected the job.
            let stored_ttl = decode_max_queue_wait_secs(&job.spec).unwrap_or_else(|e| {
                tracing::warn!(job = %job.id, "{e}");
                None
            });
            let ttl = stored_ttl
                .or_else(|| {
                    let deadline = orch.queue_deadline_ms?;
                    u64::try_from(deadline.saturating_sub(since) / 1000).ok()
                })
                .unwrap_or_default();
            let reason = format!(
                "expired in queue: waited {} s, longer than maxQueueWait ({ttl} s)",
                now_ms.saturating_sub(since) / 1000
            );
            match state.store.expire_queued(&job.id, now_ms, &reason).await {
                Ok(after) => state.metrics.transitioned(JobState::Queued, &after),
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        handled = handled.saturating_add(n);
        if n < TTL_BATCH {
            break;
        }
    }
    Ok(())
}

/// Requeues the dead-lettered jobs that `filter` selects (which must narrow, unless `all`).
pub async fn requeue(
    state: &AppState,
    filter: &SetFilter,
    all: bool,
    place: RequeuePlace,
    now_ms: i64,
) -> Result<Vec<JobRecord>, OrchError> {
    require_filter(filter, all, "requeue")?;
    let picked = state.store.select_jobs(filter, BULK_LIMIT).await?;
    let mut out = Vec::with_capacity(picked.len());
    // Oldest dead letter first, so that tail requeues keep their order.
    for j in picked.into_iter().rev() {
        let r = Requeue {
            id: j.job.id.clone(),
            at_ms: now_ms,
            place,
            message: format!(
                "requeued from the dead-letter queue by a user (to the {} of level {}); \
                 attempt {} begins a new round of retries",
                match place {
                    RequeuePlace::Tail => "tail",
                    RequeuePlace::Front => "front",
                },
                j.job.level,
                j.job.attempt + 1
            ),
        };
        match state.store.requeue_dead_letter(&r).await {
            Ok(rec) => out.push(rec),
            Err(StoreError::NotDeadLettered(_) | StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !out.is_empty() {
        state.wake.notify_one();
    }
    Ok(out)
}

/// What a purge removed (or, on a dry run, would remove).
#[derive(Debug, Clone)]
pub struct Purged {
    /// The jobs selected.
    pub jobs: Vec<OrchJob>,
    /// The ids actually deleted (empty on a dry run).
    pub deleted: BTreeSet<String>,
}

/// Deletes the jobs of `filter`'s set (queued jobs or dead letters) that it selects, which must
/// narrow unless `all`; with `dry_run`, only lists them. Holds the cycle lock so that a queued
/// job is not admitted while it is being deleted.
pub async fn purge(
    state: &AppState,
    filter: &SetFilter,
    all: bool,
    dry_run: bool,
) -> Result<Purged, OrchError> {
    require_filter(filter, all, "purge")?;
    let _cycle = state.cycle_lock.lock().await;
    let jobs = state.store.select_jobs(filter, BULK_LIMIT).await?;
    let deleted = if dry_run {
        BTreeSet::new()
    } else {
        let ids: Vec<String> = jobs.iter().map(|j| j.job.id.clone()).collect();
        state
            .store
            .delete_jobs(filter.set, &ids)
            .await?
            .into_iter()
            .collect()
    };
    Ok(Purged { jobs, deleted })
}

fn require_filter(filter: &SetFilter, all: bool, what: &str) -> Result<(), OrchError> {
    if filter.narrows() || all {
        return Ok(());
    }
    let set = match filter.set {
        JobSet::DeadLetters => "dead-lettered job",
        JobSet::Queued => "queued job",
    };
    Err(OrchError::NoFilter(format!(
        "refusing to {what} every {set} without an explicit filter: give a job id, a namespace, \
         a schedule, a label, a level or an age (older than), or all=true to mean every one"
    )))
}
