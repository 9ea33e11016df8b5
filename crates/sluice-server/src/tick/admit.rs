//! Step 3 of the tick: admit. The backend's capacity, less the reservations of jobs it does not
//! show yet, goes to the pure cycle ([`sluice_core::cycle::schedule`]); each admission is written
//! queued -> admitted, and the wait reasons and positions of the rest are kept for `describe`.

use std::collections::{BTreeMap, HashMap};

use sluice_core::capacity::{Fitter, Snapshot};
use sluice_core::cycle::{Candidate, CycleInput, schedule};
use sluice_core::job::{JobState, Resources};
use sluice_store::{StoreError, Transition};

use super::error::TickError;
use super::write::isolate;
use crate::state::{AppState, CycleView, WaitInfo};

/// Runs one scheduling cycle and writes its admissions.
pub async fn admit(state: &AppState) -> Result<(), TickError> {
    let report = state.backend.capacity().await?;
    let jobs = state
        .store
        .jobs_in_states(&[
            JobState::Queued,
            JobState::Admitted,
            JobState::Submitted,
            JobState::Running,
        ])
        .await?;
    let levels = state.config.levels();
    let mut fitter = Fitter::new(&report.snapshot.nodes);
    let mut held: BTreeMap<String, Resources> = BTreeMap::new();
    let mut candidates = Vec::new();
    let started_at = state.now_ms();
    for j in &jobs {
        // A retry waiting on its backoff joins its queue at `enqueued_at`, in the future.
        if j.state == JobState::Queued && j.enqueued_at_ms > started_at {
            continue;
        }
        // A job set aside waits out its back-off (its room, if it holds any, stays held).
        if j.state == JobState::Queued && state.aside.is_held(&j.id, started_at) {
            continue;
        }
        if j.state == JobState::Queued {
            candidates.push(Candidate {
                id: j.id.clone(),
                namespace: j.namespace.clone(),
                // A level removed from the configuration sorts last.
                level: levels.rank(&j.level).unwrap_or(levels.names.len()),
                enqueued_at_ms: j.enqueued_at_ms,
                demand: j.demand.clone(),
                constraints: state.backend.constraints(j, &report.snapshot.nodes),
            });
        } else {
            let h = held.entry(j.namespace.clone()).or_default();
            *h = h.plus(&j.demand.total());
            if !report.visible.contains(&j.id) {
                // Admitted but not yet visible in the backend: hold its room.
                fitter.reserve(&j.demand);
            }
        }
    }
    let snapshot = Snapshot {
        available: report.snapshot.available,
        nodes: fitter.nodes().to_vec(),
        allocatable: report.snapshot.allocatable.clone(),
    };
    let namespaces = state.config.namespace_policies();
    let out = schedule(&CycleInput {
        candidates: &candidates,
        snapshot: &snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy: state.config.default_policy(),
    });
    let now = state.now_ms();
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
        let t = Transition {
            id: c.id.clone(),
            from: JobState::Queued,
            to: JobState::Admitted,
            at_ms: now,
            message: format!("admitted: {} placed as {}", c.demand, nodes.join(", ")),
            backend_ref: None,
            exit_code: None,
        };
        match state.store.transition(&t).await {
            Ok(rec) => {
                state.metrics.transitioned(t.from, &rec);
                state.aside.clear(&rec.id);
            }
            // Cancelled meanwhile: nothing to do.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => isolate(state, &c.id, "recording the admission", e)?,
        }
    }
    let mut waiting = HashMap::with_capacity(out.waiting.len());
    for w in out.waiting {
        let c = &candidates[w.index];
        waiting.insert(
            c.id.clone(),
            WaitInfo {
                reason: w.reason.to_string(),
                reason_kind: w.reason.kind().to_string(),
                position: w.position,
                level_position: w.level_position,
            },
        );
    }
    let mut view = state.view.write().await;
    *view = CycleView {
        at_ms: now,
        snapshot: Some(snapshot),
        waiting,
    };
    Ok(())
}
