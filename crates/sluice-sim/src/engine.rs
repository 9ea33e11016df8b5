//! The replay of sluice's policies: an event queue in virtual time (submits and finishes) and,
//! at every moment something happened, one call of the server's own cycle,
//! [`sluice_core::cycle::schedule`], over every job waiting, with the free room per node, what
//! each namespace holds and the namespaces' settings. No second scheduler: the cycle decides
//! every start, the engine only keeps the books (as the server's tick does with the store).
//!
//! Two shortcuts keep a replay of 100,000 jobs in seconds without changing a single decision:
//!
//! - A strict namespace's queue is passed only up to the first job that cannot be admitted
//!   even if every job before it were: the first whose own pods fail the fitter's quick bounds,
//!   or where the running sum of the demands exceeds the free room in all. Under strict FIFO
//!   that job, if reached, fails and blocks everything behind it, and it is never a head unless
//!   all before it were admitted; so the jobs behind it cannot be admitted and cannot change the
//!   order of the namespaces.
//! - When no job passed passes the fitter's quick bounds (largest free pod on a node, free room
//!   in all, free pod slots), the cycle would admit nothing, and it is not run.
//!
//! The server runs a cycle when woken by a submit and every `interval_ms`; here a cycle runs at
//! every submit and every finish, as a server that is woken at once. Jobs start the moment they
//! are admitted and hold their whole demand for their trace duration.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use sluice_core::capacity::{Fitter, NodeCapacity, Snapshot};
use sluice_core::cycle::{
    Candidate, CycleInput, HeadPolicy, NamespacePolicy, Preemptible, PreemptionInput, RunningJob,
    Timing, estimate_starts, schedule_at, schedule_preempting,
};
use sluice_core::job::{Demand, Resources, Role};

use crate::cluster::Cluster;
use crate::model::{Recorder, Run, SimJob, UsagePoint, Workload};

/// Replays the workload under sluice's cycle. `head` forces one head-of-line policy on every
/// namespace; `None` keeps each namespace's policy from the cluster file. Weights always come
/// from the cluster file.
pub fn replay(w: &Workload, cluster: &Cluster, head: Option<HeadPolicy>) -> Run {
    replay_with(w, cluster, head, true)
}

/// As [`replay`]; with `prune` false every waiting job is passed to every cycle and no cycle is
/// skipped (slower; the same decisions, which a test checks).
pub fn replay_with(w: &Workload, cluster: &Cluster, head: Option<HeadPolicy>, prune: bool) -> Run {
    run(
        w,
        cluster,
        &Options {
            head,
            prune,
            ..Options::default()
        },
    )
}

/// How a replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The head-of-line policy forced on every namespace; `None`: the cluster file's.
    pub head: Option<HeadPolicy>,
    /// Jobs age by the cluster file's `[scheduler.aging_ms]` bounds.
    pub aging: bool,
    /// Backfill's expected run time of a job is its trace duration times this (1: exact
    /// estimates; 0.5: every job runs twice as long as expected).
    pub estimate_factor: f64,
    /// Skip what cannot change a decision (see the module's notes); false for the tests that
    /// check the shortcuts.
    pub prune: bool,
    /// Estimate the start of every job left waiting at its submit, by running the cycle forward
    /// ([`estimate_starts`]) from that moment with the expected run times (slower).
    pub eta: bool,
    /// Preemption by the cluster's [`Cluster::preemption`] settings: a job left without room
    /// may stop running jobs of lower levels ([`schedule_preempting`]); a victim stops at once
    /// and goes back to its queue, and the cycle runs again at the same moment.
    pub preemption: bool,
}

/// Forward cycles an estimate may run.
const ETA_MAX_CYCLES: usize = 20_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            head: None,
            aging: false,
            estimate_factor: 1.0,
            prune: true,
            eta: false,
            preemption: false,
        }
    }
}

impl Options {
    /// A job's expected run time under these options, ms: its run time times the factor, at
    /// most its `maxRuntime` (as the server caps its history's estimate).
    pub fn expected_ms(&self, job: &SimJob) -> i64 {
        let f = self.estimate_factor.max(0.0);
        let ms = ((job.duration_ms as f64) * f)
            .round()
            .clamp(0.0, i64::MAX as f64) as i64;
        job.max_runtime_ms.map_or(ms, |max| ms.min(max))
    }
}

/// Replays the workload under sluice's cycle with these options.
pub fn run(w: &Workload, cluster: &Cluster, opts: &Options) -> Run {
    let (head, prune) = (opts.head, opts.prune);
    let aging: &[Option<i64>] = if opts.aging { &cluster.aging } else { &[] };
    let total = cluster.total();
    let mut rec = Recorder::new(total, w.namespaces.len(), w.jobs.len());
    let namespaces: BTreeMap<String, NamespacePolicy> = w
        .namespaces
        .iter()
        .map(|ns| {
            let mut p = cluster.policy_of(ns);
            if let Some(h) = head {
                p.policy = h;
            }
            (ns.clone(), p)
        })
        .collect();
    let mut held: BTreeMap<String, Resources> = w
        .namespaces
        .iter()
        .map(|ns| (ns.clone(), Resources::default()))
        .collect();
    let mut ns_held = vec![Resources::default(); w.namespaces.len()];
    // Nodes without their names: the cycle decides on room alone and answers with node
    // indices, and an empty name costs the fitter no allocation when it copies the nodes.
    let unnamed: Vec<NodeCapacity> = cluster
        .nodes
        .iter()
        .map(|n| NodeCapacity::new(String::new(), n.cpu_milli, n.mem_mib, n.pods))
        .collect();
    let mut snapshot = Snapshot {
        available: true,
        nodes: unnamed.clone(),
        allocatable: unnamed,
    };
    // With aging the cycle's order is not the engine's (level, submit) order: no pruning.
    let strict: Vec<bool> = w
        .namespaces
        .iter()
        .map(|ns| {
            aging.is_empty() && namespaces.get(ns).map(|p| p.policy) == Some(HeadPolicy::Strict)
        })
        .collect();
    // The jobs holding room, with their expected ends (backfill's input), and where each is.
    let mut running: Vec<RunningJob> = Vec::new();
    let mut running_job: Vec<usize> = Vec::new();
    let mut slot: Vec<usize> = vec![usize::MAX; w.jobs.len()];
    let mut expected: Vec<Option<i64>> = Vec::new();
    let mut max_runtime: Vec<Option<i64>> = Vec::new();
    // Waiting jobs per namespace, in queue order: (level, submit time, trace index) is the
    // cycle's (level, enqueued_at, id) order, since ids are the zero-padded trace index.
    let mut queues: Vec<BTreeSet<(usize, i64, usize, usize)>> =
        vec![BTreeSet::new(); w.namespaces.len()];
    let mut waiting = 0usize;
    let mut queue: Vec<Candidate> = Vec::new();
    let mut queue_jobs: Vec<usize> = Vec::new();
    // Finishes: (time, job, run number of the job); a preempted run's finish is stale.
    let mut finishes: BinaryHeap<Reverse<(i64, usize, u32)>> = BinaryHeap::new();
    let mut run_no: Vec<u32> = vec![0; w.jobs.len()];
    let mut next_submit = 0;
    let mut used = Resources::default();

    loop {
        let t_submit = w.jobs.get(next_submit).map(|j| j.submit_ms);
        let t_finish = finishes.peek().map(|Reverse((t, _, _))| *t);
        let now = match (t_submit, t_finish) {
            (None, None) => break,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
        };
        // 1. Finishes free their room.
        while let Some(&Reverse((t, j, n))) = finishes.peek() {
            if t != now {
                break;
            }
            finishes.pop();
            if n != run_no[j] {
                continue;
            }
            let job = &w.jobs[j];
            let k = slot[j];
            if k < running.len() {
                running.swap_remove(k);
                running_job.swap_remove(k);
                if let Some(&moved) = running_job.get(k) {
                    slot[moved] = k;
                }
            }
            let run = &mut rec.run.jobs[j];
            run.end_ms = Some(now);
            for &(role, node) in &run.placement {
                let pod = pod_of(&job.demand, role);
                let n = &mut snapshot.nodes[node];
                n.cpu_milli += pod.cpu_milli;
                n.mem_mib += pod.mem_mib;
                n.pods = n.pods.map(|p| p + 1);
            }
            let d = job.demand.total();
            used = used.minus(&d);
            ns_held[job.ns] = ns_held[job.ns].minus(&d);
            if let Some(h) = held.get_mut(&w.namespaces[job.ns]) {
                *h = h.minus(&d);
            }
        }
        // 2. Submits join the queue; a job that can never fit is refused, as the server does.
        let first_new = next_submit;
        while let Some(job) = w.jobs.get(next_submit) {
            if job.submit_ms != now {
                break;
            }
            if job.fits_empty {
                queues[job.ns].insert((job.level, job.submit_ms, job.seq, next_submit));
                waiting += 1;
            } else {
                rec.run.jobs[next_submit].refused = true;
            }
            next_submit += 1;
        }
        // 3. One cycle over everything waiting (less what cannot change its decisions); with
        // preemption, again at the same moment after victims were stopped.
        let mut pending: BTreeSet<usize> = BTreeSet::new();
        loop {
            // The fitter's quick bounds over the room now ([`Fitter::could_fit`]).
            let bounds = Fitter::new(&snapshot.nodes);
            queue.clear();
            queue_jobs.clear();
            expected.clear();
            max_runtime.clear();
            let mut any_fits = false;
            for (ns, q) in queues.iter().enumerate() {
                let mut sum = Resources::default();
                for &(_, _, _, j) in q.iter() {
                    let job = &w.jobs[j];
                    let passes = bounds.could_fit(&job.demand);
                    any_fits |= passes;
                    queue.push(Candidate {
                        id: job.id.clone(),
                        namespace: w.namespaces[ns].clone(),
                        level: job.level,
                        enqueued_at_ms: job.submit_ms,
                        demand: job.demand.clone(),
                        constraints: None,
                    });
                    queue_jobs.push(j);
                    expected.push(Some(opts.expected_ms(job)));
                    max_runtime.push(job.max_runtime_ms);
                    if prune && strict[ns] {
                        sum = sum.plus(&job.demand.total());
                        if !passes || !bounds.total_free().covers(&sum) {
                            break;
                        }
                    }
                }
            }
            if !(any_fits
                || (!prune && !queue.is_empty())
                || (opts.preemption && !queue.is_empty()))
            {
                break;
            }
            {
                rec.run.cycles += 1;
                let input = CycleInput {
                    candidates: &queue,
                    snapshot: &snapshot,
                    held: &held,
                    namespaces: &namespaces,
                    default_policy: NamespacePolicy::default(),
                };
                let timing = Timing {
                    now_ms: now,
                    expected_ms: &expected,
                    max_runtime_ms: &max_runtime,
                    running: &running,
                    backfill: cluster.backfill,
                    aging,
                };
                let (out, plans) = if opts.preemption {
                    let victims: Vec<Preemptible> = running
                        .iter()
                        .zip(&running_job)
                        .map(|(r, &j)| Preemptible {
                            id: w.jobs[j].id.clone(),
                            namespace: w.namespaces[w.jobs[j].ns].clone(),
                            level: w.jobs[j].level,
                            started_at_ms: rec.run.jobs[j].start_ms.unwrap_or(now),
                            pods: r.pods.clone(),
                            preemptions: rec.run.jobs[j].preempted,
                        })
                        .collect();
                    let pending_at: Vec<usize> = queue_jobs
                        .iter()
                        .enumerate()
                        .filter(|(_, j)| pending.contains(j))
                        .map(|(k, _)| k)
                        .collect();
                    let (out, plans) = schedule_preempting(
                        &input,
                        &timing,
                        &PreemptionInput {
                            settings: &cluster.preemption,
                            running: &victims,
                            pending: &pending_at,
                        },
                    );
                    let plans: Vec<(usize, Vec<usize>)> = plans
                        .into_iter()
                        .map(|p| {
                            (
                                queue_jobs[p.index],
                                p.victims.iter().map(|&k| running_job[k]).collect(),
                            )
                        })
                        .collect();
                    (out, plans)
                } else {
                    (schedule_at(&input, &timing), Vec::new())
                };
                for a in out.admitted {
                    let j = queue_jobs[a.index];
                    let job = &w.jobs[j];
                    for &(role, node) in &a.placement.pods {
                        let pod = pod_of(&job.demand, role);
                        let n = &mut snapshot.nodes[node];
                        n.cpu_milli = n.cpu_milli.saturating_sub(pod.cpu_milli);
                        n.mem_mib = n.mem_mib.saturating_sub(pod.mem_mib);
                        n.pods = n.pods.map(|p| p.saturating_sub(1));
                    }
                    let d = job.demand.total();
                    used = used.plus(&d);
                    ns_held[job.ns] = ns_held[job.ns].plus(&d);
                    if let Some(h) = held.get_mut(&w.namespaces[job.ns]) {
                        *h = h.plus(&d);
                    }
                    let run = &mut rec.run.jobs[j];
                    run.first_pod_ms = Some(now);
                    run.start_ms = Some(now);
                    // The cycle places all pods or none: a placement short of the demand would be
                    // a half-started job, and is counted as one (it never happens; tests check).
                    run.half_started = a.placement.pods.len() as u64 != job.demand.pod_count();
                    slot[j] = running.len();
                    let mut r = RunningJob::placed(
                        now.saturating_add(opts.expected_ms(job)),
                        &job.demand,
                        &a.placement,
                    );
                    r.namespace = w.namespaces[job.ns].clone();
                    running.push(r);
                    running_job.push(j);
                    run.placement = a.placement.pods;
                    finishes.push(Reverse((now.saturating_add(job.duration_ms), j, run_no[j])));
                    queues[job.ns].remove(&(job.level, job.submit_ms, job.seq, j));
                    waiting -= 1;
                }
                if plans.is_empty() {
                    break;
                }
                // Victims stop at once: their room comes back and they go back to their queues
                // (same place), and the cycle runs again with their preemptors first.
                for (preemptor, victims) in plans {
                    pending.insert(preemptor);
                    for j in victims {
                        let job = &w.jobs[j];
                        let k = slot[j];
                        if k >= running.len() {
                            continue;
                        }
                        running.swap_remove(k);
                        running_job.swap_remove(k);
                        if let Some(&moved) = running_job.get(k) {
                            slot[moved] = k;
                        }
                        slot[j] = usize::MAX;
                        run_no[j] += 1;
                        let run = &mut rec.run.jobs[j];
                        for &(role, node) in &run.placement {
                            let pod = pod_of(&job.demand, role);
                            let n = &mut snapshot.nodes[node];
                            n.cpu_milli += pod.cpu_milli;
                            n.mem_mib += pod.mem_mib;
                            n.pods = n.pods.map(|p| p + 1);
                        }
                        run.placement.clear();
                        run.start_ms = None;
                        run.first_pod_ms = None;
                        run.preempted += 1;
                        let d = job.demand.total();
                        used = used.minus(&d);
                        ns_held[job.ns] = ns_held[job.ns].minus(&d);
                        if let Some(h) = held.get_mut(&w.namespaces[job.ns]) {
                            *h = h.minus(&d);
                        }
                        queues[job.ns].insert((job.level, job.submit_ms, job.seq, j));
                        waiting += 1;
                    }
                }
            }
        }
        // 4. Start-time estimates for the jobs submitted now that still wait.
        if opts.eta
            && (first_new..next_submit)
                .any(|j| w.jobs[j].fits_empty && rec.run.jobs[j].start_ms.is_none())
        {
            let mut cands = Vec::with_capacity(waiting);
            let mut jobs = Vec::with_capacity(waiting);
            let mut exp = Vec::with_capacity(waiting);
            let mut max = Vec::with_capacity(waiting);
            for (ns, q) in queues.iter().enumerate() {
                for &(_, _, _, j) in q.iter() {
                    let job = &w.jobs[j];
                    cands.push(Candidate {
                        id: job.id.clone(),
                        namespace: w.namespaces[ns].clone(),
                        level: job.level,
                        enqueued_at_ms: job.submit_ms,
                        demand: job.demand.clone(),
                        constraints: None,
                    });
                    jobs.push(j);
                    exp.push(Some(opts.expected_ms(job)));
                    max.push(job.max_runtime_ms);
                }
            }
            let eta = estimate_starts(
                &CycleInput {
                    candidates: &cands,
                    snapshot: &snapshot,
                    held: &held,
                    namespaces: &namespaces,
                    default_policy: NamespacePolicy::default(),
                },
                &Timing {
                    now_ms: now,
                    expected_ms: &exp,
                    max_runtime_ms: &max,
                    running: &running,
                    backfill: cluster.backfill,
                    aging,
                },
                ETA_MAX_CYCLES,
            );
            for (k, &j) in jobs.iter().enumerate() {
                if j >= first_new && j < next_submit {
                    rec.run.jobs[j].eta_ms = eta[k];
                }
            }
        }
        rec.record(
            UsagePoint {
                at_ms: now,
                held: used,
                busy: used,
                waiting: u32::try_from(waiting).unwrap_or(u32::MAX),
            },
            &ns_held,
        );
    }
    rec.run
}

/// The request of one pod of `role` in the demand.
pub(crate) fn pod_of(demand: &Demand, role: Role) -> Resources {
    demand.role(role).map(|p| p.each()).unwrap_or_default()
}
