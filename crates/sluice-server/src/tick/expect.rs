//! Expected run times for the admit step: each waiting job's (from the in-memory queue entry's
//! name and `maxRuntime`, and the run-time history, [`crate::runtime`]) and the expected end of
//! every job that holds room. No queued job is read from the store: the histories the tick
//! needs are read at most a few per tick and cached.

use std::sync::Arc;

use sluice_core::capacity::Snapshot;
use sluice_core::cycle::{RunningJob, place_running};
use sluice_core::job::Demand;
use sluice_core::queue::QueueEntry;
use sluice_core::record::JobRecord;

use crate::queue::max_runtime_ms;
use crate::state::AppState;

/// What a waiting job's expected run time is computed from.
#[derive(Debug, Clone)]
pub struct RunKey {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Its `maxRuntime`, ms.
    pub max_runtime_ms: Option<i64>,
}

impl RunKey {
    /// The key of a queue entry.
    pub fn of(e: &QueueEntry) -> RunKey {
        RunKey {
            namespace: e.namespace.clone(),
            name: e.name.clone(),
            max_runtime_ms: e.max_runtime_ms,
        }
    }
}

/// The expected run time of each waiting job (by index of `runs`; `None`: the configured
/// default) and, for each job holding room (`active`), its demand, expected end (its start
/// plus its expected run time, else the default) and namespace. Reads the histories of the
/// names it needs that are missing or old first (a few per tick, see [`crate::runtime`]).
pub async fn expected_runs(
    state: &AppState,
    runs: &[RunKey],
    active: &[std::sync::Arc<JobRecord>],
    now_ms: i64,
) -> (Vec<Option<i64>>, Vec<(Demand, i64, String)>) {
    let book = &state.runtimes;
    let keys = active
        .iter()
        .map(|j| (j.namespace.as_str(), j.name.as_str()))
        .chain(runs.iter().map(|k| (&*k.namespace, &*k.name)));
    // A history that cannot be read leaves the estimates as they were: never a reason to
    // stop admitting.
    if let Err(e) = book
        .refresh(
            state.store.as_ref(),
            keys,
            state.config.scheduler.runtime_history_runs,
            now_ms,
        )
        .await
    {
        tracing::warn!(
            "reading run-time histories: {}",
            crate::fault::store_detail(&e)
        );
    }
    let expected = runs
        .iter()
        .map(|k| book.expected_ms(&k.namespace, &k.name, k.max_runtime_ms, now_ms))
        .collect();
    let default = state.config.backfill().default_runtime_ms;
    let ends = active
        .iter()
        .map(|j| {
            let start = j.started_at_ms.unwrap_or(j.updated_at_ms);
            let run = book
                .expected_ms(&j.namespace, &j.name, max_runtime_ms(j), now_ms)
                .unwrap_or(default);
            (
                j.demand.clone(),
                start.saturating_add(run),
                j.namespace.clone(),
            )
        })
        .collect();
    (expected, ends)
}

/// The jobs holding room, placed on the nodes where they most likely run
/// ([`place_running`]), for backfill.
pub fn placed(snapshot: &Snapshot, ends: &[(Demand, i64, String)]) -> Vec<RunningJob> {
    let jobs: Vec<(Demand, i64)> = ends.iter().map(|(d, e, _)| (d.clone(), *e)).collect();
    place_running(&snapshot.allocatable, &snapshot.nodes, &jobs)
}
