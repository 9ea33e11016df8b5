//! Start-time estimates, table-tested: running jobs with their expected ends, queued jobs with
//! their expected run times, and the start each must be given.

use std::collections::BTreeMap;

use crate::capacity::{NodeCapacity, Snapshot};
use crate::cycle::{
    BackfillSettings, Candidate, CycleInput, HeadPolicy, NamespacePolicy, RunningJob, Timing,
    estimate_starts,
};
use crate::job::{Demand, PodDemand, Resources, Role};

const MIN: i64 = 60_000;

fn pod(cores: u64) -> Demand {
    Demand {
        pods: vec![PodDemand {
            role: Role::Driver,
            count: 1,
            cpu_milli: cores * 1000,
            mem_mib: 1024,
        }],
    }
}

struct Case {
    name: &'static str,
    policy: HeadPolicy,
    /// Cores of the one node.
    cores: u64,
    /// (cores, expected end in minutes) of each running job, all on the node.
    running: Vec<(u64, i64)>,
    /// (id, cores, expected run time in minutes), queued in this order.
    queued: Vec<(&'static str, u64, i64)>,
    now: i64,
    /// Estimated start in minutes per queued job (`None`: never).
    want: Vec<Option<i64>>,
}

#[test]
fn estimate_table() {
    let cases = vec![
        Case {
            name: "strict: the head when the running job ends, the next when the head ends",
            policy: HeadPolicy::Strict,
            cores: 4,
            running: vec![(3, 100)],
            queued: vec![("a", 4, 30), ("b", 2, 10)],
            now: 0,
            want: vec![Some(100), Some(130)],
        },
        Case {
            name: "backfill: the short job starts now, the head at its reserved start",
            policy: HeadPolicy::Backfill,
            cores: 4,
            running: vec![(3, 100)],
            queued: vec![("a", 4, 30), ("b", 1, 50)],
            now: 0,
            want: vec![Some(100), Some(0)],
        },
        Case {
            name: "a job that fits beside the others starts now",
            policy: HeadPolicy::Strict,
            cores: 8,
            running: vec![(3, 100)],
            queued: vec![("a", 4, 30), ("b", 1, 50)],
            now: 0,
            want: vec![Some(0), Some(0)],
        },
        Case {
            name: "a running job past its estimate ends now + the margin",
            policy: HeadPolicy::Strict,
            cores: 4,
            running: vec![(3, 50)],
            queued: vec![("a", 4, 30)],
            now: 60,
            want: vec![Some(65)],
        },
        Case {
            name: "a job larger than the node never starts; the others are estimated",
            policy: HeadPolicy::BestEffort,
            cores: 4,
            running: vec![(2, 10)],
            queued: vec![("huge", 5, 30), ("a", 3, 30)],
            now: 0,
            want: vec![None, Some(10)],
        },
    ];
    for c in &cases {
        let alloc = vec![NodeCapacity::new("n", c.cores * 1000, 64 * 1024, None)];
        let mut free = alloc.clone();
        let running: Vec<RunningJob> = c
            .running
            .iter()
            .map(|(cores, end)| {
                free[0].cpu_milli -= cores * 1000;
                free[0].mem_mib -= 1024;
                RunningJob {
                    end_ms: end * MIN,
                    namespace: "ns".into(),
                    pods: vec![(0, Resources::new(cores * 1000, 1024))],
                }
            })
            .collect();
        let cands: Vec<Candidate> = c
            .queued
            .iter()
            .enumerate()
            .map(|(i, (id, cores, _))| Candidate {
                id: id.to_string(),
                namespace: "ns".into(),
                level: 0,
                enqueued_at_ms: i as i64,
                demand: pod(*cores),
                constraints: None,
            })
            .collect();
        let expected: Vec<Option<i64>> = c.queued.iter().map(|q| Some(q.2 * MIN)).collect();
        let snapshot = Snapshot {
            available: true,
            nodes: free,
            allocatable: alloc,
        };
        let held = BTreeMap::new();
        let namespaces = BTreeMap::new();
        let eta = estimate_starts(
            &CycleInput {
                candidates: &cands,
                snapshot: &snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy {
                    weight: 1,
                    policy: c.policy,
                },
            },
            &Timing {
                now_ms: c.now * MIN,
                expected_ms: &expected,
                max_runtime_ms: &[],
                running: &running,
                backfill: BackfillSettings {
                    overrun_margin_ms: 5 * MIN,
                    ..BackfillSettings::default()
                },
                aging: &[],
            },
            1000,
        );
        let got: Vec<Option<i64>> = eta.iter().map(|e| e.map(|ms| ms / MIN)).collect();
        assert_eq!(got, c.want, "{}", c.name);
    }
}
