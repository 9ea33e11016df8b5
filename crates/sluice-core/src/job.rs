//! Job states, demand and the transition history of a job (the stored record is in
//! [`crate::record`]).
//!
//! These types are shared by the store (which persists them), the backends (which run jobs) and
//! the server (which moves jobs between states). Times are integer milliseconds since the Unix
//! epoch, passed in by the caller.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// CPU in millicores and memory in MiB: the two resources sluice schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Hash)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub mem_mib: u64,
}

impl Resources {
    /// Builds a resource pair.
    pub const fn new(cpu_milli: u64, mem_mib: u64) -> Self {
        Self { cpu_milli, mem_mib }
    }

    /// True when `self` holds at least `other` in every resource.
    pub fn covers(&self, other: &Resources) -> bool {
        self.cpu_milli >= other.cpu_milli && self.mem_mib >= other.mem_mib
    }

    /// Component-wise sum, saturating: capacity sums never wrap round to a small value, so a
    /// fit check can only be too strict, never too lenient.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_add(other.cpu_milli),
            self.mem_mib.saturating_add(other.mem_mib),
        )
    }

    /// Component-wise difference, floored at zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_sub(other.cpu_milli),
            self.mem_mib.saturating_sub(other.mem_mib),
        )
    }

    /// Multiplies both resources by `n` (saturating).
    pub fn times(&self, n: u64) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_mul(n),
            self.mem_mib.saturating_mul(n),
        )
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {}",
            crate::quantity::format_cpu(self.cpu_milli),
            crate::quantity::format_mem(self.mem_mib)
        )
    }
}

/// What a pod (or process) of a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Spark driver.
    Driver,
    /// A Spark executor.
    Executor,
    /// The single process of a command job.
    Task,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Driver => "driver",
            Role::Executor => "executor",
            Role::Task => "task",
        })
    }
}

/// `count` identical pods of one role, each requesting `cpu_milli` and `mem_mib`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDemand {
    /// The role of these pods.
    pub role: Role,
    /// How many pods of this role the job needs before it can make progress.
    pub count: u32,
    /// CPU request of one pod, in millicores.
    pub cpu_milli: u64,
    /// Memory request of one pod (memory plus overhead), in MiB.
    pub mem_mib: u64,
}

impl PodDemand {
    /// The request of one pod.
    pub fn each(&self) -> Resources {
        Resources::new(self.cpu_milli, self.mem_mib)
    }
}

/// Everything a job must hold at once: the driver first, then the executors (or one task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Demand {
    /// The pods, in placement order: the driver comes first.
    pub pods: Vec<PodDemand>,
}

impl Demand {
    /// Sum over all pods (saturating: a resource sum never wraps round to a small value; see
    /// [`Demand::checked_total`]).
    pub fn total(&self) -> Resources {
        self.pods.iter().fold(Resources::default(), |acc, p| {
            acc.plus(&p.each().times(u64::from(p.count)))
        })
    }

    /// Sum over all pods, or `None` if it cannot be represented. The sizing rules refuse a
    /// job whose demand has no checked total, so [`Demand::total`] of a sized demand never
    /// saturates.
    pub fn checked_total(&self) -> Option<Resources> {
        self.pods.iter().try_fold(Resources::default(), |acc, p| {
            let n = u64::from(p.count);
            Some(Resources::new(
                acc.cpu_milli.checked_add(p.cpu_milli.checked_mul(n)?)?,
                acc.mem_mib.checked_add(p.mem_mib.checked_mul(n)?)?,
            ))
        })
    }

    /// Number of pods.
    pub fn pod_count(&self) -> u64 {
        self.pods
            .iter()
            .fold(0u64, |acc, p| acc.saturating_add(u64::from(p.count)))
    }

    /// The largest single pod request (component-wise maximum over pods).
    pub fn largest_pod(&self) -> Resources {
        self.pods
            .iter()
            .filter(|p| p.count > 0)
            .fold(Resources::default(), |acc, p| {
                Resources::new(acc.cpu_milli.max(p.cpu_milli), acc.mem_mib.max(p.mem_mib))
            })
    }

    /// The demand of one role, if the job has pods of that role.
    pub fn role(&self, role: Role) -> Option<&PodDemand> {
        self.pods.iter().find(|p| p.role == role)
    }
}

impl fmt::Display for Demand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(
            f,
            "{} cores / {}",
            crate::quantity::format_cpu_plain(total.cpu_milli),
            crate::quantity::format_mem(total.mem_mib)
        )?;
        let parts: Vec<String> = self
            .pods
            .iter()
            .map(|p| format!("{} x {} {}", p.count, p.role, p.each()))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(" + "))?;
        }
        Ok(())
    }
}

/// The life cycle of a job.
///
/// `queued -> admitted -> submitted -> running -> succeeded | failed`, and `cancelled` from any
/// non-terminal state. `admitted` means the scheduling cycle reserved room for the job and the
/// submitter has not yet heard the backend accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting in its queue.
    Queued,
    /// Picked by the scheduling cycle; room is reserved; not yet accepted by the backend.
    Admitted,
    /// Accepted by the backend, not yet seen running.
    Submitted,
    /// Running in the backend.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully (including a run lost while sluice was down).
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobState {
    /// Every state, in life-cycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Admitted,
        JobState::Submitted,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// States in which the job holds (or is about to hold) backend resources.
    pub const ACTIVE: [JobState; 3] = [JobState::Admitted, JobState::Submitted, JobState::Running];

    /// The lowercase name used in the API, the CLI and the store.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Admitted => "admitted",
            JobState::Submitted => "submitted",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True for succeeded, failed and cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether a job may move from `self` to `to`.
    pub fn can_move_to(&self, to: JobState) -> bool {
        use JobState::*;
        match (self, to) {
            (a, b) if a.is_terminal() || *a == b => false,
            (_, Cancelled) => true,
            (Queued, Admitted) => true,
            // Admitted jobs go back to the queue when the backend turns them away for want of room.
            (Admitted, Queued | Submitted | Failed) => true,
            (Submitted, Running | Succeeded | Failed) => true,
            (Running, Succeeded | Failed) => true,
            // A run the backend stopped because it could not make progress (the deadlock
            // watchdog) goes back to its queue; the store starts a new attempt.
            (Submitted | Running, Queued) => true,
            _ => false,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job state {0:?} (expected one of queued, admitted, submitted, running, succeeded, failed, cancelled)"
)]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// One entry of a job's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job.
    pub job_id: String,
    /// When it happened.
    pub at_ms: i64,
    /// The state before (none for creation).
    pub from: Option<JobState>,
    /// The state after.
    pub to: JobState,
    /// What happened.
    pub message: String,
}

#[cfg(test)]
mod tests;
