use super::*;
use sluice_core::job::{PodDemand, Role};

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

fn cand(id: &str, ns: &str, at: i64, cpu: u64) -> Candidate {
    Candidate {
        id: id.into(),
        namespace: ns.into(),
        level: 1,
        enqueued_at_ms: at,
        demand: demand(cpu),
        constraints: None,
    }
}

/// One 2-core node, one core held by a running job of `t` expected to end at 600 s.
fn inputs(candidates: Vec<Candidate>, expected: Vec<Option<i64>>) -> EtaInputs {
    EtaInputs {
        candidates,
        expected,
        snapshot: Snapshot {
            available: true,
            nodes: vec![NodeCapacity::new("n", 1000, 896, None)],
            allocatable: vec![NodeCapacity::new("n", 2000, 1024, None)],
        },
        held: BTreeMap::from([("t".to_string(), Resources::new(1000, 128))]),
        running: vec![(demand(1000), 600_000, "t".into())],
        ..EtaInputs::default()
    }
}

#[test]
fn a_job_behind_a_running_one_starts_when_it_is_expected_to_end_and_the_next_after_it() {
    // a needs both cores: it waits for the running job (600 s); b (strict FIFO, behind a)
    // starts when a is expected to end (600 s + its 300 s).
    let i = inputs(
        vec![cand("a", "t", 0, 2000), cand("b", "t", 1, 1000)],
        vec![Some(300_000), Some(60_000)],
    );
    let got = compute(&i, 1_000);
    assert_eq!(got.get("a"), Some(&600_000));
    assert_eq!(got.get("b"), Some(&900_000));
}

#[test]
fn a_job_that_can_never_fit_has_no_estimate() {
    let i = inputs(vec![cand("big", "t", 0, 4000)], vec![None]);
    assert_eq!(compute(&i, 1_000).get("big"), None);
}

#[tokio::test]
async fn the_book_bounds_the_jobs_per_namespace_and_recomputes_after_a_new_cycle() {
    let book = EtaBook::new();
    assert!(book.estimates(0).await.is_none(), "nothing recorded yet");
    let mut cands: Vec<Candidate> = (0..PER_NAMESPACE + 5)
        .map(|k| cand(&format!("a{k:04}"), "t", k as i64, 1000))
        .collect();
    cands.push(cand("u1", "u", 0, 1000));
    let n = cands.len();
    book.record(inputs(cands, vec![Some(1_000); n]));
    let got = book.estimates(1_000).await.unwrap();
    assert_eq!(got.len(), PER_NAMESPACE + 1, "{:?}", got.keys());
    assert!(got.contains_key("u1"));
    assert!(!got.contains_key(&format!("a{:04}", PER_NAMESPACE)));
    // Within the age bound and with no new cycle: the same estimate (shared).
    let again = book.estimates(5_000).await.unwrap();
    assert!(Arc::ptr_eq(&got, &again));
    // A new cycle: computed again, but not more often than MIN_AGE_MS.
    book.record(inputs(vec![cand("c", "t", 0, 1000)], vec![None]));
    let soon = book.estimates(1_000 + MIN_AGE_MS - 1).await.unwrap();
    assert!(Arc::ptr_eq(&got, &soon));
    let next = book.estimates(1_000 + MIN_AGE_MS).await.unwrap();
    assert_eq!(next.keys().collect::<Vec<_>>(), vec!["c"]);
    // No new cycle, but old: computed again at the new time.
    let later = book
        .estimates(1_000 + MIN_AGE_MS + MAX_AGE_MS)
        .await
        .unwrap();
    assert!(!Arc::ptr_eq(&next, &later));
    book.clear();
    assert!(book.estimates(100_000).await.is_none());
}
