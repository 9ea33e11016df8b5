//! The cluster now, as `GET /v1/cluster`, `sluice top` and the metrics see it: the backend's
//! capacity, what is allocated or reserved, and by which namespace.

use std::collections::BTreeMap;

pub use sluice_api::cluster::{ClusterView, NamespaceUsage};
use sluice_backend::{Backend, CapacityReport};
use sluice_core::job::{JobState, Resources};
use sluice_store::{Store, StoreError};

/// Reads the cluster view: the backend's capacity as `report` gives it (the last tick's; none
/// if it could not be read) and the store's active jobs.
pub async fn cluster_view(
    store: &dyn Store,
    backend: &dyn Backend,
    report: Option<std::sync::Arc<CapacityReport>>,
) -> Result<ClusterView, StoreError> {
    let active = store.jobs_in_states(&JobState::ACTIVE).await?;
    let mut by_ns: BTreeMap<String, NamespaceUsage> = BTreeMap::new();
    let mut reserved = Resources::default();
    let mut reservations = 0u64;
    for j in &active {
        let total = j.demand.total();
        let u = by_ns
            .entry(j.namespace.clone())
            .or_insert_with(|| NamespaceUsage {
                namespace: j.namespace.clone(),
                cpu_milli: 0,
                memory_mib: 0,
                admitted: 0,
                submitted: 0,
                running: 0,
            });
        u.cpu_milli = u.cpu_milli.saturating_add(total.cpu_milli);
        u.memory_mib = u.memory_mib.saturating_add(total.mem_mib);
        match j.state {
            JobState::Admitted => u.admitted += 1,
            JobState::Submitted => u.submitted += 1,
            _ => u.running += 1,
        }
        if let Some(r) = &report
            && !r.visible.contains(&j.id)
        {
            reserved = reserved.plus(&total);
            reservations += 1;
        }
    }
    let (available, capacity, free) = match &report {
        Some(r) => (
            r.snapshot.available,
            r.snapshot.total_allocatable(),
            r.snapshot.total_free(),
        ),
        None => (false, Resources::default(), Resources::default()),
    };
    let used = Resources::new(
        capacity.cpu_milli.saturating_sub(free.cpu_milli),
        capacity.mem_mib.saturating_sub(free.mem_mib),
    )
    .plus(&reserved);
    Ok(ClusterView {
        backend: backend.kind().to_string(),
        backend_available: available,
        capacity_cpu_milli: capacity.cpu_milli,
        capacity_memory_mib: capacity.mem_mib,
        allocated_cpu_milli: used.cpu_milli.min(capacity.cpu_milli),
        allocated_memory_mib: used.mem_mib.min(capacity.mem_mib),
        reservations,
        namespaces: by_ns.into_values().collect(),
    })
}
