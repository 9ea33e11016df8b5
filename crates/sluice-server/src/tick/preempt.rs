//! Preemption in the admit step (`[scheduler.preemption]`, off by default): what the pure
//! [`sluice_core::cycle::schedule_preempting`] needs (the running jobs that may be victims, with
//! where they most likely hold their room and how often they were preempted; the jobs that
//! preempted earlier and wait for their room), and what the server does with its plans.
//!
//! A victim is stopped by a task of its own through the backend's cancel, with the configured
//! grace ([`sluice_backend::Backend::cancel_within`]), never holding up the tick; the reconciler
//! leaves it alone meanwhile, and once it is stopped it goes back to its queue
//! ([`sluice_store::Store::preempt_job`]: same place, next run, no failure, no retry used), with
//! "preempted by NS/NAME (LEVEL) to make room" in its timeline. Until then its room is still
//! held in the backend's snapshot, so nothing can be admitted into it twice; the preemptor is
//! *pending*: never planned again, and placed first once the room is free. A pending preemptor
//! that still does not fit after the grace period plus [`PENDING_SLACK_MS`] is pending no more
//! (it may preempt again). The cycle runs once without victims; the running jobs (and their
//! preemption counts, one store read each) are read only when it leaves a job that may preempt
//! waiting for room ([`wanted`]), and then it runs again with them.

use std::collections::{HashMap, HashSet};

use sluice_backend::CapacityReport;
use sluice_core::capacity::{Fitter, NodeCapacity};
use sluice_core::cycle::{
    Candidate, CycleOutput, Preemptible, Preemption, PreemptionSettings, RunningJob, WaitReason,
};
use sluice_core::job::{JobState, Resources};
use sluice_core::record::JobRecord;

use super::error::TickError;
use super::reconcile::{QUICK_STOP, stop_in_background, write_stopped};
use crate::fault::{store_detail, store_unavailable};
use crate::state::{AppState, PendingPreemption, StopEnd};

/// How long past the grace period a preemptor stays pending when it still does not fit.
pub const PENDING_SLACK_MS: i64 = 120_000;

/// The candidates (indices) that preempted earlier and wait for their room; preemptors no
/// longer queued, or pending past the grace period plus [`PENDING_SLACK_MS`], are forgotten.
pub fn pending(state: &AppState, candidates: &[Candidate]) -> Vec<usize> {
    let cfg = &state.config.scheduler.preemption;
    let now = state.now_ms();
    let keep_ms = i64::try_from(cfg.grace_ms)
        .unwrap_or(i64::MAX)
        .saturating_add(PENDING_SLACK_MS);
    let queued: HashSet<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
    let mut book = state.preempting();
    book.retain(|id, p| queued.contains(id.as_str()) && now.saturating_sub(p.since_ms) <= keep_ms);
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| book.contains_key(&c.id))
        .map(|(i, _)| i)
        .collect()
}

/// Whether the cycle left a job waiting for room that may preempt (and is not pending): only
/// then are the running jobs read as victims.
pub fn wanted(
    settings: &PreemptionSettings,
    candidates: &[Candidate],
    out: &CycleOutput,
    pending: &[usize],
) -> bool {
    out.waiting.iter().any(|w| {
        let c = &candidates[w.index];
        matches!(w.reason, WaitReason::NoRoom(_))
            && !pending.contains(&w.index)
            && settings.may_preempt(&c.namespace, c.level)
    })
}

/// The running jobs that may be victims this cycle: visible in the backend, submitted or
/// running, in a namespace that takes part and not being stopped already, with where they most
/// likely hold their room and how often they were preempted.
pub async fn victims(
    state: &AppState,
    active: &[std::sync::Arc<JobRecord>],
    report: &CapacityReport,
) -> Result<Vec<Preemptible>, TickError> {
    let settings = state
        .config
        .scheduler
        .preemption
        .settings(&state.config.scheduler.levels);
    // Where the visible jobs hold their room: as the backend says (`Backend::placements`),
    // else most likely first fit into the room held on each node (allocatable less free), in
    // queue order (as `place_running` does for backfill).
    let snap = &report.snapshot;
    if snap.allocatable.len() != snap.nodes.len() {
        return Ok(Vec::new());
    }
    let held: Vec<NodeCapacity> = snap
        .allocatable
        .iter()
        .zip(&snap.nodes)
        .map(|(a, f)| NodeCapacity {
            name: String::new(),
            cpu_milli: a.cpu_milli.saturating_sub(f.cpu_milli),
            mem_mib: a.mem_mib.saturating_sub(f.mem_mib),
            pods: match (a.pods, f.pods) {
                (Some(x), Some(y)) => Some(x.saturating_sub(y)),
                _ => None,
            },
        })
        .collect();
    // Where the backend says the pods are (simulated, Kubernetes), by node index; the held
    // room of those is taken first, and the others' placements are estimated in what is left.
    let known = state.backend.placements().await;
    let index: HashMap<&str, usize> = snap
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let exact: HashMap<&str, Vec<(usize, Resources)>> = active
        .iter()
        .filter_map(|j| {
            let pods = known.get(&j.id)?;
            let placed: Option<Vec<(usize, Resources)>> = pods
                .iter()
                .map(|(node, r)| Some((*index.get(node.as_str())?, *r)))
                .collect();
            placed.filter(|p| !p.is_empty()).map(|p| (j.id.as_str(), p))
        })
        .collect();
    let mut held = held;
    for pods in exact.values() {
        for (i, r) in pods {
            if let Some(n) = held.get_mut(*i) {
                n.cpu_milli = n.cpu_milli.saturating_sub(r.cpu_milli);
                n.mem_mib = n.mem_mib.saturating_sub(r.mem_mib);
                n.pods = n.pods.map(|p| p.saturating_sub(1));
            }
        }
    }
    let mut fitter = Fitter::new(&held);
    let mut victims = Vec::new();
    for j in active.iter().filter(|j| report.visible.contains(&j.id)) {
        let pods = match exact.get(j.id.as_str()) {
            Some(pods) => pods.clone(),
            // Placed whatever it is, so that the others' estimates are right.
            None => match fitter.try_place(&j.demand) {
                Ok(placement) => RunningJob::placed(0, &j.demand, &placement).pods,
                Err(_) => continue,
            },
        };
        let eligible = matches!(j.state, JobState::Submitted | JobState::Running)
            && settings.takes_part(&j.namespace)
            && !state.is_stopping(&j.id);
        if !eligible {
            continue;
        }
        let Some(level) = state.levels.rank(&j.level) else {
            continue;
        };
        let preemptions = match state.store.job_orch(&j.id).await {
            Ok(Some(o)) => o.preemptions,
            Ok(None) => continue,
            Err(e) if store_unavailable(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(job = %j.id, "preemption count: {}", store_detail(&e));
                continue;
            }
        };
        victims.push(Preemptible {
            id: j.id.clone(),
            namespace: j.namespace.clone(),
            level,
            started_at_ms: j.started_at_ms.unwrap_or(j.updated_at_ms),
            pods,
            preemptions,
        });
    }
    Ok(victims)
}

/// Carries out the plans: each victim is stopped in a task of its own (with the grace period)
/// and goes back to its queue once stopped; the preemptor gets a note in its timeline and is
/// pending. Returns, per candidate index, what `describe` adds to its wait reason.
pub async fn act(
    state: &AppState,
    candidates: &[Candidate],
    plans: &[Preemption],
    running: &[Preemptible],
    active: &[std::sync::Arc<JobRecord>],
) -> Result<HashMap<usize, String>, TickError> {
    let mut notes = HashMap::new();
    let pending: Vec<(usize, usize)> = {
        let book = state.preempting();
        candidates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| book.get(&c.id).map(|p| (i, p.victims.len())))
            .collect()
    };
    for (i, n) in pending {
        notes.insert(
            i,
            format!("; preempted {n} job(s) and waits for their room to be free"),
        );
    }
    if plans.is_empty() {
        return Ok(notes);
    }
    let by_id: HashMap<&str, &JobRecord> = active.iter().map(|j| (j.id.as_str(), &**j)).collect();
    let grace = state.config.scheduler.preemption.grace();
    let now = state.now_ms();
    let mut tasks = Vec::new();
    for plan in plans {
        let job = &candidates[plan.index];
        let level = state
            .config
            .scheduler
            .levels
            .get(job.level)
            .map_or("?", String::as_str);
        let name = match state.store.get_job(&job.id).await {
            Ok(Some(rec)) => rec.name,
            Ok(None) => continue,
            Err(e) if store_unavailable(&e) => return Err(e.into()),
            Err(_) => job.id.clone(),
        };
        let message = format!(
            "preempted by {}/{name} ({level}) to make room",
            job.namespace
        );
        let mut stopped = Vec::new();
        for &k in &plan.victims {
            let Some(rec) = running.get(k).and_then(|v| by_id.get(v.id.as_str())) else {
                continue;
            };
            let rec = (*rec).clone();
            let label = format!("{}/{} ({})", rec.namespace, rec.name, rec.id);
            if let Some(task) =
                stop_in_background(state, rec, StopEnd::Preempted(message.clone()), Some(grace))
            {
                tasks.push(task);
                stopped.push(label);
            }
        }
        if stopped.is_empty() {
            continue;
        }
        let note = format!(
            "preempting {} to make room (grace {})",
            stopped.join(", "),
            sluice_core::cycle::short_ms(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX))
        );
        if let Err(e) = state.store.add_note(&job.id, now, &note).await {
            if store_unavailable(&e) {
                return Err(e.into());
            }
            tracing::warn!(job = %job.id, "preemption note: {}", store_detail(&e));
        }
        tracing::info!(job = %job.id, "{note}");
        notes.insert(plan.index, format!("; {note}"));
        state.preempting().insert(
            job.id.clone(),
            PendingPreemption {
                victims: stopped,
                since_ms: now,
            },
        );
    }
    if !tasks.is_empty() {
        let _ = tokio::time::timeout(QUICK_STOP, async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    }
    write_stopped(state).await?;
    Ok(notes)
}
