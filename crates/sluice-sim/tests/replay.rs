//! The engine, in the Kueue TestSchedule style: tiny traces with hand-computed start times and
//! waits, per policy; the shipped sample; and properties of every sluice policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_core::NodeCapacity;
use sluice_core::cycle::{HeadPolicy, NamespacePolicy};
use sluice_core::job::{Resources, Role};
use sluice_sim::trace::Outcome;
use sluice_sim::{BaselineConfig, Cluster, Policy, Run, TraceJob, Workload, replay, stats};

const S: i64 = 1000;

fn node(name: &str, cores: u64) -> NodeCapacity {
    NodeCapacity::new(name, cores * 1000, cores * 4096, None)
}

/// A job: a 1-core driver and `execs` 1-core executors (4 GiB a core), submitted at `at`
/// seconds, running `secs` seconds.
fn job(name: &str, ns: &str, level: &str, at: i64, execs: u32, secs: i64) -> TraceJob {
    TraceJob {
        line: 0,
        submit_ms: at * S,
        namespace: ns.into(),
        level: Some(level.into()),
        name: name.into(),
        driver: Resources::new(1000, 4096),
        executor: Resources::new(1000, 4096),
        executors: execs,
        duration_ms: secs * S,
        outcome: Outcome::Succeeded,
        max_runtime_ms: None,
    }
}

struct Case {
    name: &'static str,
    nodes: Vec<NodeCapacity>,
    namespaces: Vec<(&'static str, u32)>,
    jobs: Vec<TraceJob>,
    policy: Policy,
    baseline: BaselineConfig,
    /// Job name to its start (seconds), or `None` for a job that never runs.
    want_started: Vec<(&'static str, Option<i64>)>,
    /// Job name to its wait (seconds).
    want_waits: Vec<(&'static str, i64)>,
    /// Jobs that were half-started.
    want_half: Vec<&'static str>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            nodes: vec![node("a", 4)],
            namespaces: vec![],
            jobs: vec![],
            policy: Policy::Strict,
            baseline: BaselineConfig {
                hang_timeout_ms: 60 * S,
                restarts: 1,
            },
            want_started: vec![],
            want_waits: vec![],
            want_half: vec![],
        }
    }
}

fn cluster_of(nodes: Vec<NodeCapacity>, namespaces: &[(&str, u32)]) -> Cluster {
    let mut c = Cluster::of_nodes(nodes);
    for (ns, weight) in namespaces {
        c.namespaces.insert(
            ns.to_string(),
            NamespacePolicy {
                weight: *weight,
                policy: HeadPolicy::Strict,
            },
        );
    }
    c
}

fn run_case(case: &Case) -> (Workload, Run) {
    let cluster = cluster_of(case.nodes.clone(), &case.namespaces);
    let w = Workload::new(&case.jobs, &cluster).unwrap();
    let run = replay(&w, &cluster, case.policy, case.baseline);
    (w, run)
}

#[test]
fn schedule_table() {
    let cases = vec![
        Case {
            name: "a job waits for room a running job frees",
            jobs: vec![
                job("a", "x", "normal", 0, 2, 10),
                job("b", "x", "normal", 1, 1, 5),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10))],
            want_waits: vec![("a", 0), ("b", 9)],
            ..Case::default()
        },
        Case {
            name: "strict: a head that does not fit blocks the small job behind it",
            jobs: vec![
                job("a", "x", "normal", 0, 2, 10),
                job("b", "x", "normal", 1, 3, 5),
                job("c", "x", "normal", 2, 0, 3),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10)), ("c", Some(15))],
            want_waits: vec![("b", 9), ("c", 13)],
            ..Case::default()
        },
        Case {
            name: "strict+preemption: a high job stops the most recent normal job, which starts again after it",
            policy: Policy::StrictPreemption,
            jobs: vec![
                job("a", "x", "normal", 0, 1, 100),
                job("b", "x", "normal", 1, 1, 100),
                job("h", "x", "high", 5, 1, 10),
            ],
            want_started: vec![("a", Some(0)), ("h", Some(5)), ("b", Some(15))],
            want_waits: vec![("h", 0), ("b", 14)],
            ..Case::default()
        },
        Case {
            name: "strict without preemption: the same high job waits",
            jobs: vec![
                job("a", "x", "normal", 0, 1, 100),
                job("b", "x", "normal", 1, 1, 100),
                job("h", "x", "high", 5, 1, 10),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(1)), ("h", Some(100))],
            want_waits: vec![("h", 95)],
            ..Case::default()
        },
        Case {
            name: "best-effort: the small job passes the blocked head",
            policy: Policy::BestEffort,
            jobs: vec![
                job("a", "x", "normal", 0, 2, 10),
                job("b", "x", "normal", 1, 3, 5),
                job("c", "x", "normal", 2, 0, 3),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10)), ("c", Some(2))],
            want_waits: vec![("b", 9), ("c", 0)],
            ..Case::default()
        },
        Case {
            name: "a higher level goes first when room frees",
            jobs: vec![
                job("a", "x", "normal", 0, 3, 10),
                job("b", "x", "normal", 1, 3, 10),
                job("c", "x", "high", 2, 3, 10),
            ],
            want_started: vec![("a", Some(0)), ("c", Some(10)), ("b", Some(20))],
            want_waits: vec![("c", 8), ("b", 19)],
            ..Case::default()
        },
        Case {
            name: "fair share: freed room goes to the namespace holding less",
            nodes: vec![node("a", 3)],
            namespaces: vec![("x", 1), ("y", 1)],
            jobs: vec![
                job("x1", "x", "normal", 0, 0, 100),
                job("x2", "x", "normal", 0, 1, 10),
                job("x3", "x", "normal", 0, 1, 10),
                job("y1", "y", "normal", 1, 1, 10),
            ],
            want_started: vec![
                ("x1", Some(0)),
                ("x2", Some(0)),
                ("y1", Some(10)),
                ("x3", Some(20)),
            ],
            want_waits: vec![("y1", 9), ("x3", 20)],
            ..Case::default()
        },
        Case {
            name: "a job that can never fit is refused, not queued for ever",
            nodes: vec![node("a", 2), node("b", 2)],
            jobs: vec![
                job("big", "x", "normal", 0, 4, 10),
                job("ok", "x", "normal", 1, 1, 10),
            ],
            want_started: vec![("big", None), ("ok", Some(1))],
            ..Case::default()
        },
        Case {
            name: "no admission: the driver starts and waits half-started for executors",
            policy: Policy::NoAdmission,
            jobs: vec![
                job("a", "x", "normal", 0, 2, 10),
                job("b", "x", "normal", 1, 2, 10),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10))],
            want_waits: vec![("b", 9)],
            want_half: vec!["b"],
            ..Case::default()
        },
        Case {
            name: "sluice: the same trace, b waits whole and never half-starts",
            jobs: vec![
                job("a", "x", "normal", 0, 2, 10),
                job("b", "x", "normal", 1, 2, 10),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10))],
            want_waits: vec![("b", 9)],
            ..Case::default()
        },
        Case {
            name: "no admission: two drivers split the room and deadlock until they give up",
            policy: Policy::NoAdmission,
            jobs: vec![
                job("a", "x", "normal", 0, 3, 10),
                job("b", "x", "normal", 0, 3, 10),
            ],
            // t=0: both drivers start, a takes the last 2 cores: a misses 1 executor, b 3.
            // t=60: both time out and restart, and split the room the same way; t=120: both
            // have used their one restart and give up.
            want_started: vec![("a", None), ("b", None)],
            want_half: vec!["a", "b"],
            ..Case::default()
        },
        Case {
            name: "strict: the same pair runs one after the other",
            jobs: vec![
                job("a", "x", "normal", 0, 3, 10),
                job("b", "x", "normal", 0, 3, 10),
            ],
            want_started: vec![("a", Some(0)), ("b", Some(10))],
            want_waits: vec![("a", 0), ("b", 10)],
            ..Case::default()
        },
    ];
    for case in &cases {
        let (w, run) = run_case(case);
        let by_name: BTreeMap<&str, usize> = w
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.as_str(), i))
            .collect();
        for (name, want) in &case.want_started {
            let got = run.jobs[by_name[name]].start_ms.map(|t| t / S);
            assert_eq!(got, *want, "{}: start of {name}", case.name);
        }
        for (name, want) in &case.want_waits {
            let i = by_name[name];
            let got = run.jobs[i].start_ms.map(|t| (t - w.jobs[i].submit_ms) / S);
            assert_eq!(got, Some(*want), "{}: wait of {name}", case.name);
        }
        let half: Vec<&str> = w
            .jobs
            .iter()
            .zip(&run.jobs)
            .filter(|(_, r)| r.half_started)
            .map(|(j, _)| j.name.as_str())
            .collect();
        assert_eq!(half, case.want_half, "{}: half-started", case.name);
        // Every job that ran ends its duration after it started.
        for (j, r) in w.jobs.iter().zip(&run.jobs) {
            if let Some(s) = r.start_ms {
                assert_eq!(
                    r.end_ms,
                    Some(s + j.duration_ms),
                    "{}: {}",
                    case.name,
                    j.name
                );
            }
        }
    }
}

fn sample() -> (Cluster, Workload) {
    let cluster = Cluster::parse(include_str!("../../../examples/sim/cluster.toml")).unwrap();
    let trace = sluice_sim::trace::parse(include_str!("../../../examples/sim/trace.csv")).unwrap();
    let w = Workload::new(&trace, &cluster).unwrap();
    (cluster, w)
}

#[test]
fn the_sample_half_starts_jobs_only_without_admission_control() {
    let (cluster, w) = sample();
    assert!(w.jobs.len() >= 1000, "{}", w.jobs.len());
    let all = [
        Policy::NoAdmission,
        Policy::Strict,
        Policy::BestEffort,
        Policy::Configured,
    ];
    let summaries = sluice_sim::compare(&w, &cluster, &all, BaselineConfig::default());
    for s in &summaries {
        if s.policy.is_sluice() {
            assert_eq!(s.half_started, 0, "{:?}", s.policy);
            assert_eq!(s.never_ran, 0, "{:?}", s.policy);
            assert_eq!(s.ran + s.refused, s.jobs, "{:?}", s.policy);
        } else {
            assert!(s.half_started > 0, "the baseline half-starts jobs");
            assert!(s.idle_core_hours > 0.0);
        }
    }
    // The report says so, in both forms.
    let text = sluice_sim::report::text(&summaries);
    assert!(text.contains("half-started"), "{text}");
    let html = sluice_sim::report::html("sample", &summaries);
    assert!(
        html.contains("<svg") && !html.contains("<script"),
        "self-contained"
    );
}

#[test]
fn a_replay_is_deterministic() {
    let (cluster, w) = sample();
    for p in [
        Policy::Strict,
        Policy::BestEffort,
        Policy::Backfill,
        Policy::Configured,
    ] {
        let fast = replay(&w, &cluster, p, BaselineConfig::default());
        let full = sluice_sim::engine::run(
            &w,
            &cluster,
            &sluice_sim::engine::Options {
                prune: false,
                ..sluice_sim::options(p, &cluster, 1.0)
            },
        );
        assert_eq!(
            fast.jobs, full.jobs,
            "{p}: the shortcuts change no decision"
        );
    }
    for p in [Policy::Strict, Policy::NoAdmission] {
        let a = replay(&w, &cluster, p, BaselineConfig::default());
        let b = replay(&w, &cluster, p, BaselineConfig::default());
        assert_eq!(a, b, "{p}");
        let sa = stats::summarise(p, &w, &cluster, &a);
        assert_eq!(sa, stats::summarise(p, &w, &cluster, &b));
    }
}

/// Rebuilds node usage from the placements alone and checks that no node ever holds more than
/// its allocatable room or pod slots, and that every job that ran had all its pods placed.
fn check_run(w: &Workload, cluster: &Cluster, run: &Run) -> Result<(), String> {
    // (time, 0 = end / 1 = start, job): ends before starts at the same time.
    let mut events: Vec<(i64, u8, usize)> = Vec::new();
    for (i, (j, r)) in w.jobs.iter().zip(&run.jobs).enumerate() {
        if r.half_started {
            return Err(format!("job {} half-started", j.id));
        }
        match (r.start_ms, r.end_ms) {
            (Some(s), Some(e)) => {
                if s < j.submit_ms || e != s + j.duration_ms {
                    return Err(format!("job {} times {s}..{e}", j.id));
                }
                let mut want: BTreeMap<Role, u64> = BTreeMap::new();
                for p in &j.demand.pods {
                    *want.entry(p.role).or_default() += u64::from(p.count);
                }
                let mut got: BTreeMap<Role, u64> = BTreeMap::new();
                for (role, _) in &r.placement {
                    *got.entry(*role).or_default() += 1;
                }
                if want != got {
                    return Err(format!("job {} placed {got:?}, needs {want:?}", j.id));
                }
                // A zero-length run holds its room for no time: only its placement is checked.
                if e > s {
                    events.push((s, 1, i));
                    events.push((e, 0, i));
                }
            }
            (None, None) if r.refused || !j.fits_empty => {}
            other => return Err(format!("job {} never ran: {other:?}", j.id)),
        }
    }
    events.sort();
    let mut used: Vec<(u64, u64, u32)> = vec![(0, 0, 0); cluster.nodes.len()];
    for (_, kind, i) in events {
        for &(role, n) in &run.jobs[i].placement {
            let pod = w.jobs[i].demand.role(role).unwrap().each();
            let u = &mut used[n];
            if kind == 1 {
                *u = (u.0 + pod.cpu_milli, u.1 + pod.mem_mib, u.2 + 1);
            } else {
                *u = (u.0 - pod.cpu_milli, u.1 - pod.mem_mib, u.2 - 1);
            }
        }
        for (n, u) in used.iter().enumerate() {
            let a = &cluster.nodes[n];
            if u.0 > a.cpu_milli || u.1 > a.mem_mib || a.pods.is_some_and(|p| u.2 > p) {
                return Err(format!("node {} over-committed: {u:?} of {a:?}", a.name));
            }
        }
    }
    Ok(())
}

fn arb_job() -> impl Strategy<Value = TraceJob> {
    (
        0i64..60,
        0usize..3,
        0usize..2,
        1u64..5,
        1u64..9,
        0u32..6,
        1u64..5,
        1u64..9,
        0i64..40,
        prop::option::of(1i64..40),
    )
        .prop_map(|(at, ns, level, dc, dm, n, ec, em, secs, max)| TraceJob {
            line: 0,
            submit_ms: at * S,
            namespace: ["x", "y", "z"][ns].into(),
            level: Some(["high", "normal"][level].into()),
            name: "j".into(),
            driver: Resources::new(dc * 500, dm * 1024),
            executor: Resources::new(ec * 500, em * 1024),
            executors: n,
            duration_ms: secs * S,
            outcome: Outcome::Succeeded,
            max_runtime_ms: max.map(|m| m * S),
        })
}

fn arb_cluster() -> impl Strategy<Value = Cluster> {
    (
        prop::collection::vec((1u64..9, 1u64..17, prop::option::of(1u32..5)), 1..4),
        1u32..4,
        prop::bool::ANY,
    )
        .prop_map(|(nodes, wy, y_best)| {
            let nodes = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (c, m, p))| NodeCapacity::new(format!("n{i}"), c * 1000, m * 1024, p))
                .collect();
            let mut c = Cluster::of_nodes(nodes);
            // Normal jobs age to high after 2 minutes (the aging policies).
            c.aging = vec![None, Some(120_000)];
            c.namespaces.insert(
                "y".into(),
                NamespacePolicy {
                    weight: wy,
                    policy: if y_best {
                        HeadPolicy::BestEffort
                    } else {
                        HeadPolicy::Strict
                    },
                },
            );
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn sluice_policies_never_over_commit_or_half_start(
        jobs in prop::collection::vec(arb_job(), 1..30),
        cluster in arb_cluster(),
    ) {
        let w = Workload::new(&jobs, &cluster).unwrap();
        for p in [
            Policy::Strict,
            Policy::BestEffort,
            Policy::Backfill,
            Policy::StrictAging,
            Policy::BackfillAging,
            Policy::StrictPreemption,
            Policy::Configured,
        ] {
            let run = replay(&w, &cluster, p, BaselineConfig::default());
            if let Err(e) = check_run(&w, &cluster, &run) {
                return Err(TestCaseError::fail(format!("{p}: {e}")));
            }
            // The engine's shortcuts change no decision: every waiting job in every cycle
            // gives the same starts.
            let full = sluice_sim::engine::run(
            &w,
            &cluster,
            &sluice_sim::engine::Options {
                prune: false,
                ..sluice_sim::options(p, &cluster, 1.0)
            },
        );
            prop_assert_eq!(&run.jobs, &full.jobs, "{}", p);
        }
    }
}
