//! Orchestration around the queues: schedules that fire runs, retries of failed attempts by
//! failure class, the dead-letter queue (DLQ) and queue TTLs. The operations the API calls
//! (create a schedule, requeue, purge) are in [`crate::orchestration`].
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

use sluice_backend::RunRef;
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_core::retry::{
    self, Decision, FailureClass, FailureFacts, JAVA_OOM, JobPolicy, classify, decide, jitter_seed,
};
use sluice_core::schedule::{
    ConcurrencyAction, SCHEDULE_LABEL, ScheduleRecord, concurrency_action, plan_fire,
};
use sluice_core::stored::StoredJob;
use sluice_store::{
    Advance, DeadLetter, Fire, OrchJob, RetryJob, ScheduledRun, StoreError, Transition,
};

use super::error::TickError;
use super::oomlog::log_has_oom;
use super::usage::{Ended, record_in_background};
use super::write::isolate;
use crate::admission;
use crate::fault::{store_detail, store_unavailable};
use crate::orchestration::{OrchError, run_of};
use crate::state::AppState;
use crate::time::rfc3339;

/// Most queued jobs expired per tick (any others past their deadline expire in the next ticks).
pub const TTL_EXPIRE_LIMIT: u32 = 100_000;
/// Queued jobs past their deadline read from the store at a time.
pub const TTL_BATCH: u32 = 1_000;

/// Runs every orchestration step of one tick at `now_ms`: fires due schedules, settles failed
/// attempts (retry or DLQ) and expires queued jobs past their queue TTL.
pub async fn run(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    fire_schedules(state, now_ms).await?;
    settle_failures(state, now_ms).await?;
    expire_queued(state, now_ms).await?;
    super::workflows::run(state, now_ms).await?;
    Ok(())
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
        Ok(after) => {
            state.metrics.transitioned(t.from, &after);
            // A stopped run's usage is recorded as a user's cancel's is.
            if matches!(rec.state, JobState::Submitted | JobState::Running) {
                let ended = Ended::cancelled(rec.clone(), t.at_ms, t.message.clone());
                record_in_background(state, vec![ended]);
            }
        }
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
                // The database is down: end the tick, the next one retries.
                OrchError::Store(e) if store_unavailable(&e) => return Err(e.into()),
                // One schedule's failure never stops the others: it is tried again next tick.
                OrchError::Store(e) => {
                    tracing::warn!(schedule = %format!("{}/{}", s.namespace, s.name), "firing: {}", store_detail(&e));
                }
                OrchError::Backend(e) => {
                    tracing::warn!(schedule = %format!("{}/{}", s.namespace, s.name), "firing: {e}");
                }
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
        crate::orchestration::on_time_ms(state),
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
        if state.aside.is_held(&rec.id, now_ms) {
            continue;
        }
        match settle_one(state, &rec, now_ms).await {
            Ok(()) => state.aside.clear(&rec.id),
            Err(StoreError::Stale(_) | StoreError::NotFound(_)) => {}
            Err(e) => isolate(state, &rec.id, "settling a failed attempt", e)?,
        }
    }
    Ok(())
}

async fn settle_one(state: &AppState, rec: &JobRecord, now_ms: i64) -> Result<(), StoreError> {
    let policy = rec.policy()?;
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
    match decide(policy, class, in_round, jitter_seed(&rec.id, rec.attempt)) {
        Decision::Retry {
            next_attempt_in_round,
            delay_ms,
            raise_memory,
        } => {
            let mut stored = None;
            let mut demand = None;
            let mut note = String::new();
            if let Some((factor, cap)) = raise_memory {
                match raised(state, rec, policy, factor, cap).await {
                    Ok(Some((s, d, change))) => {
                        stored = Some(s);
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
                    rfc3339(eligible),
                ),
                stored,
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
) -> Result<Option<(StoredJob, sluice_core::job::Demand, String)>, String> {
    let stored = rec.decoded().map_err(|e| e.to_string())?;
    let Some(r) = retry::raise_memory(&stored.job, factor, cap).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // The same gate as a submit: a raise that could never run is not made.
    let demand = admission::check(state, &r.job)
        .await
        .map_err(|refusal| format!("{}: the job {refusal}", r.change))?;
    // The user's document stays as they wrote it: the raise is the job's, not theirs.
    let raised = StoredJob {
        job: r.job,
        policy: policy.clone(),
        document: stored.document.clone(),
    };
    let change = format!("out of memory: {} (demand now {demand})", r.change);
    Ok(Some((raised, demand, change)))
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
        // Jobs that could not be expired stay past their deadline: a batch of only those ends
        // the step (instead of reading them again).
        let mut left_queue = 0u32;
        for OrchJob { job, orch } in batch {
            if state.aside.is_held(&job.id, now_ms) {
                continue;
            }
            let since = orch.queue_clock_start(&job);
            // The store set the deadline from this policy; should the two disagree, the
            // deadline (what selected the job) still tells the TTL.
            // A policy that does not decode only loses the TTL from the message: the
            // deadline is what selected the job.
            let stored_ttl = match job.policy() {
                Ok(p) => p.max_queue_wait_secs,
                Err(e) => {
                    tracing::warn!(job = %job.id, "{e}");
                    None
                }
            };
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
                Ok(after) => {
                    state.metrics.transitioned(JobState::Queued, &after);
                    state.aside.clear(&job.id);
                    left_queue += 1;
                }
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => left_queue += 1,
                Err(e) => isolate(state, &job.id, "expiring a job past its queue TTL", e)?,
            }
        }
        handled = handled.saturating_add(n);
        if n < TTL_BATCH || left_queue == 0 {
            break;
        }
    }
    Ok(())
}
