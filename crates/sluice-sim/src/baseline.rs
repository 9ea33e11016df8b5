//! The "no admission control" baseline: what a plain Spark Operator on Kubernetes does.
//!
//! - A submitted job's driver pod is created at once and waits in the pod scheduler's queue.
//! - The pod scheduler takes pending pods in order of priority (the job's level, as if each
//!   level were a PriorityClass, without preemption) and creation time, and puts each on the first node
//!   it fits; a pod that fits nowhere stays pending and does not block the pods behind it.
//! - When a driver starts it creates its executor pods, which queue like any other pod and take
//!   whatever room is free as it frees: a job can hold its driver and some executors while the
//!   rest wait, *half-started*.
//! - A job runs (its trace duration counts) only once all its executors run: the executor count
//!   of a trace job is what it needs to make progress (the demand sluice admits as a whole).
//! - A driver that still misses executors `hang_timeout` after it started gives up: its pods
//!   are deleted (freeing their room) and the operator submits it again, at most `restarts`
//!   times, after which the job is counted as never run ("gave up"). Without this timeout,
//!   half-started jobs that hold all the room deadlock the cluster for good.
//!
//! A job that can never fit is not refused (there is no admission): its driver starts, its
//! executors never all do, and it gives up as above.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use sluice_core::NodeCapacity;
use sluice_core::job::{Resources, Role};

use crate::cluster::Cluster;
use crate::engine::pod_of;
use crate::model::{Recorder, Run, UsagePoint, Workload};

/// Settings of the no-admission baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineConfig {
    /// How long a driver waits for all its executors before it gives up, ms.
    pub hang_timeout_ms: i64,
    /// How many times a job that gave up is submitted again.
    pub restarts: u32,
}

impl Default for BaselineConfig {
    /// Ten minutes, three restarts.
    fn default() -> Self {
        BaselineConfig {
            hang_timeout_ms: 600_000,
            restarts: 3,
        }
    }
}

/// A pod waiting in the scheduler's queue: the driver of a job, or its executors not yet placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Driver(usize),
    Executors(usize),
}

/// Queue order: (level, created at, sequence).
type Key = (usize, i64, u64);

/// A job whose driver runs.
#[derive(Debug, Clone, Default)]
struct Active {
    attempt: u32,
    /// (role, node, since).
    pods: Vec<(Role, usize, i64)>,
    missing: u32,
    executors_key: Option<Key>,
    started: bool,
}

struct State<'a> {
    w: &'a Workload,
    nodes: Vec<NodeCapacity>,
    pending: BTreeMap<Key, Pending>,
    seq: u64,
    active: Vec<Option<Active>>,
    events: BinaryHeap<Reverse<(i64, u8, usize, u32)>>,
    held: Resources,
    busy: Resources,
    ns_held: Vec<Resources>,
    waiting: u32,
    cfg: BaselineConfig,
    /// Largest free CPU and memory on a node with a pod slot (a quick reject).
    max_free: (u64, u64),
}

const FINISH: u8 = 0;
const TIMEOUT: u8 = 1;

/// Replays the workload with no admission control.
pub fn replay(w: &Workload, cluster: &Cluster, cfg: BaselineConfig) -> Run {
    let mut rec = Recorder::new(cluster.total(), w.namespaces.len(), w.jobs.len());
    let mut s = State {
        w,
        nodes: cluster.nodes.clone(),
        pending: BTreeMap::new(),
        seq: 0,
        active: vec![None; w.jobs.len()],
        events: BinaryHeap::new(),
        held: Resources::default(),
        busy: Resources::default(),
        ns_held: vec![Resources::default(); w.namespaces.len()],
        waiting: 0,
        cfg,
        max_free: (0, 0),
    };
    let mut next_submit = 0;
    loop {
        let t_submit = w.jobs.get(next_submit).map(|j| j.submit_ms);
        let t_event = s.events.peek().map(|Reverse((t, ..))| *t);
        let now = match (t_submit, t_event) {
            (None, None) => break,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
        };
        while let Some(&Reverse((t, kind, j, attempt))) = s.events.peek() {
            if t != now {
                break;
            }
            s.events.pop();
            match kind {
                FINISH => {
                    rec.run.jobs[j].end_ms = Some(now);
                    s.release(j);
                }
                _ => s.timeout(j, attempt, now, &mut rec),
            }
        }
        while let Some(job) = w.jobs.get(next_submit) {
            if job.submit_ms != now {
                break;
            }
            s.waiting += 1;
            s.push(job.level, now, Pending::Driver(next_submit));
            next_submit += 1;
        }
        rec.run.cycles += 1;
        s.pass(now, &mut rec);
        rec.record(
            UsagePoint {
                at_ms: now,
                held: s.held,
                busy: s.busy,
                waiting: s.waiting,
            },
            &s.ns_held,
        );
    }
    rec.run
}

impl State<'_> {
    fn push(&mut self, level: usize, now: i64, p: Pending) -> Key {
        self.seq += 1;
        let key = (level, now, self.seq);
        self.pending.insert(key, p);
        key
    }

    /// Places one pod first fit; returns its node.
    fn place(&mut self, j: usize, role: Role, now: i64) -> Option<usize> {
        let job = &self.w.jobs[j];
        let pod = pod_of(&job.demand, role);
        if pod.cpu_milli > self.max_free.0 || pod.mem_mib > self.max_free.1 {
            return None;
        }
        let i = self.nodes.iter().position(|n| n.fits(&pod))?;
        let n = &mut self.nodes[i];
        n.cpu_milli -= pod.cpu_milli;
        n.mem_mib -= pod.mem_mib;
        n.pods = n.pods.map(|p| p - 1);
        self.max_free = largest_free(&self.nodes);
        self.held = self.held.plus(&pod);
        self.ns_held[job.ns] = self.ns_held[job.ns].plus(&pod);
        if let Some(a) = self.active[j].as_mut() {
            a.pods.push((role, i, now));
        }
        Some(i)
    }

    /// Frees every pod of the job.
    fn release(&mut self, j: usize) {
        let Some(a) = self.active[j].take() else {
            return;
        };
        let job = &self.w.jobs[j];
        for (role, i, _) in a.pods {
            let pod = pod_of(&job.demand, role);
            let n = &mut self.nodes[i];
            n.cpu_milli += pod.cpu_milli;
            n.mem_mib += pod.mem_mib;
            n.pods = n.pods.map(|p| p + 1);
            self.held = self.held.minus(&pod);
            self.ns_held[job.ns] = self.ns_held[job.ns].minus(&pod);
            if a.started {
                self.busy = self.busy.minus(&pod);
            }
        }
        if let Some(k) = a.executors_key {
            self.pending.remove(&k);
        }
    }

    fn timeout(&mut self, j: usize, attempt: u32, now: i64, rec: &mut Recorder) {
        let live = matches!(&self.active[j], Some(a) if a.attempt == attempt && !a.started);
        if !live {
            return;
        }
        add_idle(
            &mut rec.run.jobs[j],
            &self.active[j],
            &self.w.jobs[j].demand,
            now,
        );
        rec.run.jobs[j].half_started = true;
        self.release(j);
        let run = &mut rec.run.jobs[j];
        if run.restarts < self.cfg.restarts {
            run.restarts += 1;
            self.push(self.w.jobs[j].level, now, Pending::Driver(j));
        } else {
            run.gave_up = true;
            self.waiting -= 1;
        }
    }

    /// One pass of the pod scheduler over the pending pods, in queue order, repeated while it
    /// places something (a driver that starts creates executor pods, which may fit at once).
    fn pass(&mut self, now: i64, rec: &mut Recorder) {
        loop {
            let mut progress = false;
            self.max_free = largest_free(&self.nodes);
            let keys: Vec<(Key, Pending)> = self.pending.iter().map(|(k, p)| (*k, *p)).collect();
            for (key, p) in keys {
                match p {
                    Pending::Driver(j) => {
                        let attempt = rec.run.jobs[j].restarts;
                        self.active[j] = Some(Active {
                            attempt,
                            ..Active::default()
                        });
                        if self.place(j, Role::Driver, now).is_none() {
                            self.active[j] = None;
                            continue;
                        }
                        progress = true;
                        self.pending.remove(&key);
                        let run = &mut rec.run.jobs[j];
                        run.first_pod_ms.get_or_insert(now);
                        let missing = self.w.jobs[j]
                            .demand
                            .role(Role::Executor)
                            .map_or(0, |e| e.count);
                        if let Some(a) = self.active[j].as_mut() {
                            a.missing = missing;
                        }
                        if missing == 0 {
                            self.start(j, now, rec);
                        } else {
                            let k = self.push(self.w.jobs[j].level, now, Pending::Executors(j));
                            if let Some(a) = self.active[j].as_mut() {
                                a.executors_key = Some(k);
                            }
                            self.events.push(Reverse((
                                now.saturating_add(self.cfg.hang_timeout_ms),
                                TIMEOUT,
                                j,
                                attempt,
                            )));
                        }
                    }
                    Pending::Executors(j) => {
                        let mut missing = self.active[j].as_ref().map_or(0, |a| a.missing);
                        while missing > 0 && self.place(j, Role::Executor, now).is_some() {
                            missing -= 1;
                            progress = true;
                        }
                        if let Some(a) = self.active[j].as_mut() {
                            a.missing = missing;
                        }
                        if missing == 0 {
                            self.pending.remove(&key);
                            if let Some(a) = self.active[j].as_mut() {
                                a.executors_key = None;
                            }
                            self.start(j, now, rec);
                        }
                    }
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Every pod of the job runs: it starts its work.
    fn start(&mut self, j: usize, now: i64, rec: &mut Recorder) {
        let job = &self.w.jobs[j];
        let run = &mut rec.run.jobs[j];
        add_idle(run, &self.active[j], &job.demand, now);
        let Some(a) = self.active[j].as_mut() else {
            return;
        };
        a.started = true;
        if a.pods.iter().any(|&(_, _, since)| since < now) {
            run.half_started = true;
        }
        run.start_ms = Some(now);
        run.placement = a.pods.iter().map(|&(r, i, _)| (r, i)).collect();
        self.busy = self.busy.plus(&job.demand.total());
        self.waiting -= 1;
        self.events.push(Reverse((
            now.saturating_add(job.duration_ms),
            FINISH,
            j,
            a.attempt,
        )));
    }
}

/// Adds the CPU the job's pods held, up to `now`, while it was not running.
fn add_idle(
    run: &mut crate::model::JobRun,
    active: &Option<Active>,
    demand: &sluice_core::job::Demand,
    now: i64,
) {
    if let Some(a) = active {
        for &(role, _, since) in &a.pods {
            let cpu = u128::from(pod_of(demand, role).cpu_milli);
            run.idle_held_cpu += cpu * u128::try_from(now - since).unwrap_or(0);
        }
    }
}

fn largest_free(nodes: &[NodeCapacity]) -> (u64, u64) {
    nodes
        .iter()
        .filter(|n| n.has_pod_slot())
        .fold((0, 0), |(c, m), n| (c.max(n.cpu_milli), m.max(n.mem_mib)))
}
