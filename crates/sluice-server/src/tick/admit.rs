//! Step 3 of the tick: admit. The backend's capacity, less the reservations of jobs it does not
//! show yet, goes to the pure cycle ([`sluice_core::cycle::schedule`]) with the heads of each
//! namespace's queue, read from the in-memory queue ([`crate::queue`]) rather than the store;
//! the admissions are written queued -> admitted in one transaction, and the wait reasons and
//! positions of the rest are kept for `describe`, and its inputs for the start-time
//! estimates ([`crate::eta`], computed only when asked).
//!
//! A cycle decides from the queue, the room and what each namespace holds: when none of them
//! changed since the last cycle (no submit, cancel, requeue or admission; no timer due; the
//! same room) and no job is set aside, the cycle would decide the same, so it is skipped and
//! the idle tick costs what reconciling costs. With backfill or aging configured the decisions
//! also depend on the time (expected ends, waits), so every tick runs its cycle. The cycle sees at most [`HEAD_WINDOW`] eligible
//! jobs per namespace (a bounded look-ahead, as Kueue looks at heads): under `strict` nothing
//! behind a blocked head can move anyway; when a whole window is admitted, the queue changed
//! and the next tick looks further.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sluice_core::capacity::{Fitter, Snapshot};
use sluice_core::cycle::{
    Candidate, CycleInput, CycleOutput, HeadPolicy, PreemptionInput, StrictCut, Timing, WaitReason,
    schedule_at, schedule_preempting, short_ms,
};
use sluice_core::job::{JobState, Resources};
use sluice_core::queue::{JobQueue, QueueEntry};
use sluice_core::record::JobRecord;
use sluice_store::{StoreError, Transition};

use super::error::TickError;
use super::expect::{self, RunKey};
use super::preempt;
use super::write::isolate;
use crate::eta::{self, EtaInputs};
use crate::held::{Waiting, reason_key};
pub use crate::queue::HEAD_WINDOW;
use crate::state::{AppState, Behind, CycleInputs, CycleView, WaitInfo};
use sluice_backend::Held;

/// Runs one scheduling cycle and writes its admissions.
pub async fn admit(state: &AppState) -> Result<(), TickError> {
    state.queue.ensure_loaded(state.store.as_ref()).await?;
    let report = Arc::new(state.backend.capacity().await?);
    state.set_last_capacity(report.clone());
    let active = super::active_jobs(
        state,
        &[JobState::Admitted, JobState::Submitted, JobState::Running],
    )
    .await?;
    let mut fitter = Fitter::new(&report.snapshot.nodes);
    let mut held: BTreeMap<String, Resources> = BTreeMap::new();
    for j in &active {
        let h = held.entry(j.namespace.clone()).or_default();
        *h = h.plus(&j.demand.total());
        if !report.visible.contains(&j.id) {
            // Admitted but not yet visible in the backend: hold its room.
            fitter.reserve(&j.demand);
        }
    }
    let snapshot = Snapshot {
        available: report.snapshot.available,
        nodes: fitter.nodes().to_vec(),
        allocatable: report.snapshot.allocatable.clone(),
    };
    let started_at = state.now_ms();
    let namespaces = state.config.namespace_policies();
    let default_policy = state.config.default_policy();
    let backfill = state.config.backfill();
    let aging = state.config.aging();
    let uses_backfill = std::iter::once(&default_policy)
        .chain(namespaces.values())
        .any(|p| p.policy == HeadPolicy::Backfill);
    let preemption = &state.config.scheduler.preemption;
    // Backfill and aging decide by the time too, and preemption by what runs and what is
    // being stopped: their cycles are never skipped.
    let timed = uses_backfill || !aging.is_empty() || preemption.enabled();
    // An unreachable backend could not show it anyway.
    let tell = state.backend.notes_waiting() && snapshot.available;
    // Strict queues are handed to the cycle only up to a job it certainly leaves waiting
    // (`strict_cut`): not with aging or preemption (they reorder a queue or grow the room),
    // nor when the backend is told about every waiting job (Kubernetes events).
    let prune = snapshot.available && aging.is_empty() && !preemption.enabled() && !tell;
    // The candidates: the heads of each namespace, from memory.
    let (all, in_cycle, attempts, inputs, runs, cuts) = {
        let mut q = state.queue.lock();
        q.queue_mut().take_due(started_at);
        let inputs = CycleInputs {
            queue_version: q.queue().version(),
            snapshot: Some(snapshot.clone()),
            held: held.clone(),
        };
        if !timed && state.aside.is_empty() && state.last_inputs() == Some(inputs.clone()) {
            // Nothing the cycle decides from has changed: it would decide the same.
            return Ok(());
        }
        let (entries, cuts) = pick(
            q.queue(),
            started_at,
            |id| state.aside.is_held(id, started_at),
            prune.then_some(&fitter),
            |ns| namespaces.get(ns).copied().unwrap_or(default_policy).policy,
        );
        let all: Vec<Candidate> = entries
            .iter()
            .map(|&(e, _)| Candidate {
                id: e.id.to_string(),
                namespace: e.namespace.to_string(),
                level: e.rank,
                enqueued_at_ms: e.enqueued_at_ms,
                demand: e.demand.clone(),
                constraints: None,
            })
            .collect();
        let in_cycle: Vec<bool> = entries.iter().map(|&(_, c)| c).collect();
        let attempts: Vec<u32> = entries.iter().map(|(e, _)| e.attempt).collect();
        let runs: Vec<RunKey> = entries.iter().map(|(e, _)| RunKey::of(e)).collect();
        (all, in_cycle, attempts, inputs, runs, cuts)
    };
    let all = with_constraints(state, all, &snapshot).await?;
    let (all_expected, ends) = expect::expected_runs(state, &runs, &active, started_at).await;
    let all_max_runtime: Vec<Option<i64>> = runs.iter().map(|k| k.max_runtime_ms).collect();
    // The cycle's own lists: the jobs it sees (all of them unless a strict queue was cut
    // with jobs after the cut kept for the start-time estimates).
    let split = in_cycle.iter().any(|c| !c);
    let only = |v: &[Option<i64>]| -> Vec<Option<i64>> {
        v.iter()
            .zip(&in_cycle)
            .filter(|(_, c)| **c)
            .map(|(x, _)| *x)
            .collect()
    };
    let (candidates, expected, max_runtime, for_eta) = if split {
        let c: Vec<Candidate> = all
            .iter()
            .zip(&in_cycle)
            .filter(|(_, c)| **c)
            .map(|(x, _)| x.clone())
            .collect();
        let (e, m) = (only(&all_expected), only(&all_max_runtime));
        (c, e, m, Some((all, all_expected, all_max_runtime)))
    } else {
        (all, all_expected, all_max_runtime, None)
    };
    let running = if uses_backfill {
        expect::placed(&snapshot, &ends)
    } else {
        Vec::new()
    };
    let input = CycleInput {
        candidates: &candidates,
        snapshot: &snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy,
    };
    let timing = Timing {
        now_ms: started_at,
        expected_ms: &expected,
        max_runtime_ms: &max_runtime,
        running: &running,
        backfill,
        aging: &aging,
    };
    let (out, plans, victims) = if preemption.enabled() {
        let settings = preemption.settings(&state.config.scheduler.levels);
        let pending = preempt::pending(state, &candidates);
        let decide = |running: &[sluice_core::cycle::Preemptible]| {
            schedule_preempting(
                &input,
                &timing,
                &PreemptionInput {
                    settings: &settings,
                    running,
                    pending: &pending,
                },
            )
        };
        // The running jobs (and their preemption counts) are read only when some job left
        // waiting may preempt; the cycle is pure, so it decides the same admissions again.
        let (out, plans) = decide(&[]);
        if preempt::wanted(&settings, &candidates, &out, &pending) {
            let victims = preempt::victims(state, &active, &report).await?;
            let (out, plans) = decide(&victims);
            (out, plans, victims)
        } else {
            (out, plans, Vec::new())
        }
    } else {
        (schedule_at(&input, &timing), Vec::new(), Vec::new())
    };
    let now = state.now_ms();
    let mut writes = Vec::with_capacity(out.admitted.len());
    for adm in &out.admitted {
        let c = &candidates[adm.index];
        let nodes: Vec<String> = adm
            .placement
            .pods
            .iter()
            .map(|(role, n)| {
                let node = snapshot
                    .nodes
                    .get(*n)
                    .map(|x| x.name.as_str())
                    .unwrap_or("?");
                format!("{role}@{node}")
            })
            .collect();
        writes.push(Transition {
            id: c.id.clone(),
            from: JobState::Queued,
            to: JobState::Admitted,
            at_ms: now,
            message: format!("admitted: {} placed as {}", c.demand, nodes.join(", ")),
            backend_ref: None,
            exit_code: None,
        });
    }
    // Every admission of the cycle in one transaction.
    let results = state.store.transitions(&writes).await;
    for (t, r) in writes.iter().zip(results) {
        match r {
            Ok(rec) => {
                state.metrics.transitioned(t.from, &rec);
                state.aside.clear(&rec.id);
            }
            // Cancelled or deleted meanwhile: not in the queue any more.
            Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {
                state.queue.gone(&t.id);
            }
            Err(e) => isolate(state, &t.id, "recording the admission", e)?,
        }
    }
    let mut notes = notes(state, &candidates, &out, started_at, &aging);
    if preemption.enabled() {
        for (i, note) in preempt::act(state, &candidates, &plans, &victims, &active).await? {
            notes.entry(i).or_default().push_str(&note);
        }
    }
    let mut waiting = HashMap::with_capacity(out.waiting.len());
    let behind = behind(&candidates, &out, cuts);
    let mut told = Vec::new();
    for w in out.waiting {
        let c = &candidates[w.index];
        let mut reason = w.reason.to_string();
        if let Some(note) = notes.get(&w.index) {
            reason.push_str(note);
        }
        if tell {
            told.push(Waiting {
                held: Held {
                    job_id: c.id.clone(),
                    attempt: attempts.get(w.index).copied().unwrap_or(1),
                    namespace: c.namespace.clone(),
                    name: runs
                        .get(w.index)
                        .map(|r| r.name.to_string())
                        .unwrap_or_default(),
                    reason: reason.clone(),
                    position: w.position,
                },
                key: reason_key(&w.reason),
            });
        }
        waiting.insert(
            c.id.clone(),
            WaitInfo {
                reason,
                reason_kind: w.reason.kind().to_string(),
                position: w.position,
                level_position: w.level_position,
                estimated_start: None,
            },
        );
    }
    if tell {
        // Off the tick: a task of its own tells the backend what changed (crate::held).
        state.held.publish(&state.backend, told);
    }
    {
        let mut view = state.view.write().await;
        *view = CycleView {
            at_ms: now,
            snapshot: Some(snapshot.clone()),
            waiting,
            behind,
        };
    }
    // What the start-time estimate runs forward from (computed only when someone asks).
    let (candidates, expected, max_runtime) =
        for_eta.unwrap_or((candidates, expected, max_runtime));
    state.eta.record(EtaInputs {
        candidates,
        expected,
        max_runtime,
        snapshot,
        held,
        namespaces,
        default_policy,
        backfill,
        aging,
        running: ends,
    });
    // The queue's version as the cycle read it, not as it is now: a submit or cancel that
    // landed while the cycle ran (after its heads were taken) changed the queue without this
    // cycle seeing it, so the next tick must run a cycle. (Reading the version here made the
    // next ticks skip, leaving a released burst queued until the room next changed.)
    let inputs = if out.admitted.is_empty() {
        inputs
    } else {
        // Room was taken: the next tick runs a cycle with the room as the backend then shows.
        CycleInputs::default()
    };
    state.set_last_inputs(Some(inputs));
    Ok(())
}

/// A cut strict queue: its namespace and where it was cut ([`pick`]).
type Cut = (Arc<str>, Behind);

/// The heads to take, each with whether the cycle sees it, and where strict queues were cut:
/// the first [`HEAD_WINDOW`] eligible jobs of each namespace that are not `skipped`, except
/// that with a `prune` room a strict namespace's walk stops at its cut (see
/// [`sluice_core::cycle::strict_cut`]), taking after it only the jobs kept for the start-time
/// estimates (up to [`eta::PER_NAMESPACE`] per namespace, [`eta::MAX_JOBS`] in all), which
/// the cycle does not see. The walk is lazy: a deep strict queue behind a blocked head costs
/// the jobs up to its cut, not its length.
fn pick<'q>(
    queue: &'q JobQueue,
    now_ms: i64,
    skipped: impl Fn(&str) -> bool,
    prune: Option<&Fitter>,
    policy_of: impl Fn(&str) -> HeadPolicy,
) -> (Vec<(&'q QueueEntry, bool)>, Vec<Cut>) {
    let mut picked = Vec::new();
    let mut cuts = Vec::new();
    let mut extras = 0usize;
    for (namespace, jobs) in queue.eligible(now_ms) {
        let mut jobs = jobs.filter(|e| !skipped(&e.id));
        let mut cut = prune
            .filter(|_| policy_of(namespace) == HeadPolicy::Strict)
            .map(StrictCut::new);
        let mut taken = 0usize;
        let mut at = None;
        for e in jobs.by_ref() {
            if taken == HEAD_WINDOW {
                break;
            }
            picked.push((e, true));
            taken += 1;
            if cut.as_mut().is_some_and(|c| c.cuts(&e.demand)) {
                at = Some(e);
                break;
            }
        }
        let Some(at) = at else {
            continue;
        };
        cuts.push((
            namespace.clone(),
            Behind {
                after: (at.rank, at.enqueued_at_ms, at.id.clone()),
                reason: String::new(),
            },
        ));
        for e in jobs {
            if taken >= eta::PER_NAMESPACE || extras >= eta::MAX_JOBS {
                break;
            }
            picked.push((e, false));
            taken += 1;
            extras += 1;
        }
    }
    (picked, cuts)
}

/// Why the jobs after each cut wait: behind the job the cut job waits behind, or behind the
/// cut job itself when it heads its namespace's waiting jobs (what the whole cycle says).
fn behind(
    candidates: &[Candidate],
    out: &CycleOutput,
    cuts: Vec<Cut>,
) -> HashMap<Arc<str>, Behind> {
    if cuts.is_empty() {
        return HashMap::new();
    }
    let mut reasons: Vec<Option<String>> = vec![None; cuts.len()];
    {
        let at: HashMap<&str, usize> = cuts
            .iter()
            .enumerate()
            .map(|(k, (_, b))| (&*b.after.2, k))
            .collect();
        for w in &out.waiting {
            if let (Some(&k), WaitReason::BlockedBehind { .. }) =
                (at.get(candidates[w.index].id.as_str()), &w.reason)
            {
                reasons[k] = Some(w.reason.to_string());
            }
        }
    }
    cuts.into_iter()
        .zip(reasons)
        .map(|((namespace, mut b), reason)| {
            b.reason = reason.unwrap_or_else(|| {
                WaitReason::BlockedBehind {
                    head_id: b.after.2.to_string(),
                    namespace: namespace.to_string(),
                }
                .to_string()
            });
            (namespace, b)
        })
        .collect()
}

/// What `describe` adds to a waiting job's reason: its reserved start, for a backfill head
/// ("; reserved to start in 25m (backfill)"), and its aging ("; aged to high after 2h").
fn notes(
    state: &AppState,
    candidates: &[Candidate],
    out: &CycleOutput,
    now: i64,
    aging: &[Option<i64>],
) -> HashMap<usize, String> {
    let mut notes: HashMap<usize, String> = HashMap::new();
    for r in &out.reservations {
        notes.insert(
            r.index,
            format!(
                "; reserved to start in {} (backfill)",
                short_ms(r.start_ms.saturating_sub(now))
            ),
        );
    }
    let levels = &state.config.scheduler.levels;
    for a in &out.aged {
        let own = candidates[a.index].level;
        let after: i64 = (a.level + 1..=own)
            .filter_map(|l| aging.get(l).copied().flatten())
            .sum();
        let name = levels.get(a.level).map_or("?", |l| l.as_str());
        notes
            .entry(a.index)
            .or_default()
            .push_str(&format!("; aged to {name} after {}", short_ms(after)));
    }
    notes
}

/// The backend's constraints of each candidate, for backends that have any (Kubernetes): they
/// read the job's full record, so those are loaded from the store.
async fn with_constraints(
    state: &AppState,
    mut candidates: Vec<Candidate>,
    snapshot: &Snapshot,
) -> Result<Vec<Candidate>, TickError> {
    if !state.backend.has_constraints() || candidates.is_empty() {
        return Ok(candidates);
    }
    let queued = state.store.jobs_in_states(&[JobState::Queued]).await?;
    let by_id: HashMap<&str, &JobRecord> = queued.iter().map(|j| (j.id.as_str(), j)).collect();
    for c in &mut candidates {
        if let Some(rec) = by_id.get(c.id.as_str()) {
            c.constraints = state.backend.constraints(rec, &snapshot.nodes);
        }
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use sluice_core::capacity::NodeCapacity;
    use sluice_core::job::{Demand, PodDemand, Role};

    use super::*;

    fn job(q: &mut JobQueue, id: &str, ns: &str, at: i64, cpu_milli: u64) -> QueueEntry {
        QueueEntry {
            id: Arc::from(id),
            namespace: q.intern(ns),
            level: q.intern("normal"),
            rank: 1,
            enqueued_at_ms: at,
            demand: Demand {
                pods: vec![PodDemand {
                    role: Role::Task,
                    count: 1,
                    cpu_milli,
                    mem_mib: 128,
                }],
            },
            name: Arc::from("job"),
            max_runtime_ms: None,
            attempt: 1,
        }
    }

    /// A strict queue 5,000 deep behind a head that cannot fit is walked up to its cut and the
    /// jobs kept for the estimates, no further (each job walked is asked `skipped` once); a
    /// best-effort queue of the same depth is walked to the window.
    #[test]
    fn the_walk_stops_at_a_strict_cut() {
        let mut q = JobQueue::new();
        for ns in ["strict", "loose"] {
            let head = job(&mut q, &format!("{ns}-head"), ns, 0, 64_000);
            q.insert(head, 0);
            for i in 0..5_000 {
                let e = job(&mut q, &format!("{ns}-{i:05}"), ns, 1 + i, 100);
                q.insert(e, 0);
            }
        }
        let nodes = vec![NodeCapacity::new("n", 8_000, 64 * 1024, None)];
        let fitter = Fitter::new(&nodes);
        let asked = Cell::new(0usize);
        let (picked, cuts) = pick(
            &q,
            10_000,
            |_| {
                asked.set(asked.get() + 1);
                false
            },
            Some(&fitter),
            |ns| {
                if ns == "strict" {
                    HeadPolicy::Strict
                } else {
                    HeadPolicy::BestEffort
                }
            },
        );
        let strict: Vec<_> = picked
            .iter()
            .filter(|(e, _)| &*e.namespace == "strict")
            .collect();
        assert_eq!(strict.len(), eta::PER_NAMESPACE, "the head and the extras");
        assert!(strict[0].1, "the cut head is in the cycle");
        assert!(strict[1..].iter().all(|(_, c)| !c), "the extras are not");
        assert_eq!(cuts.len(), 1);
        assert_eq!(&*cuts[0].0, "strict");
        assert_eq!(&*cuts[0].1.after.2, "strict-head");
        let loose = picked.len() - strict.len();
        assert_eq!(loose, HEAD_WINDOW, "a best-effort queue goes to the window");
        // Each walk asks one past where it stops, at most.
        assert!(
            asked.get() <= eta::PER_NAMESPACE + HEAD_WINDOW + 2,
            "walked {} jobs",
            asked.get()
        );
        // Without a room to cut by, the strict queue is walked to the window too.
        let (all, cuts) = pick(&q, 10_000, |_| false, None, |_| HeadPolicy::Strict);
        assert_eq!(all.len(), 2 * HEAD_WINDOW);
        assert!(cuts.is_empty());
    }
}
