//! The cluster and the queues now (`GET /v1/cluster`, `GET /v1/queues`).

use serde::{Deserialize, Serialize};

/// What one namespace holds now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NamespaceUsage {
    /// Namespace.
    pub namespace: String,
    /// CPU requested by its admitted, submitted and running jobs, in millicores.
    pub cpu_milli: u64,
    /// Memory requested by those jobs, in MiB.
    pub memory_mib: u64,
    /// Jobs admitted, not yet submitted.
    pub admitted: u64,
    /// Jobs submitted, not yet seen running.
    pub submitted: u64,
    /// Jobs running.
    pub running: u64,
}

/// The cluster now: capacity, what is taken, and by which namespace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ClusterView {
    /// Backend kind.
    pub backend: String,
    /// Whether the backend answered its capacity check.
    pub backend_available: bool,
    /// CPU the backend can allocate in all, in millicores.
    pub capacity_cpu_milli: u64,
    /// Memory the backend can allocate in all, in MiB.
    pub capacity_memory_mib: u64,
    /// CPU in use or reserved: what the backend counts as used plus the reservations, in millicores.
    pub allocated_cpu_milli: u64,
    /// Memory in use or reserved, in MiB.
    pub allocated_memory_mib: u64,
    /// Jobs admitted but not yet seen by the backend, whose room sluice holds.
    pub reservations: u64,
    /// Each namespace with admitted, submitted or running jobs, by name.
    pub namespaces: Vec<NamespaceUsage>,
}

/// One queue: a namespace and a level.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct QueueView {
    /// Namespace.
    pub namespace: String,
    /// Priority level.
    pub level: String,
    /// Jobs waiting.
    pub queued: u64,
    /// When the oldest waiting job entered the queue (RFC 3339).
    pub oldest_enqueued_at: String,
    /// How long the oldest has waited, in seconds.
    pub oldest_wait_seconds: f64,
}
