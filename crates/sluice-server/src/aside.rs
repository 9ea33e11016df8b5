//! Jobs the tick has set aside: a job whose state change could not be written (a store error on
//! that one job, not the database being down) or that the backend failed on is kept out of the
//! tick's steps for a back-off, with the reason, so one bad job never stops the others and is
//! not retried on every tick. Kept in memory: after a restart every job is tried again.

use std::collections::HashMap;
use std::sync::Mutex;

pub use sluice_api::SetAside;

/// The first back-off of a job set aside, in milliseconds; it doubles each time, up to
/// [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 5_000;
/// The longest back-off of a job set aside, in milliseconds.
pub const MAX_BACKOFF_MS: i64 = 300_000;

/// The jobs set aside, by id.
#[derive(Debug, Default)]
pub struct AsideBook {
    jobs: Mutex<HashMap<String, SetAside>>,
}

impl AsideBook {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SetAside>> {
        match self.jobs.lock() {
            Ok(g) => g,
            // Each write under this lock is one insert or remove: a panic cannot leave the map
            // half-changed.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Sets job `id` aside at `now_ms` for `reason`; returns the entry (its back-off doubles
    /// each time in a row).
    pub fn set_aside(&self, id: &str, reason: String, now_ms: i64) -> SetAside {
        let mut map = self.map();
        let times = map.get(id).map_or(1, |a| a.times.saturating_add(1));
        let shift = times.saturating_sub(1).min(16);
        let backoff = FIRST_BACKOFF_MS
            .saturating_mul(1_i64 << shift)
            .min(MAX_BACKOFF_MS);
        let entry = SetAside {
            reason,
            at_ms: now_ms,
            retry_at_ms: now_ms.saturating_add(backoff),
            times,
        };
        map.insert(id.to_string(), entry.clone());
        entry
    }

    /// Whether job `id` is set aside and its back-off has not ended at `now_ms`.
    pub fn is_held(&self, id: &str, now_ms: i64) -> bool {
        self.map().get(id).is_some_and(|a| now_ms < a.retry_at_ms)
    }

    /// The entry of job `id`, if it is set aside (or was, and has not been written since).
    pub fn get(&self, id: &str) -> Option<SetAside> {
        self.map().get(id).cloned()
    }

    /// Job `id` was written: it is no longer set aside.
    pub fn clear(&self, id: &str) {
        self.map().remove(id);
    }

    /// How many jobs are set aside.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no job is set aside.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_and_clears() {
        let book = AsideBook::default();
        let a = book.set_aside("j", "boom".into(), 1_000);
        assert_eq!((a.times, a.retry_at_ms), (1, 1_000 + FIRST_BACKOFF_MS));
        assert!(book.is_held("j", 1_000 + FIRST_BACKOFF_MS - 1));
        assert!(!book.is_held("j", 1_000 + FIRST_BACKOFF_MS));
        let a = book.set_aside("j", "boom".into(), 10_000);
        assert_eq!(a.retry_at_ms, 10_000 + 2 * FIRST_BACKOFF_MS);
        for _ in 0..40 {
            book.set_aside("j", "boom".into(), 0);
        }
        assert_eq!(book.get("j").unwrap().retry_at_ms, MAX_BACKOFF_MS);
        assert!(!book.is_held("other", 0));
        book.clear("j");
        assert!(book.get("j").is_none() && book.is_empty());
    }
}
