use sluice_core::job::JobState;

use super::model::{HistoryQuery, MAX_BUCKETS};
use super::read::{integrate, mean, nearest_rank};
use super::scan::{Acc, Moves, TERMINAL};
use crate::error::StoreError;

fn q(from_ms: i64, to_ms: i64, step_ms: i64) -> HistoryQuery {
    HistoryQuery {
        from_ms,
        to_ms,
        step_ms,
        namespace: None,
        level: None,
    }
}

#[test]
fn bucket_counts() {
    assert_eq!(q(0, 10, 5).buckets().unwrap(), 2);
    assert_eq!(q(0, 11, 5).buckets().unwrap(), 3);
    assert_eq!(q(0, 1, 5).buckets().unwrap(), 1);
    assert_eq!(
        q(0, MAX_BUCKETS, 1).buckets().unwrap(),
        MAX_BUCKETS as usize
    );
    for bad in [
        q(0, 10, 0),
        q(0, 10, -1),
        q(10, 10, 1),
        q(0, MAX_BUCKETS + 1, 1),
    ] {
        assert!(
            matches!(bad.buckets(), Err(StoreError::BadQuery(_))),
            "{bad:?}"
        );
    }
    let e = q(0, 10, 0).buckets().unwrap_err().to_string();
    assert!(e.contains("step"), "{e}");
}

#[test]
fn terminal_states_are_all_of_them() {
    let all: Vec<JobState> = JobState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(all, TERMINAL);
}

#[test]
fn nearest_ranks() {
    let v: Vec<i64> = (1..=100).collect();
    assert_eq!(nearest_rank(&v, 50), Some(50));
    assert_eq!(nearest_rank(&v, 99), Some(99));
    assert_eq!(nearest_rank(&[7], 50), Some(7));
    assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
    assert_eq!(nearest_rank(&[1, 2], 90), Some(2));
    assert_eq!(nearest_rank(&[], 50), None);
}

#[test]
fn means_are_integrals() {
    // Level 2 all along: mean 2.
    assert_eq!(mean(2, 0, 0.0, 0, 0.0, 10), 2.0);
    // One interval starting at offset 5 of 10: held half the bucket.
    assert_eq!(mean(0, 1, 5.0, 0, 0.0, 10), 0.5);
    // One interval from before, ending at offset 2: held a fifth.
    assert_eq!(mean(1, 0, 0.0, 1, 2.0, 10), 0.2);
    // Starting at 2, ending at 7 inside one bucket: half.
    assert_eq!(mean(0, 1, 2.0, 1, 7.0, 10), 0.5);
}

#[test]
fn integrate_walks_levels() {
    let mut a = Acc::new(3);
    a.queue_base = 2;
    a.queue_starts[1] = Moves {
        n: 1,
        off_n: 0.0,
        ..Default::default()
    };
    a.queue_ends[2] = Moves {
        n: 3,
        off_n: 15.0,
        ..Default::default()
    };
    let p = integrate(&mut a, 3, 10);
    let queued: Vec<u64> = p.iter().map(|p| p.queued).collect();
    assert_eq!(queued, [2, 3, 0]);
    let avg: Vec<f64> = p.iter().map(|p| p.queued_avg).collect();
    assert_eq!(avg, [2.0, 3.0, 1.5]);
}
