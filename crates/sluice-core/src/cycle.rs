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
//!   [`HeadPolicy::BestEffort`] later jobs may still pass it; under [`HeadPolicy::Backfill`]
//!   the first job that does not fit gets a reserved start (the earliest time it fits if the
//!   running jobs end as expected, see [`backfill`]) and later jobs may pass it only when they
//!   cannot delay that start. Every job that passes a blocked backfill head respects every
//!   reservation made so far in the cycle.
//! - An overdue head (a backfill head that has waited [`BackfillSettings::max_head_wait_ms`],
//!   or under any policy a head that aging raised) goes first (the aged ones before the others),
//!   and if it does not fit it holds a *hard* reservation: every later start must fit beside it
//!   unless its `maxRuntime` ends it before the reserved start (estimates do not count). In a
//!   backfill namespace the later jobs go on, on those terms; under strict and best-effort the
//!   head blocks its namespace.
//! - With aging ([`Timing::aging`]), a job that has waited the bound of its level sorts as one
//!   level higher ([`aged_level`]).
//! - With preemption ([`schedule_preempting`], opt-in per level and namespace), a job left
//!   without room may stop the fewest running jobs of strictly lower priority that make it fit
//!   ([`preempt`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::capacity::{Eligible, Fitter, NoFit, Placement, Snapshot};
use crate::job::{Demand, Resources};
use shadow::{Shadow, backfill_place};

pub mod backfill;
pub mod eta;
pub mod preempt;
pub mod prune;
mod shadow;

pub use backfill::{BackfillSettings, RunningJob, aged_level, earliest_start, place_running};
pub use eta::estimate_starts;
pub use preempt::{
    Preemptible, Preemption, PreemptionInput, PreemptionSettings, schedule_preempting,
};
pub use prune::{StrictCut, strict_cut};

/// What happens behind a namespace's first job that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadPolicy {
    /// The job blocks every later job of the namespace, lower levels included.
    #[default]
    Strict,
    /// Later jobs of the namespace that fit are admitted past it.
    BestEffort,
    /// The job gets a reserved start from the running jobs' expected ends; later jobs of the
    /// namespace that fit are admitted past it only if they cannot delay that start (EASY
    /// backfill).
    Backfill,
}

impl HeadPolicy {
    /// The name used in configuration: "strict", "best-effort" or "backfill".
    pub fn as_str(&self) -> &'static str {
        match self {
            HeadPolicy::Strict => "strict",
            HeadPolicy::BestEffort => "best-effort",
            HeadPolicy::Backfill => "backfill",
        }
    }
}

impl fmt::Display for HeadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A head-of-line policy name that is not "strict", "best-effort" or "backfill".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown head-of-line policy {0:?} (expected strict, best-effort or backfill)")]
pub struct UnknownHeadPolicy(pub String);

impl FromStr for HeadPolicy {
    type Err = UnknownHeadPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(HeadPolicy::Strict),
            "best-effort" => Ok(HeadPolicy::BestEffort),
            "backfill" => Ok(HeadPolicy::Backfill),
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

/// What backfill and aging need beyond [`CycleInput`]: the time and the expected run times.
/// The default (time 0, nothing running, no aging) leaves strict and best-effort as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing<'a> {
    /// Now, ms (the clock of `enqueued_at_ms`).
    pub now_ms: i64,
    /// Expected run time of each candidate, ms, by index into [`CycleInput::candidates`];
    /// missing or `None`: [`BackfillSettings::default_runtime_ms`].
    pub expected_ms: &'a [Option<i64>],
    /// Each candidate's `maxRuntime`, ms, by index into [`CycleInput::candidates`] (the
    /// watchdog stops it there): a job certain to end before an overdue head's reserved start
    /// may pass that reservation. Missing or `None`: no bound.
    pub max_runtime_ms: &'a [Option<i64>],
    /// The jobs that hold room now, with their expected ends (node indices into
    /// [`Snapshot::nodes`]).
    pub running: &'a [RunningJob],
    /// Backfill's settings.
    pub backfill: BackfillSettings,
    /// Aging bound per level index, ms: a job that has waited this long at that level sorts as
    /// one level higher ([`aged_level`]). Missing or `None`: the level does not age.
    pub aging: &'a [Option<i64>],
}

/// The start reserved for a blocked backfill head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Index into [`CycleInput::candidates`].
    pub index: usize,
    /// When it is expected to fit, ms.
    pub start_ms: i64,
}

/// A job that sorts at a higher level than its own because it has waited (aging).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aged {
    /// Index into [`CycleInput::candidates`].
    pub index: usize,
    /// The level it sorts at now (its own is [`Candidate::level`]).
    pub level: usize,
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
    /// The job fits now but would delay the reserved start of a blocked backfill head.
    WouldDelay {
        /// Id of the head.
        head_id: String,
        /// Its namespace.
        namespace: String,
        /// Its reserved start, ms from now.
        start_in_ms: i64,
    },
}

impl WaitReason {
    /// A short stable name: "backend-unavailable", "no-room", "blocked", "constrained" or
    /// "reserved".
    pub fn kind(&self) -> &'static str {
        match self {
            WaitReason::BackendUnavailable => "backend-unavailable",
            WaitReason::NoRoom(_) => "no-room",
            WaitReason::BlockedBehind { .. } => "blocked",
            WaitReason::Constrained { .. } => "constrained",
            WaitReason::WouldDelay { .. } => "reserved",
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
            WaitReason::WouldDelay {
                head_id,
                namespace,
                start_in_ms,
            } => write!(
                f,
                "fits now, but would delay job {head_id} at the head of namespace {namespace}, \
                 reserved to start in {} (backfill)",
                short_ms(*start_in_ms)
            ),
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

/// "1h 5m", "3m 20s", "45s" (whole seconds, at most two units; 0 and less: "0s").
pub fn short_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .skip_while(|(v, _)| *v == 0)
        .take(2)
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

/// The decisions of one cycle: every candidate appears exactly once in `admitted` or
/// `waiting`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CycleOutput {
    /// Admitted jobs, in admission order.
    pub admitted: Vec<Admission>,
    /// Waiting jobs, by namespace name and then queue order.
    pub waiting: Vec<Waiting>,
    /// Reserved starts of blocked backfill heads (waiting jobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<Reservation>,
    /// Jobs that sort at a higher level than their own (aging).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aged: Vec<Aged>,
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
    /// Would delay the reservation of this shadow.
    WouldDelay(usize),
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
    /// Backfill: the shadow of this namespace's blocked head, once it has one.
    reserved: Option<usize>,
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
/// keys (namespace, level, enqueued time, id), not on their order in the slice. Without time:
/// no aging, and a backfill head's reservation sees no running job end (see [`schedule_at`]).
pub fn schedule<'a>(input: &CycleInput<'a>) -> CycleOutput {
    schedule_at(input, &Timing::default())
}

/// One scheduling cycle at `timing.now_ms`, with the expected run times backfill needs and the
/// aging bounds.
pub fn schedule_at<'a>(input: &CycleInput<'a>, timing: &Timing<'_>) -> CycleOutput {
    let cands = input.candidates;
    let now = timing.now_ms;
    let expected = |index: usize| -> i64 {
        timing
            .expected_ms
            .get(index)
            .copied()
            .flatten()
            .unwrap_or(timing.backfill.default_runtime_ms)
            .max(0)
    };
    // The latest a job admitted now can hold room: `maxRuntime` plus the margin (the watchdog
    // stops it within a tick of it), whatever anyone estimated.
    let certain_end = |index: usize| -> Option<i64> {
        let max = timing.max_runtime_ms.get(index).copied().flatten()?;
        Some(
            now.saturating_add(max.max(0))
                .saturating_add(timing.backfill.overrun_margin_ms.max(0)),
        )
    };

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

    // The level each job sorts at: its own, or higher once it has waited (aging).
    let mut aged = Vec::new();
    let levels: Vec<usize> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if timing.aging.is_empty() {
                return c.level;
            }
            let level = aged_level(c.level, now.saturating_sub(c.enqueued_at_ms), timing.aging);
            if level != c.level {
                aged.push(Aged { index: i, level });
            }
            level
        })
        .collect();

    // Sort once: by namespace, then queue order (level, enqueued time, id). The keys stay in
    // sorted order next to each other, so walking a queue does not touch the candidates.
    let mut keys: Vec<(usize, usize, i64, usize)> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| (rank[ns_id[i]], levels[i], c.enqueued_at_ms, i))
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
            reserved: None,
        });
        start += len;
    }
    let mut outcomes: Vec<Outcome> = (0..keys.len()).map(|_| Outcome::Undecided).collect();
    let mut admitted = Vec::new();
    let mut shadows: Vec<Shadow> = Vec::new();
    // Jobs admitted in this cycle, with their expected ends (for reservations made later).
    let mut started: Vec<RunningJob> = Vec::new();

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
        let mut fitter = Fitter::new(&input.snapshot.nodes);
        let eligible_of = |job: &'a Candidate| job.constraints.as_ref().map(|c| &c.eligible);

        // Overdue heads first: the first job of a backfill namespace that has waited
        // `max_head_wait_ms`, and under any policy the first job of a namespace that aging
        // raised (it has waited its level's bound), goes before the other jobs (the overdue
        // heads in fair-share order), and if it does not fit it gets a hard reservation that
        // every later start must respect unless its maxRuntime ends it before the reserved
        // start. In a backfill namespace the later jobs go on into the fair-share order
        // beside that reservation (they pass a blocked head, so they respect every
        // reservation); under strict and best-effort, or without a reservation, the head
        // blocks its namespace. So an aged job, once at the head of its namespace, waits only
        // for the room held now to free, never for later work of other namespaces.
        let mut overdue: Vec<usize> = (0..queues.len())
            .filter(|&k| {
                let q = &queues[k];
                let (_, sorted_level, _, index) = keys[q.start];
                let first = &cands[index];
                let backfill_overdue = q.policy.policy == HeadPolicy::Backfill
                    && timing
                        .backfill
                        .max_head_wait_ms
                        .is_some_and(|max| now.saturating_sub(first.enqueued_at_ms) >= max);
                let aged = sorted_level < first.level;
                !job_is_held(first) && (backfill_overdue || aged)
            })
            .collect();
        // Aged heads before heads overdue only by backfill's `max_head_wait_ms` (an aged job's
        // bound counts only the jobs of its own namespace ahead of it, docs/scheduling.md
        // "Aging"), and in fair-share order within each group, as strict would take them: the
        // lowest share first, so one namespace's stream of overdue heads does not hold the
        // others' back.
        overdue.sort_by_key(|&k| {
            let q = &queues[k];
            let (_, sorted_level, _, index) = keys[q.start];
            (sorted_level >= cands[index].level, turn(q, k).0)
        });
        for k in overdue {
            let q = &mut queues[k];
            let pos = q.next;
            let index = keys[pos].3;
            let job = &cands[index];
            let end_ms = now.saturating_add(expected(index));
            q.next += 1;
            match backfill_place(
                &mut fitter,
                &mut shadows,
                job,
                eligible_of(job),
                (end_ms, certain_end(index)),
                true,
            ) {
                Ok(placement) => {
                    outcomes[pos] = Outcome::Admitted;
                    started.push(RunningJob::placed(end_ms, &job.demand, &placement));
                    admitted.push(Admission { index, placement });
                    q.held = q.held.plus(&job.demand.total());
                }
                Err(outcome) => {
                    let mut reserved = None;
                    if matches!(outcome, Outcome::NoRoom(_)) {
                        let all: Vec<&RunningJob> = timing.running.iter().chain(&started).collect();
                        if let Some((start_ms, room)) = earliest_start(
                            &fitter,
                            &all,
                            now,
                            timing.backfill.overrun_margin_ms,
                            &job.demand,
                            eligible_of(job),
                        ) {
                            reserved = Some(shadows.len());
                            shadows.push(Shadow {
                                head: pos,
                                start_ms,
                                room: Some(room),
                                hard: true,
                            });
                        }
                    }
                    outcomes[pos] = outcome;
                    if q.policy.policy == HeadPolicy::Backfill && reserved.is_some() {
                        // Its later jobs pass it beside the hard reservation.
                        q.reserved = reserved;
                    } else {
                        for blocked in &mut outcomes[q.next..q.end] {
                            *blocked = Outcome::Blocked(pos);
                        }
                        q.next = q.end;
                    }
                }
            }
        }
        let mut heap: BinaryHeap<Reverse<Turn>> = queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.next < q.end)
            .map(|(k, q)| turn(q, k))
            .collect();

        while let Some(Reverse(Turn { queue, .. })) = heap.pop() {
            let q = &mut queues[queue];
            let pos = q.next;
            let index = keys[pos].3;
            let job = &cands[index];
            q.next += 1;
            // A job of a backfill namespace behind its blocked head must not delay any
            // reservation; other jobs go in fair-share order, as under strict.
            let passing = q.reserved.is_some();
            let end_ms = now.saturating_add(expected(index));
            let placed = match &job.constraints {
                Some(Constraints {
                    blocked: Some(why), ..
                }) => Err(Outcome::Constrained(why.clone())),
                _ => backfill_place(
                    &mut fitter,
                    &mut shadows,
                    job,
                    eligible_of(job),
                    (end_ms, certain_end(index)),
                    !passing,
                ),
            };
            match placed {
                Ok(placement) => {
                    outcomes[pos] = Outcome::Admitted;
                    let run = RunningJob::placed(end_ms, &job.demand, &placement);
                    if !passing {
                        // A fair-share admission: keep the shadows it outlasts true, or find
                        // the heads it delays a new start.
                        for sh in &mut shadows {
                            let keeps = match &mut sh.room {
                                _ if sh.hard => true,
                                None => true,
                                Some(_) if end_ms <= sh.start_ms => true,
                                Some(room) => room.place_at(&job.demand, &placement),
                            };
                            if !keeps {
                                let head = &cands[keys[sh.head].3];
                                let mut all: Vec<&RunningJob> =
                                    timing.running.iter().chain(&started).collect();
                                all.push(&run);
                                match earliest_start(
                                    &fitter,
                                    &all,
                                    now,
                                    timing.backfill.overrun_margin_ms,
                                    &head.demand,
                                    eligible_of(head),
                                ) {
                                    Some((t, room)) => {
                                        sh.start_ms = t;
                                        sh.room = Some(room);
                                    }
                                    None => sh.room = None,
                                }
                            }
                        }
                    }
                    started.push(run);
                    admitted.push(Admission { index, placement });
                    q.held = q.held.plus(&job.demand.total());
                }
                Err(outcome) => {
                    let head_fails = !matches!(outcome, Outcome::WouldDelay(_));
                    outcomes[pos] = outcome;
                    let block = match q.policy.policy {
                        HeadPolicy::Strict => true,
                        HeadPolicy::BestEffort => false,
                        HeadPolicy::Backfill if passing || !head_fails => false,
                        HeadPolicy::Backfill => {
                            // The blocked head: reserve its start, unless its room is held
                            // by something that will not end (then nothing passes it). Past
                            // the bound the reservation is hard: it binds every later start,
                            // and the namespace's later jobs pass the head only beside it or
                            // by a maxRuntime that ends them before it.
                            let waited = now.saturating_sub(job.enqueued_at_ms);
                            let too_long = timing
                                .backfill
                                .max_head_wait_ms
                                .is_some_and(|max| waited >= max);
                            let reservation = if job_is_held(job) {
                                None
                            } else {
                                let all: Vec<&RunningJob> =
                                    timing.running.iter().chain(&started).collect();
                                earliest_start(
                                    &fitter,
                                    &all,
                                    now,
                                    timing.backfill.overrun_margin_ms,
                                    &job.demand,
                                    eligible_of(job),
                                )
                            };
                            match reservation {
                                Some((start_ms, room)) => {
                                    q.reserved = Some(shadows.len());
                                    shadows.push(Shadow {
                                        head: pos,
                                        start_ms,
                                        room: Some(room),
                                        hard: too_long,
                                    });
                                    false
                                }
                                None => true,
                            }
                        }
                    };
                    if block {
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
                Outcome::WouldDelay(shadow) => {
                    let sh = &shadows[shadow];
                    let head = &cands[keys[sh.head].3];
                    WaitReason::WouldDelay {
                        head_id: head.id.clone(),
                        namespace: head.namespace.clone(),
                        start_in_ms: sh.start_ms.saturating_sub(now),
                    }
                }
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
    let reservations = shadows
        .iter()
        .filter(|sh| sh.room.is_some())
        .map(|sh| Reservation {
            index: keys[sh.head].3,
            start_ms: sh.start_ms,
        })
        .collect();

    CycleOutput {
        admitted,
        waiting,
        reservations,
        aged,
    }
}

/// The backend holds the job back whatever the room (a quota): no start can be reserved.
fn job_is_held(job: &Candidate) -> bool {
    job.constraints
        .as_ref()
        .is_some_and(|c| c.blocked.is_some())
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
