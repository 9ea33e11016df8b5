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

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::job::JobState;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::StoreError;
use crate::sql::Backend;

mod rollup;
pub use rollup::{ROLL_UP_HOURS, ROLL_UP_MARGIN_MS, RollUp};
pub(crate) use rollup::{roll_up, roll_up_done};

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

/// Starts or ends of intervals in one bucket: counts and weights, and the sums of their
/// offsets into the bucket (weighted), for the integral.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moves {
    n: i64,
    cpu: i64,
    mem: i64,
    off_n: f64,
    off_cpu: f64,
    off_mem: f64,
}

impl Moves {
    fn add(&mut self, o: &Moves) {
        self.n += o.n;
        self.cpu += o.cpu;
        self.mem += o.mem;
        self.off_n += o.off_n;
        self.off_cpu += o.off_cpu;
        self.off_mem += o.off_mem;
    }

    /// These moves, read with offsets into a unit that starts `shift` ms after its bucket,
    /// with offsets into the bucket.
    fn shifted(mut self, shift: i64) -> Moves {
        let shift = shift as f64;
        self.off_n += self.n as f64 * shift;
        self.off_cpu += self.cpu as f64 * shift;
        self.off_mem += self.mem as f64 * shift;
        self
    }
}

/// The terminal states, in the order of the rollup columns `s_succeeded`, `s_failed`,
/// `s_cancelled` (a unit test checks that these are all of them).
const TERMINAL: [JobState; 3] = [JobState::Succeeded, JobState::Failed, JobState::Cancelled];

/// The sums of one time unit (an hour or a bucket) and one (namespace, level), as a range scan
/// returns them or a rollup row holds them.
#[derive(Debug, Clone, Default)]
struct UnitAgg {
    /// Entered the queue.
    enq: Moves,
    /// Left the queue (admitted, or cancelled or expired while waiting).
    left: Moves,
    /// Admitted: the start of holding.
    adm: Moves,
    /// The waits of the jobs admitted, in ms.
    waits: Vec<i64>,
    /// Ended, in any state.
    fin_n: i64,
    /// Ended, by terminal state ([`TERMINAL`] order).
    finished: [i64; 3],
    /// Ended while holding: the end of holding.
    rel: Moves,
    /// Live base: left the queue here, having entered it before the range.
    early_q: i64,
    /// Live base: ended here, having been admitted before the range (count, cpu, mem).
    early_h: Moves,
    /// Roll-up: left the queue here, having entered it before the hour's end.
    out_q: i64,
    /// Roll-up: ended here, having been admitted before the hour's end (count, cpu, mem).
    out_h: Moves,
    /// Roll-up: entered the queue here, having left it before the hour (times out of order).
    back_q: i64,
    /// Roll-up: admitted here, having ended before the hour (times out of order).
    back_h: Moves,
}

impl UnitAgg {
    fn add(&mut self, o: UnitAgg) {
        self.enq.add(&o.enq);
        self.left.add(&o.left);
        self.adm.add(&o.adm);
        self.waits.extend(o.waits);
        self.fin_n += o.fin_n;
        for (a, b) in self.finished.iter_mut().zip(o.finished) {
            *a += b;
        }
        self.rel.add(&o.rel);
        self.early_q += o.early_q;
        self.early_h.add(&o.early_h);
        self.out_q += o.out_q;
        self.out_h.add(&o.out_h);
        self.back_q += o.back_q;
        self.back_h.add(&o.back_h);
    }

    /// Whether anything started or ended in the unit (what makes a range scan return a row).
    fn active(&self) -> bool {
        self.enq.n != 0 || self.left.n != 0 || self.fin_n != 0
    }
}

/// The jobs waiting and held at one instant: a level of the series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Level {
    queued: i64,
    n: i64,
    cpu: i64,
    mem: i64,
}

impl Level {
    fn is_zero(&self) -> bool {
        *self == Level::default()
    }
}

/// Everything read for one (namespace, level), before the levels are integrated.
#[derive(Debug, Default)]
struct Acc {
    queue_base: i64,
    queue_starts: Vec<Moves>,
    queue_ends: Vec<Moves>,
    held_base: Moves,
    held_starts: Vec<Moves>,
    held_ends: Vec<Moves>,
    waits: Vec<Vec<i64>>,
    finished: Vec<BTreeMap<JobState, u64>>,
}

impl Acc {
    fn new(buckets: usize) -> Self {
        Acc {
            queue_starts: vec![Moves::default(); buckets],
            queue_ends: vec![Moves::default(); buckets],
            held_starts: vec![Moves::default(); buckets],
            held_ends: vec![Moves::default(); buckets],
            waits: vec![Vec::new(); buckets],
            finished: vec![BTreeMap::new(); buckets],
            ..Default::default()
        }
    }

    /// Adds the sums of a unit that starts `shift` ms into bucket `b`.
    fn fold(&mut self, b: usize, shift: i64, u: UnitAgg) {
        self.queue_starts[b].add(&u.enq.shifted(shift));
        self.queue_ends[b].add(&u.left.shifted(shift));
        self.held_starts[b].add(&u.adm.shifted(shift));
        self.held_ends[b].add(&u.rel.shifted(shift));
        self.waits[b].extend(u.waits);
        for (s, n) in TERMINAL.iter().zip(u.finished) {
            if n > 0 {
                *self.finished[b].entry(*s).or_default() += nonneg(n);
            }
        }
        self.queue_base += u.early_q;
        self.held_base.add(&u.early_h);
    }
}

/// One hour in ms: the unit of the hour expressions of the history indexes.
const HOUR_MS: i64 = 3_600_000;

/// How rows are grouped in time. `Hours` when the buckets are whole hours from a whole hour:
/// the database groups by `column / 3600000`, which is the order of the indexes, so nothing is
/// sorted, and the hours are added up into buckets here. `Buckets` otherwise: the database
/// groups by bucket (sorting the rows of the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Units {
    Hours,
    Buckets,
}

/// Parameters `$1`.. of every range scan.
#[derive(Debug, Clone)]
struct Params {
    from: i64,
    to: i64,
    step: i64,
    /// Hours scanned (`$4` to `$5`; by default those of `from` and of the last ms of the
    /// range), and the hour of `to`.
    from_hour: i64,
    last_hour: i64,
    to_hour: i64,
    /// The namespace and level filters, bound as `$7` and `$8` when present.
    filters: Vec<String>,
    /// ` AND namespace = $7 ...`.
    filter_sql: String,
}

/// The SQL condition (` AND namespace = $N ...`, numbered from `$first`) and values of the
/// namespace and level filters of a query.
fn filters(q: &HistoryQuery, first: usize) -> (Vec<String>, String) {
    let mut values = Vec::new();
    let mut sql = String::new();
    for (column, value) in [("namespace", &q.namespace), ("level", &q.level)] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} = ${}", first + values.len()));
            values.push(v.clone());
        }
    }
    (values, sql)
}

impl Params {
    fn new(q: &HistoryQuery, to: i64) -> Params {
        let (filters, filter_sql) = filters(q, 7);
        Params {
            from: q.from_ms,
            to,
            step: q.step_ms,
            from_hour: q.from_ms.div_euclid(HOUR_MS),
            last_hour: (to - 1).div_euclid(HOUR_MS),
            to_hour: to.div_euclid(HOUR_MS),
            filters,
            filter_sql,
        }
    }

    /// The whole hours `[from_hour, to_hour)`, with no filter: what the roll-up scans.
    fn hours(from_hour: i64, to_hour: i64) -> Params {
        Params {
            from: from_hour * HOUR_MS,
            to: to_hour * HOUR_MS,
            step: HOUR_MS,
            from_hour,
            last_hour: to_hour - 1,
            to_hour,
            filters: Vec::new(),
            filter_sql: String::new(),
        }
    }
}

async fn fetch(
    conn: &mut AnyConnection,
    sql: String,
    p: &Params,
) -> Result<Vec<AnyRow>, StoreError> {
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(p.from)
        .bind(p.to)
        .bind(p.step)
        .bind(p.from_hour)
        .bind(p.last_hour)
        .bind(p.to_hour);
    for f in &p.filters {
        query = query.bind(f.clone());
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// The SQL pieces of one time column (`enqueued_at`, ...) for the range scans.
struct Col<'a> {
    units: Units,
    column: &'a str,
}

impl Col<'_> {
    /// The hour expression of the indexes (must match their text exactly).
    fn hour(&self) -> String {
        format!("{} / 3600000", self.column)
    }

    /// The unit a row falls in.
    fn unit(&self) -> String {
        match self.units {
            Units::Hours => self.hour(),
            Units::Buckets => format!("({} - $1) / $3", self.column),
        }
    }

    /// The row's offset into its unit, as a float.
    fn off(&self) -> String {
        let off = match self.units {
            Units::Hours => format!("{} % 3600000", self.column),
            Units::Buckets => format!("({} - $1) % $3", self.column),
        };
        format!("CAST({off} AS DOUBLE PRECISION)")
    }

    /// The GROUP BY of a range scan.
    fn group(&self) -> String {
        format!("{}, namespace, level", self.unit())
    }
}

type Key = (String, String);

fn entry(acc: &mut BTreeMap<Key, Acc>, k: Key, buckets: usize) -> &mut Acc {
    acc.entry(k).or_insert_with(|| Acc::new(buckets))
}

fn key(row: &AnyRow) -> Result<Key, StoreError> {
    Ok((row.try_get("namespace")?, row.try_get("level")?))
}

/// The bucket a unit falls in and how far into the bucket the unit starts.
fn place(u: i64, units: Units, p: &Params, buckets: usize) -> Result<(usize, i64), StoreError> {
    let unit_start = match units {
        Units::Hours => u.saturating_mul(HOUR_MS),
        Units::Buckets => p.from.saturating_add(u.saturating_mul(p.step)),
    };
    let b = (unit_start - p.from).div_euclid(p.step);
    let shift = unit_start - p.from - b * p.step;
    usize::try_from(b)
        .ok()
        .filter(|&b| b < buckets)
        .map(|b| (b, shift))
        .ok_or_else(|| StoreError::Corrupt(format!("history unit {u} out of range")))
}

/// A sum that the database may return as a float or, when every term was an integer (SQLite),
/// as an integer; NULL (no rows) is 0.
fn opt_f64(row: &AnyRow, column: &str) -> Result<f64, StoreError> {
    match row.try_get::<Option<f64>, _>(column) {
        Ok(v) => Ok(v.unwrap_or(0.0)),
        Err(_) => Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0) as f64),
    }
}

fn opt_i64(row: &AnyRow, column: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0))
}

/// `INDEXED BY name` on SQLite: without statistics its planner may pick another index (for
/// example one whose range condition reads the whole history before the range).
fn idx(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Sqlite => format!("INDEXED BY {name}"),
        Backend::Postgres => String::new(),
    }
}

/// The list of a group's waits as text: `a,b,c`.
fn waits_agg(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "group_concat(admitted_at - enqueued_at, ',')",
        Backend::Postgres => "string_agg(CAST(admitted_at - enqueued_at AS TEXT), ',')",
    }
}

fn parse_waits(text: &str, into: &mut Vec<i64>) -> Result<(), StoreError> {
    for w in text.split(',').filter(|w| !w.is_empty()) {
        into.push(w.trim().parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!("history: wait {w:?} is not a number of ms"))
        })?);
    }
    Ok(())
}

/// A time column of the jobs, with its history index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Enqueued,
    Admitted,
    /// Only the jobs that left the queue without being admitted (`admitted_at` equals
    /// `dequeued_at` when set).
    Dequeued,
    Finished,
}

impl Column {
    const ALL: [Column; 4] = [
        Column::Enqueued,
        Column::Admitted,
        Column::Dequeued,
        Column::Finished,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Enqueued => "enqueued_at",
            Column::Admitted => "admitted_at",
            Column::Dequeued => "dequeued_at",
            Column::Finished => "finished_at",
        }
    }

    fn index(self) -> &'static str {
        match self {
            Column::Enqueued => "jobs_hist_enqueued",
            Column::Admitted => "jobs_hist_admitted",
            Column::Dequeued => "jobs_hist_dequeued",
            Column::Finished => "jobs_hist_finished",
        }
    }

    /// The condition a row of its index meets (the dequeue index is partial).
    fn filter(self) -> &'static str {
        match self {
            Column::Dequeued => "admitted_at IS NULL AND ",
            _ => "",
        }
    }
}

/// Which hours a range scan reads: `$4` to `$5`, or a list (when buckets that are not whole
/// hours leave hours here and there to be read live).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hours {
    Between,
    List(Vec<i64>),
}

/// What a range scan sums besides the moves of each unit.
#[derive(Debug, Clone, Copy, Default)]
struct Extras {
    /// For the live base: what left the queue or ended in the unit having started before `$1`.
    early: bool,
    /// For the roll-up (hour units): what left the queue or ended in the hour having started
    /// before the hour's end.
    chain: bool,
}

/// Reads the starts or ends of one time column in the range (and hours) of `p`, one row per
/// (unit, namespace, level).
async fn scan(
    conn: &mut AnyConnection,
    backend: Backend,
    units: Units,
    p: &Params,
    hours: &Hours,
    column: Column,
    x: Extras,
) -> Result<Vec<(i64, Key, UnitAgg)>, StoreError> {
    let name = column.name();
    let c = Col {
        units,
        column: name,
    };
    let h = c.hour();
    let off = c.off();
    let hour_cond = match hours {
        Hours::Between => format!("{h} >= $4 AND {h} <= $5"),
        Hours::List(list) => {
            let list: Vec<String> = list.iter().map(i64::to_string).collect();
            format!("{h} IN ({})", list.join(", "))
        }
    };
    // The end of the row's hour, for the roll-up's levels.
    let end = format!("({h} + 1) * 3600000");
    let sum_if = |cond: &str, v: &str, alias: &str| {
        format!(", CAST(SUM(CASE WHEN {cond} THEN {v} ELSE 0 END) AS BIGINT) AS {alias}")
    };
    let mut sums = String::new();
    match column {
        Column::Enqueued => sums.push_str(&format!("COUNT(*) AS n, SUM({off}) AS off_n")),
        Column::Admitted => {
            sums.push_str(&format!(
                "COUNT(*) AS n, {waits} AS waits, \
                 CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem, \
                 SUM({off}) AS off_n, SUM(CAST(cpu_milli AS DOUBLE PRECISION) * {off}) AS off_cpu, \
                 SUM(CAST(mem_mib AS DOUBLE PRECISION) * {off}) AS off_mem",
                waits = waits_agg(backend)
            ));
        }
        Column::Dequeued => sums.push_str(&format!("COUNT(*) AS n, SUM({off}) AS off_n")),
        Column::Finished => {
            sums.push_str("COUNT(*) AS fin_n");
            for s in TERMINAL {
                sums.push_str(&sum_if(
                    &format!("state = '{}'", s.as_str()),
                    "1",
                    &format!("s_{}", s.as_str()),
                ));
            }
            let held = "admitted_at IS NOT NULL";
            sums.push_str(&sum_if(held, "1", "rel_n"));
            sums.push_str(&sum_if(held, "cpu_milli", "rel_cpu"));
            sums.push_str(&sum_if(held, "mem_mib", "rel_mem"));
            sums.push_str(&format!(
                ", SUM(CASE WHEN {held} THEN {off} ELSE 0.0 END) AS off_n, \
                 SUM(CASE WHEN {held} THEN CAST(cpu_milli AS DOUBLE PRECISION) * {off} ELSE 0.0 END) \
                 AS off_cpu, \
                 SUM(CASE WHEN {held} THEN CAST(mem_mib AS DOUBLE PRECISION) * {off} ELSE 0.0 END) \
                 AS off_mem"
            ));
        }
    }
    let (start, weights) = match column {
        Column::Finished => ("admitted_at", true),
        _ => ("enqueued_at", false),
    };
    if column != Column::Enqueued {
        for (on, cond, prefix) in [
            (x.early, format!("{start} < $1"), "early"),
            (x.chain, format!("{start} < {end}"), "out"),
        ] {
            if !on {
                continue;
            }
            if weights {
                sums.push_str(&sum_if(&cond, "1", &format!("{prefix}_n")));
                sums.push_str(&sum_if(&cond, "cpu_milli", &format!("{prefix}_cpu")));
                sums.push_str(&sum_if(&cond, "mem_mib", &format!("{prefix}_mem")));
            } else {
                sums.push_str(&sum_if(&cond, "1", &format!("{prefix}_q")));
            }
        }
    }
    let sql = format!(
        "SELECT namespace, level, {u} AS u, {sums} FROM jobs {idx} \
         WHERE {filter}{hour_cond} AND {name} >= $1 AND {name} < $2{fs} GROUP BY {group}",
        u = c.unit(),
        idx = idx(backend, column.index()),
        filter = column.filter(),
        fs = p.filter_sql,
        group = c.group(),
    );
    // Column names, made once rather than for every row.
    let names = |prefix: &str| ["n", "cpu", "mem"].map(|s| format!("{prefix}_{s}"));
    let (rel_names, early_names, out_names) = (names("rel"), names("early"), names("out"));
    let states = TERMINAL.map(|s| format!("s_{}", s.as_str()));
    let weighted = |row: &AnyRow, names: &[String; 3]| -> Result<Moves, StoreError> {
        Ok(Moves {
            n: opt_i64(row, &names[0])?,
            cpu: opt_i64(row, &names[1])?,
            mem: opt_i64(row, &names[2])?,
            ..Default::default()
        })
    };
    let rows = fetch(conn, sql, p).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let u: i64 = row.try_get("u")?;
        let mut a = UnitAgg::default();
        match column {
            Column::Enqueued => {
                a.enq = Moves {
                    n: row.try_get("n")?,
                    off_n: opt_f64(&row, "off_n")?,
                    ..Default::default()
                };
            }
            Column::Admitted => {
                a.adm = Moves {
                    n: row.try_get("n")?,
                    cpu: opt_i64(&row, "cpu")?,
                    mem: opt_i64(&row, "mem")?,
                    off_n: opt_f64(&row, "off_n")?,
                    off_cpu: opt_f64(&row, "off_cpu")?,
                    off_mem: opt_f64(&row, "off_mem")?,
                };
                a.left = Moves {
                    n: a.adm.n,
                    off_n: a.adm.off_n,
                    ..Default::default()
                };
                let waits: Option<String> = row.try_get("waits")?;
                parse_waits(waits.as_deref().unwrap_or_default(), &mut a.waits)?;
            }
            Column::Dequeued => {
                a.left = Moves {
                    n: row.try_get("n")?,
                    off_n: opt_f64(&row, "off_n")?,
                    ..Default::default()
                };
            }
            Column::Finished => {
                a.fin_n = row.try_get("fin_n")?;
                for (count, name) in a.finished.iter_mut().zip(&states) {
                    *count = opt_i64(&row, name)?;
                }
                a.rel = Moves {
                    off_n: opt_f64(&row, "off_n")?,
                    off_cpu: opt_f64(&row, "off_cpu")?,
                    off_mem: opt_f64(&row, "off_mem")?,
                    ..weighted(&row, &rel_names)?
                };
            }
        }
        if column != Column::Enqueued {
            if x.early {
                match weights {
                    true => a.early_h = weighted(&row, &early_names)?,
                    false => a.early_q = opt_i64(&row, "early_q")?,
                }
            }
            if x.chain {
                match weights {
                    true => a.out_h = weighted(&row, &out_names)?,
                    false => a.out_q = opt_i64(&row, "out_q")?,
                }
            }
        }
        out.push((u, key(&row)?, a));
    }
    Ok(out)
}

/// How the levels (jobs waiting; jobs, cpu and mem held) change from `lo` to `hi`, per
/// (namespace, level) of `filters` (bound from `$5`): for `lo` = `i64::MIN`, the levels at
/// `hi`. Exact whatever the order of a job's times:
///
/// - waiting: + entered in `[lo, hi)`; - left in `[lo, hi)` having entered before `hi`;
///   - entered in `[lo, hi)` having left before `lo`;
/// - held: + admitted in `[lo, hi)`; - ended in `[lo, hi)` having been admitted before `hi`;
///   - admitted in `[lo, hi)` having ended before `lo`.
///
/// Reads only the index entries of `[lo, hi)` (the last two kinds from partial indexes that
/// are normally empty).
async fn level_shift(
    conn: &mut AnyConnection,
    backend: Backend,
    lo: i64,
    hi: i64,
    filter_values: &[String],
    filter_sql: &str,
) -> Result<BTreeMap<Key, Level>, StoreError> {
    let range = |column: Column| {
        let c = column.name();
        format!(
            "{f}{c} / 3600000 >= $3 AND {c} / 3600000 <= $4 AND {c} >= $1 AND {c} < $2",
            f = column.filter()
        )
    };
    let part = |q: &str, held: &str, index: &str, cond: String| {
        format!(
            "SELECT namespace, level, CAST({q} AS BIGINT) AS q, {held} \
             FROM jobs {idx} WHERE {cond}{filter_sql} GROUP BY namespace, level",
            idx = idx(backend, index),
        )
    };
    let none = "CAST(0 AS BIGINT) AS n, CAST(0 AS BIGINT) AS cpu, CAST(0 AS BIGINT) AS mem";
    let plus = "CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(cpu_milli) AS BIGINT) AS cpu, \
                CAST(SUM(mem_mib) AS BIGINT) AS mem";
    let minus = "CAST(-COUNT(*) AS BIGINT) AS n, CAST(-SUM(cpu_milli) AS BIGINT) AS cpu, \
                 CAST(-SUM(mem_mib) AS BIGINT) AS mem";
    let left = "COALESCE(admitted_at, dequeued_at)";
    let parts = [
        part(
            "COUNT(*)",
            none,
            Column::Enqueued.index(),
            range(Column::Enqueued),
        ),
        part(
            "-SUM(CASE WHEN enqueued_at < $2 THEN 1 ELSE 0 END)",
            plus,
            Column::Admitted.index(),
            range(Column::Admitted),
        ),
        part(
            "-COUNT(*)",
            none,
            Column::Dequeued.index(),
            format!("{} AND enqueued_at < $2", range(Column::Dequeued)),
        ),
        part(
            "0",
            minus,
            Column::Finished.index(),
            format!("{} AND admitted_at < $2", range(Column::Finished)),
        ),
        part(
            "-COUNT(*)",
            none,
            "jobs_hist_left_early",
            format!(
                "{} AND enqueued_at > {left} AND {left} < $1",
                range(Column::Enqueued)
            ),
        ),
        part(
            "0",
            minus,
            "jobs_hist_ended_early",
            format!(
                "{} AND finished_at < admitted_at AND finished_at < $1",
                range(Column::Admitted)
            ),
        ),
    ];
    let mut query = sqlx::query(AssertSqlSafe(parts.join(" UNION ALL ")))
        .bind(lo)
        .bind(hi)
        .bind(lo.div_euclid(HOUR_MS))
        .bind((hi - 1).div_euclid(HOUR_MS));
    for f in filter_values {
        query = query.bind(f.clone());
    }
    let mut levels: BTreeMap<Key, Level> = BTreeMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let l = levels.entry(key(&row)?).or_default();
        l.queued += opt_i64(&row, "q")?;
        l.n += opt_i64(&row, "n")?;
        l.cpu += opt_i64(&row, "cpu")?;
        l.mem += opt_i64(&row, "mem")?;
    }
    Ok(levels)
}

/// Reads the history; see the module documentation. `conn` should be in a read transaction.
pub(crate) async fn history(
    conn: &mut AnyConnection,
    backend: Backend,
    q: &HistoryQuery,
) -> Result<Vec<HistorySeries>, StoreError> {
    let buckets = q.buckets()?;
    // buckets <= MAX_BUCKETS and the step is positive; saturate rather than wrap.
    let to = q
        .from_ms
        .saturating_add(q.step_ms.saturating_mul(buckets as i64));
    let p = Params::new(q, to);
    let units = if q.from_ms.rem_euclid(HOUR_MS) == 0 && q.step_ms % HOUR_MS == 0 {
        Units::Hours
    } else {
        Units::Buckets
    };
    // Rollups serve when the levels at the start of the hour of `from` are rolled up.
    let rolled = rollup::coverage(conn).await?;
    let acc = match rolled {
        Some(next) if p.from_hour > rollup::FIRST_HOUR && p.from_hour <= next => {
            with_rollups(conn, backend, q, &p, units, buckets, next).await?
        }
        _ => live(conn, backend, &p, units, buckets).await?,
    };
    Ok(acc
        .into_iter()
        .map(|((namespace, level), mut a)| HistorySeries {
            namespace,
            level,
            points: integrate(&mut a, buckets, p.step),
        })
        .collect())
}

/// Everything from the jobs: the four range scans, with the base counted from what started
/// before the range and ended in it or after it (or not yet).
async fn live(
    conn: &mut AnyConnection,
    backend: Backend,
    p: &Params,
    units: Units,
    buckets: usize,
) -> Result<BTreeMap<Key, Acc>, StoreError> {
    let mut acc: BTreeMap<Key, Acc> = BTreeMap::new();
    let early = Extras {
        early: true,
        chain: false,
    };
    for column in Column::ALL {
        for (u, k, a) in scan(conn, backend, units, p, &Hours::Between, column, early).await? {
            let (b, shift) = place(u, units, p, buckets)?;
            entry(&mut acc, k, buckets).fold(b, shift, a);
        }
    }

    // Waiting or holding at the start and still so at the end of the range (or now). For the
    // usual range ("the last N days") these read only what happened after it: nothing, or the
    // jobs waiting and running now. ($3 and $5 are mentioned, trivially true, so that every
    // statement binds the same parameters on both databases.)
    let fs = &p.filter_sql;
    let sql = format!(
        "SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {adm_idx} WHERE admitted_at / 3600000 >= $6 AND admitted_at >= $2 \
           AND enqueued_at < $1 AND $3 > 0 AND $5 >= $4{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {deq_idx} WHERE admitted_at IS NULL AND dequeued_at / 3600000 >= $6 \
           AND dequeued_at >= $2 AND enqueued_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {deq_idx} WHERE admitted_at IS NULL AND dequeued_at / 3600000 IS NULL \
           AND enqueued_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'h' AS kind, namespace, level, COUNT(*) AS n, \
           CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {fin_idx} WHERE finished_at / 3600000 >= $6 AND finished_at >= $2 \
           AND admitted_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'h' AS kind, namespace, level, COUNT(*) AS n, \
           CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {fin_idx} WHERE finished_at / 3600000 IS NULL AND admitted_at < $1{fs} \
         GROUP BY namespace, level",
        adm_idx = idx(backend, Column::Admitted.index()),
        deq_idx = idx(backend, Column::Dequeued.index()),
        fin_idx = idx(backend, Column::Finished.index()),
    );
    for row in fetch(conn, sql, p).await? {
        let kind: String = row.try_get("kind")?;
        let m = Moves {
            n: row.try_get("n")?,
            cpu: opt_i64(&row, "cpu")?,
            mem: opt_i64(&row, "mem")?,
            ..Default::default()
        };
        let a = entry(&mut acc, key(&row)?, buckets);
        if kind == "q" {
            a.queue_base += m.n;
        } else {
            a.held_base.add(&m);
        }
    }
    Ok(acc)
}

/// Rolled-up hours from their rollup rows, the rest from the jobs, and the base from the rollup
/// levels at the end of the hour before `from` (rolled up: `next` is after it).
async fn with_rollups(
    conn: &mut AnyConnection,
    backend: Backend,
    q: &HistoryQuery,
    p: &Params,
    units: Units,
    buckets: usize,
    next: i64,
) -> Result<BTreeMap<Key, Acc>, StoreError> {
    let (from, to, step) = (p.from, p.to, p.step);
    let first_whole = from.div_euclid(HOUR_MS) + i64::from(from.rem_euclid(HOUR_MS) != 0);
    let last_rolled = (to.div_euclid(HOUR_MS) - 1).min(next - 1);
    // Rolled-up hours inside one bucket come from their rows; the others are scanned: the
    // partial hour of `from` (before `first_whole`), those after `last_rolled`, and those that
    // a bucket boundary cuts in two.
    let mut cut = BTreeSet::new();
    for k in 1..buckets as i64 {
        let t = from.saturating_add(k.saturating_mul(step));
        if t.rem_euclid(HOUR_MS) != 0 {
            let h = t.div_euclid(HOUR_MS);
            if h >= first_whole && h <= last_rolled {
                cut.insert(h);
            }
        }
    }
    let mut list: Vec<i64> = (p.from_hour..first_whole.min(p.last_hour + 1)).collect();
    list.extend(cut.iter().copied());
    let mut pieces = Vec::new();
    if !list.is_empty() {
        pieces.push((p.clone(), Hours::List(list)));
    }
    let tail = (last_rolled + 1).max(first_whole);
    if tail <= p.last_hour {
        let piece = Params {
            from_hour: tail,
            ..p.clone()
        };
        pieces.push((piece, Hours::Between));
    }

    let mut acc: BTreeMap<Key, Acc> = BTreeMap::new();
    if first_whole <= last_rolled {
        let (values, sql) = filters(q, 3);
        for (hour, k, a) in
            rollup::read_hours(conn, backend, first_whole, last_rolled, &values, &sql).await?
        {
            if a.active() && !cut.contains(&hour) {
                let (b, shift) = place(hour, Units::Hours, p, buckets)?;
                entry(&mut acc, k, buckets).fold(b, shift, a);
            }
        }
    }
    for (piece, hours) in &pieces {
        for column in Column::ALL {
            let found = scan(
                conn,
                backend,
                units,
                piece,
                hours,
                column,
                Extras::default(),
            )
            .await?;
            for (u, k, a) in found {
                let (b, shift) = place(u, units, p, buckets)?;
                entry(&mut acc, k, buckets).fold(b, shift, a);
            }
        }
    }

    // The base: the levels at the end of the hour before `from`'s, and how they changed from
    // there to `from`. A series counts (as computed live) if anything happened in the range or
    // anything waited or was held all along, which is then its base.
    let (values, sql) = filters(q, 2);
    let mut base = rollup::read_levels(conn, p.from_hour - 1, &values, &sql).await?;
    let hour_start = p.from_hour * HOUR_MS;
    if from > hour_start {
        let (values, sql) = filters(q, 5);
        for (k, d) in level_shift(conn, backend, hour_start, from, &values, &sql).await? {
            let l = base.entry(k).or_default();
            l.queued += d.queued;
            l.n += d.n;
            l.cpu += d.cpu;
            l.mem += d.mem;
        }
    }
    for (k, l) in base {
        if l.queued != 0 || l.n != 0 || acc.contains_key(&k) {
            let a = entry(&mut acc, k, buckets);
            a.queue_base = l.queued;
            a.held_base = Moves {
                n: l.n,
                cpu: l.cpu,
                mem: l.mem,
                ..Default::default()
            };
        }
    }
    Ok(acc)
}

/// The held level (count, cpu, mem) walked through the buckets.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    n: i64,
    cpu: i64,
    mem: i64,
}

/// The mean of a step function over a bucket of width `step` that starts at `level`, with
/// intervals starting (`s`) and ending (`e`) inside it; `off` are the sums of the offsets of
/// those moves into the bucket (each start adds `step - offset` to the integral, each end
/// takes it away).
fn mean(level: i64, s: i64, s_off: f64, e: i64, e_off: f64, step: i64) -> f64 {
    let step = step as f64;
    let integral = level as f64 * step + (s as f64 * step - s_off) - (e as f64 * step - e_off);
    (integral / step).max(0.0)
}

fn nonneg(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Nearest-rank percentile `pct` of sorted, non-empty `v`.
fn nearest_rank(v: &[i64], pct: usize) -> Option<i64> {
    let k = (v.len() * pct).div_ceil(100).max(1);
    v.get(k - 1).copied()
}

fn integrate(a: &mut Acc, buckets: usize, step: i64) -> Vec<HistoryPoint> {
    let mut queued = a.queue_base;
    let mut held = Held {
        n: a.held_base.n,
        cpu: a.held_base.cpu,
        mem: a.held_base.mem,
    };
    let mut points = Vec::with_capacity(buckets);
    for b in 0..buckets {
        let (qs, qe) = (&a.queue_starts[b], &a.queue_ends[b]);
        let (hs, he) = (&a.held_starts[b], &a.held_ends[b]);
        let w = &mut a.waits[b];
        w.sort_unstable();
        let point = HistoryPoint {
            queued_avg: mean(queued, qs.n, qs.off_n, qe.n, qe.off_n, step),
            active_avg: mean(held.n, hs.n, hs.off_n, he.n, he.off_n, step),
            cpu_milli_avg: mean(held.cpu, hs.cpu, hs.off_cpu, he.cpu, he.off_cpu, step),
            mem_mib_avg: mean(held.mem, hs.mem, hs.off_mem, he.mem, he.off_mem, step),
            enqueued: nonneg(qs.n),
            admitted: w.len() as u64,
            wait_p50_ms: nearest_rank(w, 50),
            wait_p90_ms: nearest_rank(w, 90),
            wait_p99_ms: nearest_rank(w, 99),
            wait_max_ms: w.last().copied(),
            wait_mean_ms: (!w.is_empty())
                .then(|| w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64),
            finished: std::mem::take(&mut a.finished[b]),
            ..Default::default()
        };
        queued += qs.n - qe.n;
        held.n += hs.n - he.n;
        held.cpu += hs.cpu - he.cpu;
        held.mem += hs.mem - he.mem;
        points.push(HistoryPoint {
            queued: nonneg(queued),
            active: nonneg(held.n),
            cpu_milli: nonneg(held.cpu),
            mem_mib: nonneg(held.mem),
            ..point
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
