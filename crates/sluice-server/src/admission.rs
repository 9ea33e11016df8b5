//! The one admission gate: can this job ever run on this backend? Asked when a job is
//! submitted, when a schedule is created (of its template), and before an out-of-memory retry
//! raises a job's memory; all three give the same answer in the same words.

use std::time::Duration;

use sluice_backend::{Backend, BackendError};
use sluice_core::NodeCapacity;
use sluice_core::capacity::fits_empty;
use sluice_core::job::Demand;
use sluice_core::sizing::job_demand;
use sluice_core::spec::{Job, SpecError};

use crate::state::AppState;

/// Why a job may not be admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The job's spec is invalid (a quantity Spark's sizing rules refuse); names the field.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// The job can never run on this backend: the backend refuses it, it could not fit even the
    /// empty cluster, or no node or quota could ever take it.
    #[error("can never run on the {backend} backend: {why}")]
    Never {
        /// The backend's kind.
        backend: &'static str,
        /// Why, for people.
        why: String,
    },
    /// The backend could not be asked (unreachable, say).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The demand `job` places on `backend`, if it can ever run there: its pod demand (which
/// validates the spec), the backend's demand (or its refusal), a fit on the empty cluster
/// `allocatable` (skipped when the backend does not know its room yet) and the backend's
/// never-runs verdict (selectors, taints, quota hard limits).
pub fn gate(
    backend: &dyn Backend,
    allocatable: &[NodeCapacity],
    job: &Job,
) -> Result<Demand, Refusal> {
    let demand = demand(backend, job)?;
    placeable(backend, allocatable, job, &demand)?;
    Ok(demand)
}

/// How old the backend's capacity may be for [`check`]: its allocatable room (the cluster's
/// nodes, not what is free) changes when nodes come and go, not from one submit to the next.
pub const ROOM_FRESH: Duration = Duration::from_secs(1);

/// [`gate`] against the backend's allocatable room as read at most [`ROOM_FRESH`] ago (asked
/// only once the spec and the backend's demand are known to be good).
pub async fn check(state: &AppState, job: &Job) -> Result<Demand, Refusal> {
    let backend = state.backend.as_ref();
    let demand = demand(backend, job)?;
    let report = state.capacity_within(ROOM_FRESH).await?;
    placeable(backend, &report.snapshot.allocatable, job, &demand)?;
    Ok(demand)
}

fn never(backend: &dyn Backend, why: String) -> Refusal {
    Refusal::Never {
        backend: backend.kind(),
        why,
    }
}

/// The spec's check and the backend's demand.
fn demand(backend: &dyn Backend, job: &Job) -> Result<Demand, Refusal> {
    job_demand(job)?;
    backend.demand(job).map_err(|e| match e {
        BackendError::Rejected(m) => never(backend, m),
        other => Refusal::Backend(other),
    })
}

/// The fit on the empty cluster and the backend's never-runs verdict.
fn placeable(
    backend: &dyn Backend,
    allocatable: &[NodeCapacity],
    job: &Job,
    demand: &Demand,
) -> Result<(), Refusal> {
    if !allocatable.is_empty()
        && let Err(nofit) = fits_empty(demand, allocatable)
    {
        return Err(never(backend, nofit.to_string()));
    }
    match backend.never_runs(job, demand) {
        Some(why) => Err(never(backend, why)),
        None => Ok(()),
    }
}
