//! Expected run times, for backfill and the start-time estimate: from the job's history (the
//! 90th percentile of the last successful runs of jobs with the same namespace and name; a
//! schedule's runs all carry its template's name, so they share one history), else its
//! `maxRuntime`, else `scheduler.default_runtime_ms` (applied by the cycle).
//!
//! The history is read from the store by the tick, for the names it schedules, and kept here:
//! an entry is read again once it is [`REFRESH_MS`] old, and a tick reads at most
//! [`LOOKUPS_PER_TICK`] histories, so the store sees a few small queries a minute, never one
//! per job per tick. Entries not used for [`FORGET_MS`] are dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_core::job::JobState;
use sluice_store::{JobFilter, Store, StoreError};

/// The percentile of past run times taken as the expected run time: high enough that most runs
/// end before it (a reservation made from it holds), low enough that one runaway run does not
/// set it.
pub const PERCENTILE: u32 = 90;

/// How old a history may get before the tick reads it again, ms.
pub const REFRESH_MS: i64 = 5 * 60_000;

/// Most histories one tick reads from the store.
pub const LOOKUPS_PER_TICK: usize = 8;

/// An entry not used for this long is dropped, ms.
pub const FORGET_MS: i64 = 60 * 60_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The percentile of the runs found; none when there were none.
    history_ms: Option<i64>,
    fetched_at_ms: i64,
    used_at_ms: i64,
}

/// The run-time history of each (namespace, name) the tick has asked about.
#[derive(Debug, Default)]
pub struct RuntimeBook {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

/// The nearest-rank `pct` percentile of `values` (sorted here); none for no values.
pub fn percentile(values: &mut [i64], pct: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    // Nearest rank: ceil(pct / 100 * n), 1-based.
    let rank = (n * pct.min(100) as usize).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

impl RuntimeBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            // Every change is one insert or removal; a panic elsewhere leaves a whole map.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The expected run time of a job of `namespace`/`name` whose own bound is `max_runtime_ms`:
    /// its history's percentile (at most its bound: it is stopped there), else its bound; none
    /// when neither is known (the cycle then uses its default).
    pub fn expected_ms(
        &self,
        namespace: &str,
        name: &str,
        max_runtime_ms: Option<i64>,
        now_ms: i64,
    ) -> Option<i64> {
        let history = {
            let mut map = self.lock();
            map.get_mut(&(namespace.to_string(), name.to_string()))
                .and_then(|e| {
                    e.used_at_ms = now_ms;
                    e.history_ms
                })
        };
        match (history, max_runtime_ms) {
            (Some(h), Some(m)) => Some(h.min(m)),
            (Some(h), None) => Some(h),
            (None, m) => m,
        }
    }

    /// Reads from the store the histories of `keys` (namespace, name) that are missing or older
    /// than [`REFRESH_MS`], at most [`LOOKUPS_PER_TICK`] of them, each from the last `runs`
    /// successful runs; drops entries unused for [`FORGET_MS`]. `runs` = 0: no history.
    pub async fn refresh<'a>(
        &self,
        store: &dyn Store,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
        runs: u32,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if runs == 0 {
            return Ok(());
        }
        let due: Vec<(String, String)> = {
            let mut map = self.lock();
            map.retain(|_, e| now_ms.saturating_sub(e.used_at_ms) < FORGET_MS);
            let mut due: Vec<(String, String)> = Vec::new();
            for (ns, name) in keys {
                if due.len() == LOOKUPS_PER_TICK {
                    break;
                }
                let key = (ns.to_string(), name.to_string());
                let fresh = map
                    .get(&key)
                    .is_some_and(|e| now_ms.saturating_sub(e.fetched_at_ms) < REFRESH_MS);
                if !fresh && !due.contains(&key) {
                    due.push(key);
                }
            }
            due
        };
        for (ns, name) in due {
            let filter = JobFilter {
                namespace: Some(ns.clone()),
                name: Some(name.clone()),
                states: vec![JobState::Succeeded],
                ..JobFilter::default()
            };
            let page = store.list_jobs(&filter, runs, None).await?;
            let mut took: Vec<i64> = page
                .jobs
                .iter()
                .filter_map(|j| Some(j.finished_at_ms?.saturating_sub(j.started_at_ms?)))
                .filter(|ms| *ms >= 0)
                .collect();
            let history_ms = percentile(&mut took, PERCENTILE);
            self.lock().insert(
                (ns, name),
                Entry {
                    history_ms,
                    fetched_at_ms: now_ms,
                    used_at_ms: now_ms,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let cases: &[(&[i64], u32, Option<i64>)] = &[
            (&[], 90, None),
            (&[7], 90, Some(7)),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, Some(9)),
            (&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 50, Some(5)),
            // One runaway run among 20 does not set the p90.
            (
                &[
                    60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78,
                    100_000,
                ],
                90,
                Some(77),
            ),
            (&[3, 1, 2], 100, Some(3)),
            (&[3, 1, 2], 0, Some(1)),
        ];
        for (values, pct, want) in cases {
            let mut v = values.to_vec();
            assert_eq!(percentile(&mut v, *pct), *want, "p{pct} of {values:?}");
        }
    }

    #[tokio::test]
    async fn a_refresh_reads_a_bounded_number_of_histories_and_keeps_them_until_they_are_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        let names: Vec<String> = (0..LOOKUPS_PER_TICK + 3).map(|i| format!("j{i}")).collect();
        let keys = || names.iter().map(|n| ("t", n.as_str()));
        let book = RuntimeBook::new();
        book.refresh(store.as_ref(), keys(), 20, 0).await.unwrap();
        assert_eq!(
            book.lock().len(),
            LOOKUPS_PER_TICK,
            "at most a few reads a tick"
        );
        book.refresh(store.as_ref(), keys(), 20, 1).await.unwrap();
        assert_eq!(
            book.lock().len(),
            names.len(),
            "the next tick reads the rest"
        );
        let fetched = |n: &str| book.lock()[&("t".to_string(), n.to_string())].fetched_at_ms;
        assert_eq!(fetched("j0"), 0, "fresh entries are not read again");
        book.refresh(store.as_ref(), keys(), 20, REFRESH_MS)
            .await
            .unwrap();
        assert_eq!(fetched("j0"), REFRESH_MS, "an old entry is read again");
        // Unused for FORGET_MS: dropped.
        book.refresh(
            store.as_ref(),
            std::iter::empty(),
            20,
            REFRESH_MS + FORGET_MS,
        )
        .await
        .unwrap();
        assert_eq!(book.lock().len(), 0);
        // runs = 0: no history is read.
        book.refresh(store.as_ref(), keys(), 0, 0).await.unwrap();
        assert_eq!(book.lock().len(), 0);
    }

    #[test]
    fn expected_is_the_history_capped_by_max_runtime_else_max_runtime() {
        let book = RuntimeBook::new();
        book.lock().insert(
            ("t".into(), "etl".into()),
            Entry {
                history_ms: Some(600_000),
                fetched_at_ms: 0,
                used_at_ms: 0,
            },
        );
        assert_eq!(book.expected_ms("t", "etl", None, 1), Some(600_000));
        assert_eq!(book.expected_ms("t", "etl", Some(60_000), 1), Some(60_000));
        assert_eq!(
            book.expected_ms("t", "etl", Some(3_600_000), 1),
            Some(600_000)
        );
        assert_eq!(book.expected_ms("t", "other", Some(5), 1), Some(5));
        assert_eq!(book.expected_ms("u", "etl", None, 1), None);
    }
}
