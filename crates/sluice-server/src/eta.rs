//! Estimated start times of queued jobs (`describe`, `GET /v1/jobs/{id}`, the jobs list, the
//! UI): the cycle run forward in virtual time ([`sluice_core::cycle::estimate_starts`]) from
//! what the last scheduling cycle saw, every job taking its expected run time
//! ([`crate::runtime`]).
//!
//! The tick only records its cycle's inputs ([`EtaBook::record`]: moves, no computing), so it
//! never waits for an estimate. The estimate is computed when someone asks, on a blocking
//! thread, and kept until the next recorded cycle or for [`MAX_AGE_MS`], whichever comes
//! first, but at least [`MIN_AGE_MS`] and [`COST_FACTOR`] times what it took to compute;
//! concurrent askers share one computation. The cost is bounded: the first [`PER_NAMESPACE`]
//! waiting jobs of each namespace, [`MAX_JOBS`] in all, and at most [`MAX_STEPS`] forward
//! cycles (`cargo bench -p sluice-core --bench eta`: 300 jobs on a full 200-node cluster take
//! about 9 ms under strict and 140 ms under backfill; 1,000 take 170 ms and 3.2 s, hence the
//! bounds). A job beyond those bounds, or one that does not start within them, has no
//! estimate. Leaving later jobs out can only make an estimate earlier under
//! best-effort or backfill (a left-out job might have passed it), never later.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sluice_core::capacity::{Fitter, NodeCapacity, Snapshot};
use sluice_core::cycle::{
    BackfillSettings, Candidate, CycleInput, NamespacePolicy, RunningJob, Timing, estimate_starts,
};
use sluice_core::job::{Demand, Resources};

/// Most waiting jobs of one namespace that get an estimate (in queue order).
pub const PER_NAMESPACE: usize = 50;

/// Most waiting jobs that get an estimate in all.
pub const MAX_JOBS: usize = 300;

/// Most forward cycles of one estimate.
pub const MAX_STEPS: usize = 2000;

/// An estimate is computed again once it is this old, even if no cycle ran since (time moves:
/// a running job past its expected end is taken to end a margin after now), ms.
pub const MAX_AGE_MS: i64 = 10_000;

/// An estimate younger than this, or than [`COST_FACTOR`] times what it took to compute, is
/// kept even if cycles ran since (with backfill or aging a cycle runs at every tick), ms.
pub const MIN_AGE_MS: i64 = 2_000;

/// An estimate is kept at least this many times as long as it took to compute, so that
/// estimating takes at most a fifth of one core however often it is asked for.
pub const COST_FACTOR: i64 = 5;

/// What a scheduling cycle decided from, kept for the estimate.
#[derive(Debug, Clone, Default)]
pub struct EtaInputs {
    /// The waiting jobs the cycle considered, grouped by namespace, each in queue order.
    pub candidates: Vec<Candidate>,
    /// Their expected run times, ms, by index (`None`: the default).
    pub expected: Vec<Option<i64>>,
    /// Their `maxRuntime`, ms, by index (`None`: none).
    pub max_runtime: Vec<Option<i64>>,
    /// The room after reservations.
    pub snapshot: Snapshot,
    /// What each namespace holds.
    pub held: BTreeMap<String, Resources>,
    /// Per-namespace settings.
    pub namespaces: BTreeMap<String, NamespacePolicy>,
    /// Settings of the other namespaces.
    pub default_policy: NamespacePolicy,
    /// Backfill's settings (the default run time, the overrun margin).
    pub backfill: BackfillSettings,
    /// Aging bounds by level index.
    pub aging: Vec<Option<i64>>,
    /// The jobs holding room: demand, expected end (ms), namespace.
    pub running: Vec<(Demand, i64, String)>,
}

#[derive(Debug, Clone)]
struct Cached {
    generation: u64,
    computed_at_ms: i64,
    /// Wall-clock time the computation took, ms.
    took_ms: i64,
    starts: Arc<HashMap<String, i64>>,
}

#[derive(Debug, Default)]
struct Recorded {
    generation: u64,
    inputs: Option<Arc<EtaInputs>>,
}

/// The last cycle's inputs and the estimate computed from them.
#[derive(Debug, Default)]
pub struct EtaBook {
    recorded: std::sync::Mutex<Recorded>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl EtaBook {
    /// An empty book: no estimate until a cycle is recorded.
    pub fn new() -> Self {
        Self::default()
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        match self.recorded.lock() {
            Ok(g) => g,
            // Replaced whole under the lock: a panic elsewhere cannot leave it half written.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Keeps a cycle's inputs (the estimate is computed from them when asked), bounded to
    /// [`PER_NAMESPACE`] jobs per namespace and [`MAX_JOBS`] in all.
    pub fn record(&self, mut inputs: EtaInputs) {
        let mut per_ns: HashMap<&str, usize> = HashMap::new();
        let mut kept = 0usize;
        let keep: Vec<bool> = inputs
            .candidates
            .iter()
            .map(|c| {
                let n = per_ns.entry(c.namespace.as_str()).or_default();
                let k = *n < PER_NAMESPACE && kept < MAX_JOBS;
                if k {
                    *n += 1;
                    kept += 1;
                }
                k
            })
            .collect();
        if kept < inputs.candidates.len() {
            let keeps = |i: usize| keep.get(i).copied().unwrap_or(false);
            inputs.candidates = std::mem::take(&mut inputs.candidates)
                .into_iter()
                .enumerate()
                .filter_map(|(i, c)| keeps(i).then_some(c))
                .collect();
            inputs.expected = std::mem::take(&mut inputs.expected)
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| keeps(i).then_some(e))
                .collect();
        }
        let mut r = self.recorded();
        r.generation = r.generation.wrapping_add(1);
        r.inputs = Some(Arc::new(inputs));
    }

    /// Forgets what was recorded (a new term as leader).
    pub fn clear(&self) {
        let mut r = self.recorded();
        r.generation = r.generation.wrapping_add(1);
        r.inputs = None;
    }

    /// The estimated start of every job of the last recorded cycle that has one, ms, at
    /// `now_ms`; none before the first cycle.
    pub async fn estimates(&self, now_ms: i64) -> Option<Arc<HashMap<String, i64>>> {
        let (generation, inputs) = {
            let r = self.recorded();
            (r.generation, r.inputs.clone()?)
        };
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let age = now_ms.saturating_sub(c.computed_at_ms);
            let keep = MIN_AGE_MS.max(c.took_ms.saturating_mul(COST_FACTOR));
            if age < keep || (c.generation == generation && age < MAX_AGE_MS.max(keep)) {
                return Some(c.starts.clone());
            }
        }
        let started = std::time::Instant::now();
        let starts = match tokio::task::spawn_blocking(move || compute(&inputs, now_ms)).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!("estimating start times: {e}");
                return None;
            }
        };
        *cache = Some(Cached {
            generation,
            computed_at_ms: now_ms,
            took_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            starts: starts.clone(),
        });
        Some(starts)
    }
}

/// The estimated starts of `inputs`' candidates at `now_ms`, by job id.
pub fn compute(inputs: &EtaInputs, now_ms: i64) -> HashMap<String, i64> {
    let running = place(&inputs.snapshot, &inputs.running);
    let steps = (2 * (inputs.candidates.len() + running.len()) + 1).min(MAX_STEPS);
    let starts = estimate_starts(
        &CycleInput {
            candidates: &inputs.candidates,
            snapshot: &inputs.snapshot,
            held: &inputs.held,
            namespaces: &inputs.namespaces,
            default_policy: inputs.default_policy,
        },
        &Timing {
            now_ms,
            expected_ms: &inputs.expected,
            max_runtime_ms: &inputs.max_runtime,
            running: &running,
            backfill: inputs.backfill,
            aging: &inputs.aging,
        },
        steps,
    );
    inputs
        .candidates
        .iter()
        .zip(starts)
        .filter_map(|(c, s)| Some((c.id.clone(), s?)))
        .collect()
}

/// Where the running jobs most likely hold their room (first fit into the room held on each
/// node, as [`sluice_core::cycle::place_running`] does), keeping each one's namespace so that
/// its room goes back to it when it ends.
fn place(snapshot: &Snapshot, jobs: &[(Demand, i64, String)]) -> Vec<RunningJob> {
    if snapshot.allocatable.len() != snapshot.nodes.len() {
        return Vec::new();
    }
    let held: Vec<NodeCapacity> = snapshot
        .allocatable
        .iter()
        .zip(&snapshot.nodes)
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
    let mut fitter = Fitter::new(&held);
    jobs.iter()
        .filter_map(|(demand, end_ms, ns)| {
            let p = fitter.try_place(demand).ok()?;
            let mut run = RunningJob::placed(*end_ms, demand, &p);
            run.namespace = ns.clone();
            Some(run)
        })
        .collect()
}

#[cfg(test)]
mod tests;
