use super::*;
use crate::job::{PodDemand, Role};
use proptest::prelude::*;

fn demand(cpu: u64) -> Demand {
    Demand {
        pods: vec![PodDemand {
            role: Role::Task,
            count: 1,
            cpu_milli: cpu,
            mem_mib: 128,
        }],
    }
}

fn entry(q: &mut JobQueue, id: &str, ns: &str, rank: usize, at: i64) -> QueueEntry {
    QueueEntry {
        id: Arc::from(id),
        namespace: q.intern(ns),
        level: q.intern(if rank == 0 { "high" } else { "normal" }),
        rank,
        enqueued_at_ms: at,
        demand: demand(100),
        name: Arc::from("job"),
        max_runtime_ms: None,
        attempt: 1,
    }
}

#[test]
fn heads_in_queue_order_with_window_and_future_jobs() {
    let mut q = JobQueue::new();
    for (id, ns, rank, at) in [
        ("a1", "a", 1, 10),
        ("a2", "a", 0, 20),
        ("a3", "a", 1, 5),
        ("a4", "a", 1, 500), // a retry waiting on its backoff
        ("b1", "b", 1, 1),
    ] {
        let e = entry(&mut q, id, ns, rank, at);
        q.insert(e, 100);
    }
    let ids = |h: &Heads<'_>| h.jobs.iter().map(|e| e.id.to_string()).collect::<Vec<_>>();
    let h = q.heads(100, 10, |_| false);
    assert_eq!(ids(&h), ["a2", "a3", "a1", "b1"]);
    assert!(!h.truncated);
    let h = q.heads(100, 2, |_| false);
    assert_eq!(ids(&h), ["a2", "a3", "b1"]);
    assert!(h.truncated);
    let h = q.heads(100, 10, |id| id == "a3");
    assert_eq!(ids(&h), ["a2", "a1", "b1"]);
    assert_eq!(q.position("a1", 100), Some((3, 2)));
    assert_eq!(q.position("a4", 100), None);
    // The retry's timer.
    assert_eq!(q.next_due(), Some(500));
    assert!(!q.take_due(499));
    let v = q.version();
    assert!(q.take_due(500));
    assert!(q.version() != v);
    assert_eq!(q.next_due(), None);
    assert_eq!(
        ids(&q.heads(500, 10, |_| false)),
        ["a2", "a3", "a1", "a4", "b1"]
    );
    assert_eq!(q.position("a4", 500), Some((4, 3)));
    // Interned names are shared.
    let a1 = q.get("a1").map(|e| e.namespace.clone());
    let a2 = q.get("a2").map(|e| e.namespace.clone());
    assert!(matches!((a1, a2), (Some(x), Some(y)) if Arc::ptr_eq(&x, &y)));
    assert!(q.remove("a2").is_some());
    assert!(q.remove("a2").is_none());
    assert_eq!(q.len(), 4);
}

#[derive(Debug, Clone)]
enum Op {
    Insert { id: u8, ns: u8, rank: u8, at: i64 },
    Remove { id: u8 },
    Due { now: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..30, 0u8..4, 0u8..3, 0i64..200).prop_map(|(id, ns, rank, at)| Op::Insert { id, ns, rank, at }),
        1 => (0u8..30).prop_map(|id| Op::Remove { id }),
        1 => (0i64..200).prop_map(|now| Op::Due { now }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// After any sequence of inserts, removes and due timers, the queue agrees with a plain
    /// list sorted the cycle's way: same jobs, same heads per namespace, same positions.
    #[test]
    fn agrees_with_a_sorted_list(ops in prop::collection::vec(op(), 0..80), now in 0i64..200, window in 1usize..6) {
        let mut q = JobQueue::new();
        let mut model: BTreeMap<String, (String, usize, i64)> = BTreeMap::new();
        let mut clock = 0i64;
        for o in ops {
            match o {
                Op::Insert { id, ns, rank, at } => {
                    let id = format!("j{id:02}");
                    let ns = format!("n{ns}");
                    let e = entry(&mut q, &id, &ns, rank as usize, at);
                    q.insert(e, clock);
                    model.insert(id, (ns, rank as usize, at));
                }
                Op::Remove { id } => {
                    let id = format!("j{id:02}");
                    prop_assert_eq!(q.remove(&id).is_some(), model.remove(&id).is_some());
                }
                Op::Due { now } => {
                    clock = clock.max(now);
                    q.take_due(clock);
                    prop_assert!(q.next_due().is_none_or(|t| t > clock));
                }
            }
        }
        prop_assert_eq!(q.len(), model.len());
        // Counts and oldest per (namespace, level) as a scan of the model gives them.
        let mut want: BTreeMap<(String, String), (u64, i64)> = BTreeMap::new();
        for (ns, rank, at) in model.values() {
            let level = if *rank == 0 { "high" } else { "normal" }.to_string();
            let e = want.entry((ns.clone(), level)).or_insert((0, i64::MAX));
            e.0 += 1;
            e.1 = e.1.min(*at);
        }
        let got: BTreeMap<(String, String), (u64, i64)> = q
            .stats()
            .into_iter()
            .map(|s| ((s.namespace.to_string(), s.level.to_string()), (s.queued, s.oldest_enqueued_at_ms)))
            .collect();
        prop_assert_eq!(got, want);
        // The model's order: by namespace, then (rank, enqueued_at, id), eligible only.
        let mut sorted: Vec<(&String, &(String, usize, i64))> = model.iter().collect();
        sorted.sort_by(|a, b| (&a.1.0, a.1.1, a.1.2, a.0).cmp(&(&b.1.0, b.1.1, b.1.2, b.0)));
        let eligible: Vec<_> = sorted.into_iter().filter(|(_, v)| v.2 <= now).collect();
        let mut expected = Vec::new();
        let mut truncated = false;
        let mut per_ns: BTreeMap<&String, usize> = BTreeMap::new();
        for (id, v) in &eligible {
            let n = per_ns.entry(&v.0).or_default();
            if *n < window {
                expected.push((*id).clone());
                *n += 1;
            } else {
                truncated = true;
            }
        }
        let h = q.heads(now, window, |_| false);
        let got: Vec<String> = h.jobs.iter().map(|e| e.id.to_string()).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(h.truncated, truncated);
        for (id, v) in &model {
            let pos = if v.2 > now {
                None
            } else {
                let before: Vec<_> = eligible.iter().filter(|(_, o)| o.0 == v.0).collect();
                let all = before.iter().position(|(o, _)| *o == id).map(|p| p as u32 + 1);
                let level = before
                    .iter()
                    .filter(|(_, o)| o.1 == v.1)
                    .position(|(o, _)| *o == id)
                    .map(|p| p as u32 + 1);
                all.zip(level)
            };
            prop_assert_eq!(q.position(id, now), pos);
        }
        // Several at once, one walk per namespace: the same positions.
        let ids: Vec<&str> = model.keys().map(String::as_str).collect();
        let all = q.positions(&ids, now);
        for id in &ids {
            prop_assert_eq!(all.get(*id).copied(), q.position(id, now));
        }
        let some = q.positions(&ids[ids.len() / 2..], now);
        for id in &ids[ids.len() / 2..] {
            prop_assert_eq!(some.get(*id).copied(), q.position(id, now));
        }
    }
}
