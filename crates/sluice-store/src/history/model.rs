//! The public types of a history: the query, and the series and points it returns.

use std::collections::BTreeMap;

use sluice_core::job::JobState;

use crate::error::StoreError;

/// The most buckets one [`HistoryQuery`] may ask for.
pub const MAX_BUCKETS: i64 = 10_000;

/// What [`crate::Store::history`] computes: buckets of `step_ms` from `from_ms` on, up to
/// `to_ms` (the last bucket is whole: the range is extended to a multiple of the step), for
/// every namespace and level, or only the ones named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Start of the first bucket (inclusive).
    pub from_ms: i64,
    /// End of the range (exclusive); rounded up to a whole bucket.
    pub to_ms: i64,
    /// Bucket width, at least 1 ms.
    pub step_ms: i64,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this level.
    pub level: Option<String>,
}

impl HistoryQuery {
    /// The number of buckets, or [`StoreError::BadQuery`] naming the field at fault: the step
    /// must be positive, `to_ms` after `from_ms`, and there may be at most [`MAX_BUCKETS`].
    pub fn buckets(&self) -> Result<usize, StoreError> {
        if self.step_ms <= 0 {
            return Err(StoreError::BadQuery(format!(
                "step must be positive, got {} ms",
                self.step_ms
            )));
        }
        if self.to_ms <= self.from_ms {
            return Err(StoreError::BadQuery(format!(
                "the range must end after it starts: from = {} ms, to = {} ms",
                self.from_ms, self.to_ms
            )));
        }
        let span = i128::from(self.to_ms) - i128::from(self.from_ms);
        let step = i128::from(self.step_ms);
        let n = (span + step - 1) / step;
        if n > i128::from(MAX_BUCKETS) {
            return Err(StoreError::BadQuery(format!(
                "{n} buckets of {} ms between from and to; at most {MAX_BUCKETS}: use a larger step \
                 or a shorter range",
                self.step_ms
            )));
        }
        // n <= MAX_BUCKETS, so it fits.
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// The series of one namespace and level: one [`HistoryPoint`] per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySeries {
    /// The namespace.
    pub namespace: String,
    /// The priority level.
    pub level: String,
    /// One point per bucket, oldest first.
    pub points: Vec<HistoryPoint>,
}

/// One bucket `[start, start + step)` of a [`HistorySeries`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPoint {
    /// Jobs waiting in the queue at the end of the bucket.
    pub queued: u64,
    /// Mean number of jobs waiting over the bucket.
    pub queued_avg: f64,
    /// Jobs that entered the queue in the bucket.
    pub enqueued: u64,
    /// Jobs admitted in the bucket.
    pub admitted: u64,
    /// Median wait (enqueued to admitted) of the jobs admitted in the bucket, in ms.
    pub wait_p50_ms: Option<i64>,
    /// 90th percentile (nearest rank) of those waits, in ms.
    pub wait_p90_ms: Option<i64>,
    /// 99th percentile (nearest rank) of those waits, in ms.
    pub wait_p99_ms: Option<i64>,
    /// Longest of those waits, in ms.
    pub wait_max_ms: Option<i64>,
    /// Mean of those waits, in ms.
    pub wait_mean_ms: Option<f64>,
    /// Jobs that ended in the bucket, by terminal state.
    pub finished: BTreeMap<JobState, u64>,
    /// Jobs holding resources (admitted, submitted or running) at the end of the bucket.
    pub active: u64,
    /// Mean number of jobs holding resources over the bucket.
    pub active_avg: f64,
    /// CPU requested by the jobs holding resources at the end of the bucket, in millicores.
    pub cpu_milli: u64,
    /// Mean CPU requested by jobs holding resources over the bucket, in millicores.
    pub cpu_milli_avg: f64,
    /// Memory requested by the jobs holding resources at the end of the bucket, in MiB.
    pub mem_mib: u64,
    /// Mean memory requested by jobs holding resources over the bucket, in MiB.
    pub mem_mib_avg: f64,
}
