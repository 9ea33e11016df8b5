//! Time series over the job history: [`crate::Store::history`], and the hourly rollups that make
//! long ranges cheap: [`crate::Store::roll_up_history`].
//!
//! # What is computed
//!
//! - A job *waits* over `[enqueued_at, COALESCE(admitted_at, dequeued_at))` and *holds* its
//!   demand (`cpu_milli`, `mem_mib`) over `[admitted_at, finished_at)`; an open end means
//!   "still".
//! - Inside the range only the starts and ends of those intervals are counted, per bucket, with
//!   the sums of their offsets into the bucket: from these and the level at the range's start
//!   (the *base*), the level at each bucket's end and its mean over the bucket follow exactly
//!   (the integral of a step function).
//! - Wait-time percentiles are exact (nearest rank) over the waits (`admitted_at - enqueued_at`)
//!   of the jobs admitted in each bucket; jobs finished are counted per terminal state.
//!
//! # Live: covering indexes on the jobs
//!
//! Migration `0003_history` keeps four covering indexes whose leading column is an hour of a time
//! column (`column / 3600000`), so a scan of a time range reads only the index entries of that
//! range and returns one row per (time unit, namespace, level). When the buckets are whole hours
//! starting on a whole hour the database groups by hour, the order of the indexes (no sort), and
//! the hours are added up into buckets here; otherwise it groups by bucket (sorting the rows of
//! the range). Both give the same answer. Computed this way alone (when nothing is rolled up),
//! the base is counted from the same scans (intervals that started before the range and ended
//! in it) plus those that end after the range or have not ended. The cost follows the number of
//! jobs in the range.
//!
//! # Rollups: one row per closed hour and series
//!
//! Migration `0004_history_rollups` adds `history_hours`: for each hour before
//! `history_rollup.next_hour` and each (namespace, level) with anything in that hour or anything
//! waiting or held at its end, exactly the sums the hour-grouped scans return for that hour
//! (counts, offset sums, finished by state, and the hour's waits, sorted: the percentiles stay
//! exact), packed as one text, plus the levels at the hour's end as columns.
//! [`crate::Store::roll_up_history`] writes them for hours that ended before `now_ms` minus
//! [`ROLL_UP_MARGIN_MS`], at most [`ROLL_UP_HOURS`] hours (of history with jobs in it) per call,
//! each hour's levels carried from the previous hour's by exact counts (jobs whose times are out
//! of order included, through two partial indexes that are normally empty).
//!
//! A query then reads, for every whole hour of its range that is rolled up and falls inside one
//! bucket, that hour's rollup row (the database joins the rows of each series into one text, so
//! a month is a few rows to fetch, not 720 per series); for the rest (a partial first hour, hours
//! that a bucket boundary cuts when buckets are not whole hours, hours not yet rolled up) it
//! scans the jobs as above; and it takes the base from the rollup levels at the end of the hour
//! before `from`, plus a scan of `[that hour's end, from)` when `from` is not on a whole hour.
//! The answer is the same as computed live (the conformance suite checks it on random jobs):
//! the sums are the same sums, only grouped differently, and they are whole numbers (ms offsets,
//! times cpu or mem) far below 2^53, so adding them in another order gives the same
//! floating-point value. The cost follows the number of hours and series in the range, not the
//! number of jobs.
//!
//! # Writes into hours already rolled up
//!
//! The store takes times from callers (tests, backfills, a requeue of an old dead letter, a job
//! sent back to its queue hours after it was admitted, a purge): triggers on `jobs` (migration
//! 0004) record, in the writing transaction, the earliest hour a change touches when it is
//! before `next_hour` (table `history_stale`). Queries use rollups only before the earliest
//! stale hour; the next roll-up deletes the rows from there on and rolls those hours again. So
//! purged jobs leave the history, rollups included: the history is always that of the jobs the
//! store holds.
//!
//! On PostgreSQL several servers may roll up at once: a roll-up takes a transaction-level
//! advisory lock exclusively and every write that changes a history column takes it shared (in
//! the trigger), so a roll-up never reads the jobs while such a write is in flight, and a later
//! write sees the hours the roll-up committed. SQLite has one writer at a time.
//!
//! The queries of a history run in one read transaction (a snapshot on both databases), so the
//! series agree with each other even while jobs move and hours are rolled up.
//!
//! Layout, from the bottom up: `model` (the public query and series), `scan` (the range scans
//! and their accumulators), `rollup` (writing and reading the hourly rollups), `read` (a
//! history from both).

mod model;
mod read;
mod rollup;
mod scan;

pub use model::{HistoryPoint, HistoryQuery, HistorySeries, MAX_BUCKETS};
pub(crate) use read::history;
pub use rollup::{ROLL_UP_HOURS, ROLL_UP_MARGIN_MS, RollUp};
pub(crate) use rollup::{roll_up, roll_up_done};

#[cfg(test)]
mod tests;
