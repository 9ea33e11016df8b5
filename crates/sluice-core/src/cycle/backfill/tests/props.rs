//! Property tests of backfill: with exact estimates, what a cycle admits never delays a
//! reserved start, and an overdue head's hard reservation holds whatever passed it.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{MIN, node, pod};
use crate::capacity::{Fitter, NodeCapacity, Snapshot};
use crate::cycle::{
    BackfillSettings, Candidate, CycleInput, HeadPolicy, NamespacePolicy, RunningJob, Timing,
    earliest_start, schedule_at,
};
use crate::job::Resources;

/// A random cluster with running jobs placed on it and a queue of one backfill namespace.
#[derive(Debug, Clone)]
struct World {
    nodes: Vec<u64>,
    running: Vec<(u64, i64)>,
    queued: Vec<(u64, i64)>,
}

fn arb_world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(2u64..9, 1..5),
        prop::collection::vec((1u64..5, 1i64..50), 0..12),
        prop::collection::vec((1u64..9, 1i64..60), 1..12),
    )
        .prop_map(|(nodes, running, queued)| World {
            nodes,
            running,
            queued,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// With exact estimates, what a cycle backfills never delays the head's reserved start:
    /// replaying the expected ends of the running jobs and of everything admitted, on the room
    /// left after the cycle, the head fits at its reserved start.
    #[test]
    fn backfill_never_delays_the_reserved_start(w in arb_world()) {
        // Place the running jobs first fit on the empty nodes (those that fit).
        let alloc: Vec<NodeCapacity> = w.nodes.iter().enumerate()
            .map(|(i, c)| node(&format!("n{i}"), *c)).collect();
        let mut fitter = Fitter::new(&alloc);
        let mut run = Vec::new();
        for (cores, end) in &w.running {
            if let Ok(p) = fitter.try_place(&pod(*cores)) {
                run.push(RunningJob::placed(end * MIN, &pod(*cores), &p));
            }
        }
        let snapshot = Snapshot { available: true, nodes: fitter.nodes().to_vec(), allocatable: alloc.clone() };
        let cands: Vec<Candidate> = w.queued.iter().enumerate().map(|(i, (cores, _))| Candidate {
            id: format!("j{i:02}"),
            namespace: "ns".into(),
            level: 0,
            enqueued_at_ms: i as i64,
            demand: pod(*cores),
            constraints: None,
        }).collect();
        let expected: Vec<Option<i64>> = w.queued.iter().map(|(_, r)| Some(r * MIN)).collect();
        let held = BTreeMap::new();
        let namespaces = BTreeMap::new();
        let out = schedule_at(
            &CycleInput {
                candidates: &cands,
                snapshot: &snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy { weight: 1, policy: HeadPolicy::Backfill },
            },
            &Timing {
                now_ms: 0,
                expected_ms: &expected,
                max_runtime_ms: &[],
                running: &run,
                backfill: BackfillSettings { max_head_wait_ms: None, ..BackfillSettings::default() },
                aging: &[],
            },
        );
        prop_assert!(out.reservations.len() <= 1);
        let Some(res) = out.reservations.first() else { return Ok(()) };
        // The room after the cycle: the snapshot less every admission.
        let mut after: Vec<NodeCapacity> = snapshot.nodes.clone();
        let mut ends: Vec<RunningJob> = run.clone();
        for a in &out.admitted {
            let d = &cands[a.index].demand;
            for (_, n) in &a.placement.pods {
                after[*n].cpu_milli -= d.pods[0].cpu_milli;
                after[*n].mem_mib -= d.pods[0].mem_mib;
            }
            ends.push(RunningJob::placed(expected[a.index].unwrap_or(0), d, &a.placement));
        }
        // At the reserved start: add back what ended by then, node by node.
        for r in &ends {
            if r.end_ms <= res.start_ms {
                for (n, p) in &r.pods {
                    after[*n].cpu_milli += p.cpu_milli;
                    after[*n].mem_mib += p.mem_mib;
                }
            }
        }
        let head = &cands[res.index].demand;
        prop_assert!(
            Fitter::new(&after).try_place(head).is_ok(),
            "head {} does not fit at its reserved start {} after {:?}",
            cands[res.index].id, res.start_ms, out.admitted
        );
        // And the start is the earliest: before it, even without the admissions, it did not fit.
        let refs: Vec<&RunningJob> = run.iter().collect();
        let (earliest, _) = earliest_start(&Fitter::new(&snapshot.nodes), &refs, 0, 0, head, None)
            .expect("a reserved head fits once everything ends");
        prop_assert!(earliest <= res.start_ms);
    }
}

/// Several namespaces with mixed policies, levels and queue times, and random bounds.
#[derive(Debug, Clone)]
struct Mixed {
    nodes: Vec<u64>,
    running: Vec<(u64, i64)>,
    /// (namespace, level, enqueued minute, cores, run minutes, maxRuntime beyond the run)
    queued: Vec<(usize, usize, i64, u64, i64, Option<i64>)>,
    policies: Vec<HeadPolicy>,
    max_wait: Option<i64>,
    now: i64,
}

fn arb_mixed() -> impl Strategy<Value = Mixed> {
    let policy = prop_oneof![
        Just(HeadPolicy::Strict),
        Just(HeadPolicy::BestEffort),
        Just(HeadPolicy::Backfill),
    ];
    (
        prop::collection::vec(2u64..9, 1..5),
        prop::collection::vec((1u64..5, 1i64..80), 0..12),
        prop::collection::vec(
            (
                0usize..3,
                0usize..2,
                0i64..60,
                1u64..9,
                1i64..60,
                prop::option::of(0i64..40),
            ),
            1..16,
        ),
        prop::collection::vec(policy, 3),
        prop::option::of(0i64..60),
        0i64..60,
    )
        .prop_map(|(nodes, running, queued, policies, max_wait, now)| Mixed {
            nodes,
            running,
            queued,
            policies,
            max_wait,
            now,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// With exact estimates, across namespaces and policies, overdue heads included: every
    /// job is decided once, the admissions fit the free room together, and every head with a
    /// reserved start fits then, once the running jobs and everything admitted have ended as
    /// expected.
    #[test]
    fn every_reservation_holds_across_namespaces(m in arb_mixed()) {
        let alloc: Vec<NodeCapacity> = m.nodes.iter().enumerate()
            .map(|(i, c)| node(&format!("n{i}"), *c)).collect();
        let mut fitter = Fitter::new(&alloc);
        let mut run = Vec::new();
        for (cores, end) in &m.running {
            if let Ok(p) = fitter.try_place(&pod(*cores)) {
                run.push(RunningJob::placed(end * MIN, &pod(*cores), &p));
            }
        }
        let snapshot = Snapshot { available: true, nodes: fitter.nodes().to_vec(), allocatable: alloc };
        let names = ["a", "b", "c"];
        let cands: Vec<Candidate> = m.queued.iter().enumerate()
            .map(|(i, (ns, level, at, cores, _, _))| Candidate {
                id: format!("j{i:02}"),
                namespace: names[*ns].into(),
                level: *level,
                enqueued_at_ms: at * MIN,
                demand: pod(*cores),
                constraints: None,
            }).collect();
        let expected: Vec<Option<i64>> = m.queued.iter().map(|q| Some(q.4 * MIN)).collect();
        let max_runtime: Vec<Option<i64>> =
            m.queued.iter().map(|q| q.5.map(|extra| (q.4 + extra) * MIN)).collect();
        let namespaces: BTreeMap<String, NamespacePolicy> = names.iter().zip(&m.policies)
            .map(|(n, p)| (n.to_string(), NamespacePolicy { weight: 1, policy: *p })).collect();
        let held = BTreeMap::new();
        let now = m.now * MIN;
        let out = schedule_at(
            &CycleInput {
                candidates: &cands,
                snapshot: &snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy::default(),
            },
            &Timing {
                now_ms: now,
                expected_ms: &expected,
                max_runtime_ms: &max_runtime,
                running: &run,
                backfill: BackfillSettings {
                    default_runtime_ms: 60 * MIN,
                    overrun_margin_ms: 5 * MIN,
                    max_head_wait_ms: m.max_wait.map(|w| w * MIN),
                },
                aging: &[],
            },
        );
        let mut seen = vec![0; cands.len()];
        for a in &out.admitted { seen[a.index] += 1; }
        for w in &out.waiting { seen[w.index] += 1; }
        prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        // The room after the cycle, and what ends when.
        let mut after: Vec<NodeCapacity> = snapshot.nodes.clone();
        let mut ends: Vec<RunningJob> = run.iter().map(|r| RunningJob {
            end_ms: if r.end_ms > now { r.end_ms } else { now + 5 * MIN },
            ..r.clone()
        }).collect();
        for a in &out.admitted {
            let d = &cands[a.index].demand;
            for (_, n) in &a.placement.pods {
                prop_assert!(after[*n].cpu_milli >= d.pods[0].cpu_milli, "over-committed");
                after[*n].cpu_milli -= d.pods[0].cpu_milli;
                after[*n].mem_mib -= d.pods[0].mem_mib;
            }
            ends.push(RunningJob::placed(now + expected[a.index].unwrap_or(0), d, &a.placement));
        }
        for r in &out.reservations {
            prop_assert!(out.waiting.iter().any(|w| w.index == r.index));
            let mut at = after.clone();
            for e in &ends {
                if e.end_ms <= r.start_ms {
                    for (n, p) in &e.pods {
                        at[*n].cpu_milli += p.cpu_milli;
                        at[*n].mem_mib += p.mem_mib;
                    }
                }
            }
            prop_assert!(
                Fitter::new(&at).try_place(&cands[r.index].demand).is_ok(),
                "head {} does not fit at its reserved start {}: {:?}",
                cands[r.index].id, r.start_ms, out
            );
        }
        // An overdue head's (hard) reservation trusts no estimate of what passed it: it holds
        // even if every job admitted after it was made runs to its maxRuntime (and the margin),
        // or for ever without one. The overdue heads admitted before it (older, or as old and
        // of an earlier namespace) are what it was computed from, at their expected ends.
        let Some(max_wait) = m.max_wait.map(|w| w * MIN) else { return Ok(()) };
        let first = |ns: usize| (0..cands.len()).filter(|&i| m.queued[i].0 == ns)
            .min_by_key(|&i| (m.queued[i].1, m.queued[i].2, i));
        let overdue = |i: usize| m.policies[m.queued[i].0] == HeadPolicy::Backfill
            && now - cands[i].enqueued_at_ms >= max_wait
            && first(m.queued[i].0) == Some(i);
        for r in out.reservations.iter().filter(|r| overdue(r.index)) {
            let key = |i: usize| (cands[i].enqueued_at_ms, m.queued[i].0);
            let mut at = after.clone();
            let mut back = |pods: &[(usize, Resources)]| for (n, p) in pods {
                at[*n].cpu_milli += p.cpu_milli;
                at[*n].mem_mib += p.mem_mib;
            };
            for e in &ends[..run.len()] {
                if e.end_ms <= r.start_ms { back(&e.pods); }
            }
            for (a, e) in out.admitted.iter().zip(&ends[run.len()..]) {
                let end = if overdue(a.index) && key(a.index) < key(r.index) {
                    Some(e.end_ms)
                } else {
                    max_runtime[a.index].map(|m| now + m + 5 * MIN)
                };
                if end.is_some_and(|t| t <= r.start_ms) { back(&e.pods); }
            }
            prop_assert!(
                Fitter::new(&at).try_place(&cands[r.index].demand).is_ok(),
                "overdue head {} does not fit at {} once what passed it runs to its maxRuntime: {:?}",
                cands[r.index].id, r.start_ms, out
            );
        }
    }
}

/// One backfill namespace "a" whose head is overdue (by the backfill wait bound, or raised by
/// aging), later jobs of "a" and jobs of "b" and "c" under random policies, none of them
/// overdue, and random `maxRuntime`s.
#[derive(Debug, Clone)]
struct Overdue {
    nodes: Vec<u64>,
    running: Vec<(u64, i64)>,
    head: u64,
    /// (namespace, level, minutes before now it was enqueued, cores, run minutes, maxRuntime)
    queued: Vec<(usize, usize, i64, u64, i64, Option<i64>)>,
    policies: Vec<HeadPolicy>,
    by_aging: bool,
    /// Minutes past the bound.
    late: i64,
}

fn arb_overdue() -> impl Strategy<Value = Overdue> {
    let policy = prop_oneof![
        Just(HeadPolicy::Strict),
        Just(HeadPolicy::BestEffort),
        Just(HeadPolicy::Backfill),
    ];
    (
        prop::collection::vec(2u64..9, 1..5),
        prop::collection::vec((1u64..5, 1i64..200), 0..12),
        1u64..9,
        prop::collection::vec(
            (
                0usize..3,
                0usize..2,
                0i64..59,
                1u64..9,
                1i64..120,
                prop::option::of(1i64..120),
            ),
            0..14,
        ),
        prop::collection::vec(policy, 2),
        any::<bool>(),
        0i64..60,
    )
        .prop_map(
            |(nodes, running, head, queued, policies, by_aging, late)| Overdue {
                nodes,
                running,
                head,
                queued,
                policies,
                by_aging,
                late,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The overdue head's reserved room is never taken by a job whose certain end (its
    /// `maxRuntime` plus the margin; none: never) is after the reserved start, whatever its
    /// estimate: with the room after the cycle, the running jobs' expected ends and only the
    /// admitted jobs certain to be gone by then, the head fits at its reserved start. And its
    /// backfill namespace is not blocked behind it.
    #[test]
    fn an_overdue_heads_room_is_not_taken_past_its_start(o in arb_overdue()) {
        let margin = 5 * MIN;
        let alloc: Vec<NodeCapacity> = o.nodes.iter().enumerate()
            .map(|(i, c)| node(&format!("n{i}"), *c)).collect();
        let mut fitter = Fitter::new(&alloc);
        let mut run = Vec::new();
        for (cores, end) in &o.running {
            if let Ok(p) = fitter.try_place(&pod(*cores)) {
                run.push(RunningJob::placed(end * MIN, &pod(*cores), &p));
            }
        }
        let snapshot = Snapshot { available: true, nodes: fitter.nodes().to_vec(), allocatable: alloc };
        // The head waited its bound (60 min of aging, or the 120-min backfill bound) and more;
        // every other job less than 60 minutes.
        let bound = if o.by_aging { 60 } else { 120 };
        let now = (bound + o.late) * MIN;
        let names = ["a", "b", "c"];
        let mut cands = vec![Candidate {
            id: "head".into(),
            namespace: "a".into(),
            level: usize::from(o.by_aging),
            enqueued_at_ms: 0,
            demand: pod(o.head),
            constraints: None,
        }];
        let mut expected = vec![Some(30 * MIN)];
        let mut max_runtime = vec![None];
        for (i, (ns, level, ago, cores, r, max)) in o.queued.iter().enumerate() {
            cands.push(Candidate {
                id: format!("j{i:02}"),
                namespace: names[*ns].into(),
                level: *level,
                enqueued_at_ms: now - ago * MIN,
                demand: pod(*cores),
                constraints: None,
            });
            expected.push(Some(r * MIN));
            max_runtime.push(max.map(|m| m * MIN));
        }
        let mut namespaces = BTreeMap::from([(
            "a".to_string(),
            NamespacePolicy { weight: 1, policy: HeadPolicy::Backfill },
        )]);
        for (n, p) in names[1..].iter().zip(&o.policies) {
            namespaces.insert(n.to_string(), NamespacePolicy { weight: 1, policy: *p });
        }
        let aging = if o.by_aging { vec![None, Some(60 * MIN)] } else { vec![] };
        let held = BTreeMap::new();
        let out = schedule_at(
            &CycleInput {
                candidates: &cands,
                snapshot: &snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy::default(),
            },
            &Timing {
                now_ms: now,
                expected_ms: &expected,
                max_runtime_ms: &max_runtime,
                running: &run,
                backfill: BackfillSettings {
                    default_runtime_ms: 60 * MIN,
                    overrun_margin_ms: margin,
                    max_head_wait_ms: (!o.by_aging).then_some(120 * MIN),
                },
                aging: &aging,
            },
        );
        let Some(res) = out.reservations.iter().find(|r| r.index == 0) else {
            // No reservation: the head started, or its room is held by nothing that ends.
            return Ok(());
        };
        prop_assert!(out.waiting.iter().any(|w| w.index == 0));
        prop_assert!(
            !out.waiting.iter().any(|w| w.reason.kind() == "blocked"
                && cands[w.index].namespace == "a"),
            "the backfill namespace is blocked behind its overdue head: {:?}", out
        );
        let mut at: Vec<NodeCapacity> = snapshot.nodes.clone();
        let mut back = |pods: &[(usize, Resources)], give: bool| for (n, p) in pods {
            if give {
                at[*n].cpu_milli += p.cpu_milli;
                at[*n].mem_mib += p.mem_mib;
            } else {
                at[*n].cpu_milli -= p.cpu_milli;
                at[*n].mem_mib -= p.mem_mib;
            }
        };
        for r in &run {
            let end = if r.end_ms > now { r.end_ms } else { now + margin };
            if end <= res.start_ms { back(&r.pods, true); }
        }
        for a in &out.admitted {
            let placed = RunningJob::placed(0, &cands[a.index].demand, &a.placement);
            let certain = max_runtime[a.index].map(|m| now + m + margin);
            if certain.is_none_or(|c| c > res.start_ms) {
                back(&placed.pods, false);
            }
        }
        prop_assert!(
            Fitter::new(&at).try_place(&cands[0].demand).is_ok(),
            "the overdue head does not fit at its reserved start {} once the jobs admitted \
             past it run to their certain ends: {:?}",
            res.start_ms, out
        );
    }
}
