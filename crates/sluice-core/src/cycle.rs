//! One scheduling cycle over the queues, after Kueue's scheduler and dominant resource fairness.
//!
//! - There is one queue per (namespace, priority level). Within a namespace jobs go in the order
//!   (level, `enqueued_at_ms`, id): a higher level always goes first, FIFO within a level.
//! - Between namespaces, the next decision goes to the namespace with the lowest weighted
//!   dominant share of what it holds, `max(cpu held / cpu total, mem held / mem total) / weight`,
//!   counting what it was admitted earlier in the same cycle (ties: the head with the better
//!   level, then the earlier enqueued, then the namespace name). A binary heap keyed on that share
//!   makes each decision O(log namespaces) plus the fit.
//! - A job is admitted when all its pods fit the free nodes ([`Fitter::try_place`]). Under
//!   [`HeadPolicy::Strict`] the first job of a namespace that does not fit blocks every later job
//!   of that namespace, lower levels included (Kueue's StrictFIFO); under
//!   [`HeadPolicy::BestEffort`] later jobs may still pass it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::capacity::{Eligible, Fitter, NoFit, Placement, Snapshot};
use crate::job::{Demand, Resources};

/// What happens behind a namespace's first job that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadPolicy {
    /// The job blocks every later job of the namespace, lower levels included.
    #[default]
    Strict,
    /// Later jobs of the namespace that fit are admitted past it.
    BestEffort,
}

impl HeadPolicy {
    /// The name used in configuration: "strict" or "best-effort".
    pub fn as_str(&self) -> &'static str {
        match self {
            HeadPolicy::Strict => "strict",
            HeadPolicy::BestEffort => "best-effort",
        }
    }
}

impl fmt::Display for HeadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A head-of-line policy name that is neither "strict" nor "best-effort".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown head-of-line policy {0:?} (expected strict or best-effort)")]
pub struct UnknownHeadPolicy(pub String);

impl FromStr for HeadPolicy {
    type Err = UnknownHeadPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(HeadPolicy::Strict),
            "best-effort" => Ok(HeadPolicy::BestEffort),
            _ => Err(UnknownHeadPolicy(s.to_string())),
        }
    }
}

/// Scheduling settings of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespacePolicy {
    /// Fair-share weight, at least 1 (0 is read as 1): a namespace of weight 2 gets about twice
    /// the share of a namespace of weight 1.
    pub weight: u32,
    /// Head-of-line policy.
    pub policy: HeadPolicy,
}

impl Default for NamespacePolicy {
    fn default() -> Self {
        Self {
            weight: 1,
            policy: HeadPolicy::Strict,
        }
    }
}

/// A queued job, as the cycle sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Job id (unique; the last FIFO tie-break).
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Priority level index: 0 is the highest priority.
    pub level: usize,
    /// When the job entered its queue.
    pub enqueued_at_ms: i64,
    /// Pods the job needs at once.
    pub demand: Demand,
    /// What the backend adds to the fit (node selectors, taints, quotas); `None`: nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
}

/// What a backend adds to a job's fit beyond free room per node (Kubernetes: node selectors
/// and taints per role, the namespace's ResourceQuota).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Constraints {
    /// Which nodes the pods of each role may use (see [`Fitter::try_place_on`]).
    #[serde(default)]
    pub eligible: Eligible,
    /// Set when the job cannot be admitted now whatever the nodes hold (a namespace quota that
    /// cannot take it): the reason, for people. The job waits as if it did not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// Everything one cycle decides on.
#[derive(Debug, Clone, Copy)]
pub struct CycleInput<'a> {
    /// Queued jobs, in any order.
    pub candidates: &'a [Candidate],
    /// Free room after the caller subtracted reservations (jobs admitted but not yet visible in
    /// the backend; see [`Fitter::reserve`]).
    pub snapshot: &'a Snapshot,
    /// What each namespace holds now (running and admitted jobs).
    pub held: &'a BTreeMap<String, Resources>,
    /// Per-namespace settings.
    pub namespaces: &'a BTreeMap<String, NamespacePolicy>,
    /// Settings for namespaces not in `namespaces`.
    pub default_policy: NamespacePolicy,
}

/// A job the cycle admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// Index into [`CycleInput::candidates`].
    pub index: usize,
    /// Where its pods go.
    pub placement: Placement,
}

/// Why a job keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitReason {
    /// The backend could not be reached; nothing is admitted.
    BackendUnavailable,
    /// The job does not fit the free room now.
    NoRoom(NoFit),
    /// A job ahead in a strict namespace does not fit, and this one waits behind it.
    BlockedBehind {
        /// Id of the job at the head of the namespace.
        head_id: String,
        /// The namespace.
        namespace: String,
    },
    /// The backend's constraints hold the job back (a namespace quota, say).
    Constrained {
        /// The backend's reason.
        message: String,
    },
}

impl WaitReason {
    /// A short stable name: "backend-unavailable", "no-room", "blocked" or "constrained".
    pub fn kind(&self) -> &'static str {
        match self {
            WaitReason::BackendUnavailable => "backend-unavailable",
            WaitReason::NoRoom(_) => "no-room",
            WaitReason::BlockedBehind { .. } => "blocked",
            WaitReason::Constrained { .. } => "constrained",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::BackendUnavailable => f.write_str("backend unavailable"),
            WaitReason::NoRoom(no_fit) => no_fit.fmt(f),
            WaitReason::BlockedBehind { head_id, namespace } => write!(
                f,
                "behind job {head_id} at the head of namespace {namespace}, which does not fit \
                 (strict FIFO)"
            ),
            WaitReason::Constrained { message } => f.write_str(message),
        }
    }
}

/// A job the cycle left in its queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Index into [`CycleInput::candidates`].
    pub index: usize,
    /// Why it waits.
    pub reason: WaitReason,
    /// 1-based position among the jobs of its namespace still waiting, in queue order.
    pub position: u32,
    /// 1-based position among the jobs of its (namespace, level) queue still waiting.
    pub level_position: u32,
}

/// The decisions of one cycle: every candidate appears exactly once in one of the two lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CycleOutput {
    /// Admitted jobs, in admission order.
    pub admitted: Vec<Admission>,
    /// Waiting jobs, by namespace name and then queue order.
    pub waiting: Vec<Waiting>,
}

/// What the cycle decided for one job (indexed by position in the sorted order).
enum Outcome {
    Undecided,
    Admitted,
    NoRoom(NoFit),
    /// Held back by the backend's constraints.
    Constrained(String),
    /// Blocked behind the job at this sorted position.
    Blocked(usize),
}

/// The jobs of one namespace: a run of the sorted order.
struct Queue<'a> {
    name: &'a str,
    /// Sorted positions `start..end`; `next` is the first undecided one.
    start: usize,
    next: usize,
    end: usize,
    policy: NamespacePolicy,
    held: Resources,
}

/// Heap key of a namespace with undecided jobs; the smallest goes next. Queues are numbered in
/// namespace name order, so the last field breaks ties by name.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Turn {
    share: u128,
    level: usize,
    enqueued_at_ms: i64,
    queue: usize,
}

/// Parts per 10^12 of the total: exact integer shares, so ties are real ties.
const SHARE_SCALE: u128 = 1_000_000_000_000;

/// Weighted dominant share of `held` in `total`, in parts per [`SHARE_SCALE`].
fn dominant_share(held: Resources, total: Resources, weight: u32) -> u128 {
    let part = |h: u64, t: u64| {
        if t == 0 {
            0
        } else {
            u128::from(h) * SHARE_SCALE / u128::from(t)
        }
    };
    let share = part(held.cpu_milli, total.cpu_milli).max(part(held.mem_mib, total.mem_mib));
    share / u128::from(weight.max(1))
}

/// Runs one scheduling cycle. Pure and deterministic: the result depends on the candidates'
/// keys (namespace, level, enqueued time, id), not on their order in the slice.
pub fn schedule<'a>(input: &CycleInput<'a>) -> CycleOutput {
    let cands = input.candidates;

    // Number the namespaces in name order, so that the sort below compares integers.
    let mut ids: BTreeMap<&'a str, usize> = BTreeMap::new();
    let ns_id: Vec<usize> = cands
        .iter()
        .map(|c| {
            let next = ids.len();
            *ids.entry(c.namespace.as_str()).or_insert(next)
        })
        .collect();
    let mut rank = vec![0; ids.len()];
    let mut names: Vec<&'a str> = Vec::with_capacity(ids.len());
    for (r, (&name, &id)) in ids.iter().enumerate() {
        rank[id] = r;
        names.push(name);
    }

    // Sort once: by namespace, then queue order (level, enqueued time, id). The keys stay in
    // sorted order next to each other, so walking a queue does not touch the candidates.
    let mut keys: Vec<(usize, usize, i64, usize)> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| (rank[ns_id[i]], c.level, c.enqueued_at_ms, i))
        .collect();
    keys.sort_unstable_by(|x, y| {
        (x.0, x.1, x.2)
            .cmp(&(y.0, y.1, y.2))
            .then_with(|| cands[x.3].id.cmp(&cands[y.3].id))
            .then(x.3.cmp(&y.3))
    });

    // One queue per namespace, in name order.
    let mut queues: Vec<Queue<'a>> = Vec::with_capacity(names.len());
    let mut start = 0;
    while start < keys.len() {
        let ns = keys[start].0;
        let len = keys[start..]
            .iter()
            .position(|k| k.0 != ns)
            .unwrap_or(keys.len() - start);
        let name = names[ns];
        queues.push(Queue {
            name,
            start,
            next: start,
            end: start + len,
            policy: input
                .namespaces
                .get(name)
                .copied()
                .unwrap_or(input.default_policy),
            held: input.held.get(name).copied().unwrap_or_default(),
        });
        start += len;
    }
    let mut outcomes: Vec<Outcome> = (0..keys.len()).map(|_| Outcome::Undecided).collect();
    let mut admitted = Vec::new();

    if input.snapshot.available {
        let total = share_total(input);
        let turn = |q: &Queue<'a>, queue: usize| -> Reverse<Turn> {
            let (_, level, enqueued_at_ms, _) = keys[q.next];
            Reverse(Turn {
                share: dominant_share(q.held, total, q.policy.weight),
                level,
                enqueued_at_ms,
                queue,
            })
        };
        let mut heap: BinaryHeap<Reverse<Turn>> =
            queues.iter().enumerate().map(|(k, q)| turn(q, k)).collect();
        let mut fitter = Fitter::new(&input.snapshot.nodes);

        while let Some(Reverse(Turn { queue, .. })) = heap.pop() {
            let q = &mut queues[queue];
            let pos = q.next;
            let index = keys[pos].3;
            let job = &cands[index];
            q.next += 1;
            let placed = match &job.constraints {
                None => fitter.try_place(&job.demand).map_err(Outcome::NoRoom),
                Some(Constraints {
                    blocked: Some(why), ..
                }) => Err(Outcome::Constrained(why.clone())),
                Some(c) => fitter
                    .try_place_on(&job.demand, Some(&c.eligible))
                    .map_err(Outcome::NoRoom),
            };
            match placed {
                Ok(placement) => {
                    outcomes[pos] = Outcome::Admitted;
                    admitted.push(Admission { index, placement });
                    q.held = q.held.plus(&job.demand.total());
                }
                Err(outcome) => {
                    outcomes[pos] = outcome;
                    if q.policy.policy == HeadPolicy::Strict {
                        for blocked in &mut outcomes[q.next..q.end] {
                            *blocked = Outcome::Blocked(pos);
                        }
                        q.next = q.end;
                    }
                }
            }
            if q.next < q.end {
                heap.push(turn(q, queue));
            }
        }
    }

    // Everything left is waiting: number the positions in queue order.
    let mut waiting = Vec::with_capacity(keys.len() - admitted.len());
    for q in &queues {
        let mut position = 0u32;
        let mut level_position = 0u32;
        let mut level = None;
        for pos in q.start..q.end {
            let reason = match std::mem::replace(&mut outcomes[pos], Outcome::Undecided) {
                Outcome::Admitted => continue,
                Outcome::Undecided => WaitReason::BackendUnavailable,
                Outcome::NoRoom(no_fit) => WaitReason::NoRoom(no_fit),
                Outcome::Constrained(message) => WaitReason::Constrained { message },
                Outcome::Blocked(head) => WaitReason::BlockedBehind {
                    head_id: cands[keys[head].3].id.clone(),
                    namespace: q.name.to_string(),
                },
            };
            let (_, job_level, _, index) = keys[pos];
            if level != Some(job_level) {
                level = Some(job_level);
                level_position = 0;
            }
            position = position.saturating_add(1);
            level_position = level_position.saturating_add(1);
            waiting.push(Waiting {
                index,
                reason,
                position,
                level_position,
            });
        }
    }

    CycleOutput { admitted, waiting }
}

/// The cluster total that shares are measured against: the allocatable room, or, for a
/// resource the backend reports no allocatable room of, the free room plus everything held.
fn share_total(input: &CycleInput<'_>) -> Resources {
    let allocatable = input.snapshot.total_allocatable();
    let fallback = input
        .held
        .values()
        .fold(input.snapshot.total_free(), |acc, h| acc.plus(h));
    Resources::new(
        if allocatable.cpu_milli == 0 {
            fallback.cpu_milli
        } else {
            allocatable.cpu_milli
        },
        if allocatable.mem_mib == 0 {
            fallback.mem_mib
        } else {
            allocatable.mem_mib
        },
    )
}

#[cfg(test)]
mod tests;
