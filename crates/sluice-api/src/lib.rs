//! The wire types of sluice's HTTP API: what the server answers and the client decodes, with
//! the few pure helpers both need (RFC 3339 times, the resubmittable document, the token file's
//! name). Serde types only: the client (`sluice` built without its `server` feature) uses this
//! crate and compiles none of the server. With the `schema` feature every type also derives
//! `utoipa::ToSchema`, which is how the server's `/openapi.json` describes them.
//!
//! Modules by layer, each importing only from the ones below it:
//! - [`resubmit`] (`get -o yaml`: the document with a `status`);
//! - [`orch`] (schedules, the dead-letter queue), [`cluster`], [`tokens`], [`cost`],
//!   [`workflows`];
//! - [`jobs`] (a job as the API shows it);
//! - [`error`], [`time`] (leaves).

pub mod cluster;
pub mod cost;
pub mod error;
pub mod jobs;
pub mod orch;
pub mod resubmit;
pub mod time;
pub mod tokens;
pub mod workflows;

pub use cluster::{ClusterView, NamespaceUsage, QueueView};
pub use cost::{AdviceView, AppliedView, CostView, RunCostView};
pub use error::ErrorBody;
pub use jobs::{
    DemandView, EventView, JobList, JobView, LogsView, OrchView, PodDemandView, RunResultView,
    SetAside, WaitInfo,
};
pub use orch::{DeadLetterView, PurgeView, RequeueView, ScheduleView};
pub use resubmit::{DocumentError, resubmittable};
pub use tokens::{AuditView, NewTokenView, TokenView, WhoAmI};
pub use workflows::{RunView, StepDefView, StepView, WorkflowApplyView, WorkflowView};

/// The name of the file, in the server's data directory, that holds the admin token the server
/// makes on its first start (the client reads it when no other token is given).
pub const TOKEN_FILE: &str = "admin.token";
