//! The submitter loop: one task that, every `scheduler.interval_ms` or when woken by a cancel
//! (a submit wakes only its admit and submit steps, [`admit_tick`]), runs a scheduling cycle,
//! submits what it admitted, and reconciles running jobs with the backend.
//!
//! One tick, as Kueue's cycle, each step a function in its own module and its own tracing span
//! (with the tick's number and its duration):
//! 1. **reconcile** ([`reconcile`]): the backend's state of every submitted or running job is
//!    recorded, so room freed by jobs that ended is used in this same tick;
//! 2. **orchestrate** ([`orchestrate`]): due schedules fire, failed attempts are retried or
//!    dead-lettered, queued jobs past their TTL expire;
//! 3. **admit** ([`admit`]): the pure [`sluice_core::cycle::schedule`] runs over the capacity
//!    snapshot less the reservations; each admission is written queued -> admitted, and every
//!    job left keeps its queue position and the reason it waits;
//! 4. **submit** ([`submit`]): each admitted job goes to the backend and moves admitted ->
//!    submitted; a backend that turns it away for want of room puts it back in its queue;
//! 5. **roll up**: closed hours of the history are rolled up (one bounded step).
//!
//! The time comes from the state's clock ([`AppState::now_ms`]), so tests can drive it.
//!
//! Because "admitted" is written before the submit and submits are idempotent per attempt, a
//! crash at any point neither loses a job nor starts it twice: on restart, admitted jobs are
//! submitted again (the backend answers "already there") and running jobs are re-attached.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice_backend::{BackendError, RunStatus};
use sluice_core::job::JobState;
use tracing::Instrument;

use sluice_store::StoreError;
use tokio::sync::watch;

use crate::fault::{store_detail, store_unavailable};
use crate::leader::Role;
use crate::state::AppState;

pub mod admit;
pub mod error;
pub mod expect;
pub mod oomlog;
pub mod orchestrate;
pub mod preempt;
pub mod reconcile;
pub mod submit;
pub mod usage;
pub mod workflows;
pub mod write;

pub use error::TickError;
use write::run_ref;

/// Runs cycles until the process ends, while this replica leads (always, on SQLite): at each
/// new term the in-memory state is rebuilt from the store (the queue is loaded again, running
/// runs are looked up in the backend by the first reconcile), and the loop writes through a
/// store fenced by the term's lease (see [`crate::leader`]).
pub async fn run_loop(state: AppState) {
    let mut role = state.leader.subscribe();
    let mut first = true;
    loop {
        let now = role.borrow_and_update().clone();
        let lease = match now {
            Role::Leader(lease) => lease,
            Role::Follower => {
                if role.changed().await.is_err() {
                    // The state (and its election) is gone: nothing will ever lead here.
                    return std::future::pending().await;
                }
                continue;
            }
        };
        let term = state.for_term(lease.as_ref());
        forget(&state);
        if let Some(l) = &lease {
            tracing::info!(
                epoch = l.epoch,
                "leading: the scheduler loop runs on this replica"
            );
        }
        // After a restart, each running job's timeline says whether its run was found again.
        // After a change of leader the first reconcile does what matters (and a note per job
        // would hold up the new leader's first admissions).
        if first && let Err(e) = startup_notes(&term).await {
            tracing::warn!("startup reconciliation: {e}");
        }
        first = false;
        lead(&term, &mut role, lease.as_ref().map(|l| l.epoch)).await;
        forget(&state);
        tracing::info!("no longer leading: the scheduler loop stopped on this replica");
    }
}

/// Forgets what the loop keeps in memory (the queue, the last cycle's inputs and view): a new
/// term starts from the store.
fn forget(state: &AppState) {
    state.queue.reset();
    state.set_last_inputs(None);
    state.eta.clear();
    state.preempting().clear();
    if let Ok(mut v) = state.view.try_write() {
        *v = crate::state::CycleView::default();
    }
}

/// The least time from the start of one cycle to the start of a cycle that only a submit woke
/// ([`AppState::wake_admit`]). Under a stream of submits this gathers a few milliseconds of
/// them into one admit cycle (each cycle reads the backend's capacity and the queue's heads)
/// instead of one cycle per submit or two; a lone submit after a quiet spell waits for
/// nothing. The gap grows with what the last such cycle cost ([`admit_gap`]), up to
/// [`MAX_ADMIT_GAP`]: that is the most it adds to a job's submit-to-admitted time.
pub const ADMIT_GAP: Duration = Duration::from_millis(5);

/// The longest gap between cycles that submits woke ([`admit_gap`]).
pub const MAX_ADMIT_GAP: Duration = Duration::from_millis(25);

/// A gap is this many times the last submit-woken cycle's duration (within [`ADMIT_GAP`] and
/// [`MAX_ADMIT_GAP`]): under a stream of submits those cycles take about 1/40 of a core. At
/// 100,000 queued such a cycle took ~0.5 ms, and at a 5 ms gap they took a tenth of a core of
/// a 2-core machine that the submits needed (BENCHMARKS.md, ninth step).
pub const ADMIT_DUTY: u32 = 40;

/// The gap before the next cycle that a submit wakes, after one such cycle that took `last`.
pub fn admit_gap(last: Duration) -> Duration {
    last.saturating_mul(ADMIT_DUTY)
        .clamp(ADMIT_GAP, MAX_ADMIT_GAP)
}

/// Ticks while the term of `epoch` lasts (for ever, for the only server). A whole tick runs
/// every `scheduler.interval_ms` and when something wakes it ([`AppState::wake`]); a submit
/// ([`AppState::wake_admit`]) wakes only the admit and submit steps ([`admit_tick`]), so a
/// stream of submits costs a cycle each, not the reconcile, orchestrate and roll-up steps'
/// store and backend reads: those still run at most one interval late.
async fn lead(state: &AppState, role: &mut watch::Receiver<Role>, epoch: Option<i64>) {
    let interval = Duration::from_millis(state.config.scheduler.interval_ms);
    let mut last_full: Option<Instant> = None;
    let mut whole = true;
    // What the last cycle that a submit woke took (see [`admit_gap`]).
    let mut admit_took = Duration::ZERO;
    loop {
        if !state.leader.holds() {
            return;
        }
        let started = Instant::now();
        let full = whole || last_full.is_none_or(|t| t.elapsed() >= interval);
        if full {
            last_full = Some(started);
        }
        match run(state, full).await {
            Ok(()) => {}
            Err(TickError::Store(e @ StoreError::Fenced { .. })) => {
                tracing::warn!("{e}");
                state.leader.step_down();
                return;
            }
            Err(e) => {
                tracing::warn!("scheduling cycle failed: {e}");
                state.metrics.tick_failed(match e {
                    TickError::Store(_) => "store",
                    TickError::Backend(_) => "backend",
                });
            }
        }
        let took = started.elapsed();
        state.metrics.cycle_finished(took);
        if !full {
            admit_took = took;
        }
        // Until the next whole tick is due.
        let due = last_full.map_or(Duration::ZERO, |t| interval.saturating_sub(t.elapsed()));
        whole = tokio::select! {
            _ = state.wake.notified() => true,
            _ = state.wake_admit.notified() => false,
            _ = tokio::time::sleep(due) => true,
            changed = role.changed() => {
                let same = matches!(&*role.borrow(), Role::Leader(l) if l.as_ref().map(|l| l.epoch) == epoch);
                if changed.is_err() || !same {
                    return;
                }
                true
            }
        };
        if !whole {
            // A submit woke it: let the submits of the next few milliseconds join this cycle.
            let wait = admit_gap(admit_took).saturating_sub(started.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The admit and submit steps alone (steps 3 and 4): what a submit wakes. Jobs that ended
/// since the last whole tick are recorded by the next one (at most one interval later), so
/// their room waits for it.
pub async fn admit_tick(state: &AppState) -> Result<(), TickError> {
    run(state, false).await
}

/// One tick: the five steps in order (see the module documentation).
pub async fn tick(state: &AppState) -> Result<(), TickError> {
    run(state, true).await
}

/// A tick: all five steps when `whole`, else only steps 3 and 4.
async fn run(state: &AppState, whole: bool) -> Result<(), TickError> {
    let _guard = state.cycle_lock.lock().await;
    if !state.leader.holds() {
        return Ok(());
    }
    let cycle = state.next_cycle();
    if whole {
        // 1. reconcile
        step(state, "reconcile", cycle, reconcile::reconcile(state)).await?;
        // 2. orchestrate
        step(
            state,
            "orchestrate",
            cycle,
            orchestrate::run(state, state.now_ms()),
        )
        .await?;
    }
    // 3. admit
    step(state, "admit", cycle, admit::admit(state)).await?;
    // 4. submit
    step(state, "submit", cycle, submit::submit_admitted(state)).await?;
    if whole {
        // 5. roll up
        step(state, "roll_up", cycle, roll_up(state)).await;
        state.metrics.tick_done_at(state.now_ms());
    }
    Ok(())
}

/// Runs one step of tick number `cycle` in its tracing span, logs how long it took and
/// records it (`sluice_tick_step_seconds`).
async fn step<T>(
    state: &AppState,
    name: &'static str,
    cycle: u64,
    work: impl Future<Output = T>,
) -> T {
    let span = tracing::info_span!("tick", step = name, cycle);
    async move {
        let started = Instant::now();
        let out = work.await;
        let elapsed = started.elapsed();
        state.metrics.step_finished(name, elapsed);
        tracing::debug!(elapsed_ms = elapsed.as_secs_f64() * 1000.0, "step done");
        out
    }
    .instrument(span)
    .await
}

/// Step 5: hourly rollups of the history (one bounded step; cheap when there is nothing to
/// do). A failure is logged; the next tick tries again.
async fn roll_up(state: &AppState) {
    if let Err(e) = state.store.roll_up_history(state.now_ms()).await {
        tracing::warn!("rolling up the history: {e}");
    }
    // The audit log's retention (auth.audit_retention_days; 0 keeps it forever), at most
    // once per AUDIT_PURGE_EVERY_MS: a retention in days needs no more, and a purge is a
    // write transaction (on PostgreSQL each tick's purge cost 10-16 ms of the idle tick once
    // 100,000 submits had been audited: BENCHMARKS.md, fourth step).
    let days = state.config.auth.audit_retention_days;
    let now = state.now_ms();
    let last = state.audit_purged_at.load(Ordering::Relaxed);
    if days > 0 && now.saturating_sub(last) >= AUDIT_PURGE_EVERY_MS {
        let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        match state.store.purge_audit(now.saturating_sub(keep_ms)).await {
            Ok(_) => state.audit_purged_at.store(now, Ordering::Relaxed),
            Err(e) => tracing::warn!("purging the audit log: {e}"),
        }
    }
}

/// How often the roll-up step purges the audit log of entries past their retention, ms.
pub const AUDIT_PURGE_EVERY_MS: i64 = 60_000;

/// The active jobs in `states` (a subset of [`JobState::ACTIVE`]), in the store's order: on the
/// leader from memory and shared, not copied (every step of every tick reads them); read from
/// the store otherwise.
pub async fn active_jobs(
    state: &AppState,
    states: &[JobState],
) -> Result<Vec<std::sync::Arc<sluice_core::record::JobRecord>>, StoreError> {
    if states.iter().all(|s| JobState::ACTIVE.contains(s))
        && let Some(r) = state.queue.active(states).await
    {
        return r;
    }
    Ok(state
        .store
        .jobs_in_states(states)
        .await?
        .into_iter()
        .map(std::sync::Arc::new)
        .collect())
}

/// After the process started, write in each running job's timeline whether its run was found
/// again.
pub async fn startup_notes(state: &AppState) -> Result<(), TickError> {
    let why = "sluice restarted";
    let active = state
        .store
        .jobs_in_states(&[JobState::Admitted, JobState::Submitted, JobState::Running])
        .await?;
    let now = state.now_ms();
    for rec in active {
        let note = match rec.state {
            JobState::Admitted => {
                format!("{why}; the admitted job will be submitted (idempotently)")
            }
            _ => match state.backend.status(&run_ref(&rec)).await {
                Ok(RunStatus::Running | RunStatus::Pending) => format!(
                    "{why}; run {} re-attached",
                    rec.backend_ref.as_deref().unwrap_or("?")
                ),
                Ok(_) | Err(BackendError::NotFound { .. }) => {
                    format!("{why}; the run ended while sluice was down")
                }
                Err(e) => format!("{why}; run state unknown for now: {e}"),
            },
        };
        if let Err(e) = state.store.add_note(&rec.id, now, &note).await {
            if store_unavailable(&e) {
                return Err(e.into());
            }
            tracing::warn!(job = %rec.id, "startup note: {}", store_detail(&e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_gap_follows_the_last_cycle_within_bounds() {
        assert_eq!(admit_gap(Duration::ZERO), ADMIT_GAP);
        assert_eq!(admit_gap(Duration::from_micros(100)), ADMIT_GAP);
        assert_eq!(
            admit_gap(Duration::from_micros(250)),
            Duration::from_millis(10)
        );
        assert_eq!(admit_gap(Duration::from_secs(1)), MAX_ADMIT_GAP);
    }
}
