//! Time series over the job history: [`crate::Store::history`].
//!
//! Every series is computed from the `jobs` table over four covering indexes whose leading
//! column is an hour of a time column (migration `0003_history`), so a query reads only the
//! index entries of its range and returns a few rows per hour or bucket, however long the
//! history is:
//!
//! - a job *waits* over `[enqueued_at, dequeued_at)` and *holds* its demand (`cpu_milli`,
//!   `mem_mib`) over `[admitted_at, finished_at)`; an open end means "still";
//! - inside the range only the starts and ends of those intervals are read, grouped by time
//!   unit, with the sums of their offsets into the unit: from these the level at each bucket's
//!   end and its mean over the bucket follow exactly (the integral of a step function). The
//!   level at the range's start (the *base*) is counted from the same scans (intervals that
//!   started before the range and ended in it) plus those that end after the range or have not
//!   ended, which for the usual range ("the last N days") are only the jobs waiting or running
//!   now;
//! - wait-time percentiles are exact (nearest rank): the database returns each group's waits
//!   (`admitted_at - enqueued_at`) as one text list and they are sorted here per bucket;
//! - jobs finished are counted per terminal state.
//!
//! When the buckets are whole hours starting on a whole hour, the database groups by hour, which
//! is the order of the indexes (no sort), and hours are added up into buckets here; otherwise it
//! groups by bucket (sorting the rows of the range). Both give the same answer (the conformance
//! suite checks one against the other).
//!
//! The queries run in one read transaction (a snapshot on both databases), so the series agree
//! with each other even while jobs move.

use std::collections::BTreeMap;

use sluice_core::job::JobState;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::StoreError;
use crate::sql::Backend;

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
#[derive(Debug, Clone, Copy, Default)]
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

/// Parameters `$1`.. of every history statement.
struct Params {
    from: i64,
    to: i64,
    step: i64,
    /// Hour of `from`, of the last ms of the range, and of `to`.
    from_hour: i64,
    last_hour: i64,
    to_hour: i64,
    /// The namespace and level filters, bound as `$7` and `$8` when present.
    filters: Vec<String>,
    /// ` AND namespace = $7 ...`.
    filter_sql: String,
}

impl Params {
    fn new(q: &HistoryQuery, to: i64) -> Params {
        let mut filters = Vec::new();
        let mut filter_sql = String::new();
        for (column, value) in [("namespace", &q.namespace), ("level", &q.level)] {
            if let Some(v) = value {
                filters.push(v.clone());
                filter_sql.push_str(&format!(" AND {column} = ${}", 6 + filters.len()));
            }
        }
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

    /// Rows whose time is in the range, by the hour index.
    fn in_range(&self) -> String {
        let c = self.column;
        format!(
            "{h} >= $4 AND {h} <= $5 AND {c} >= $1 AND {c} < $2",
            h = self.hour()
        )
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

/// The bucket a row's unit falls in and how far into the bucket the unit starts.
fn place(
    row: &AnyRow,
    units: Units,
    p: &Params,
    buckets: usize,
) -> Result<(usize, i64), StoreError> {
    let u: i64 = row.try_get("u")?;
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
    let col = |column| Col { units, column };
    let fs = &p.filter_sql;
    let mut acc: BTreeMap<Key, Acc> = BTreeMap::new();

    // Entered the queue in the range.
    let c = col("enqueued_at");
    let sql = format!(
        "SELECT namespace, level, {u} AS u, COUNT(*) AS n, SUM({off}) AS off_n \
         FROM jobs {idx} WHERE {range}{fs} GROUP BY {group}",
        u = c.unit(),
        off = c.off(),
        idx = idx(backend, "jobs_hist_enqueued"),
        range = c.in_range(),
        group = c.group(),
    );
    for row in fetch(conn, sql, &p).await? {
        let (b, shift) = place(&row, units, &p, buckets)?;
        let m = Moves {
            n: row.try_get("n")?,
            off_n: opt_f64(&row, "off_n")?,
            ..Default::default()
        };
        entry(&mut acc, key(&row)?, buckets).queue_starts[b].add(&m.shifted(shift));
    }

    // Admitted in the range: the waits, the end of waiting, the start of holding; and those
    // that were already waiting at the start.
    let c = col("admitted_at");
    let sql = format!(
        "SELECT namespace, level, {u} AS u, COUNT(*) AS n, {waits} AS waits, \
         CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem, \
         SUM({off}) AS off_n, SUM(CAST(cpu_milli AS DOUBLE PRECISION) * {off}) AS off_cpu, \
         SUM(CAST(mem_mib AS DOUBLE PRECISION) * {off}) AS off_mem, \
         CAST(SUM(CASE WHEN enqueued_at < $1 THEN 1 ELSE 0 END) AS BIGINT) AS early \
         FROM jobs {idx} WHERE {range}{fs} GROUP BY {group}",
        u = c.unit(),
        waits = waits_agg(backend),
        off = c.off(),
        idx = idx(backend, "jobs_hist_admitted"),
        range = c.in_range(),
        group = c.group(),
    );
    for row in fetch(conn, sql, &p).await? {
        let (b, shift) = place(&row, units, &p, buckets)?;
        let m = Moves {
            n: row.try_get("n")?,
            cpu: opt_i64(&row, "cpu")?,
            mem: opt_i64(&row, "mem")?,
            off_n: opt_f64(&row, "off_n")?,
            off_cpu: opt_f64(&row, "off_cpu")?,
            off_mem: opt_f64(&row, "off_mem")?,
        }
        .shifted(shift);
        let waits: Option<String> = row.try_get("waits")?;
        let early = opt_i64(&row, "early")?;
        let a = entry(&mut acc, key(&row)?, buckets);
        parse_waits(waits.as_deref().unwrap_or_default(), &mut a.waits[b])?;
        a.held_starts[b].add(&m);
        a.queue_ends[b].add(&Moves {
            n: m.n,
            off_n: m.off_n,
            ..Default::default()
        });
        a.queue_base += early;
    }

    // Left the queue in the range without being admitted (cancelled, expired).
    let c = col("dequeued_at");
    let sql = format!(
        "SELECT namespace, level, {u} AS u, COUNT(*) AS n, SUM({off}) AS off_n, \
         CAST(SUM(CASE WHEN enqueued_at < $1 THEN 1 ELSE 0 END) AS BIGINT) AS early \
         FROM jobs {idx} WHERE admitted_at IS NULL AND {range}{fs} GROUP BY {group}",
        u = c.unit(),
        off = c.off(),
        idx = idx(backend, "jobs_hist_dequeued"),
        range = c.in_range(),
        group = c.group(),
    );
    for row in fetch(conn, sql, &p).await? {
        let (b, shift) = place(&row, units, &p, buckets)?;
        let m = Moves {
            n: row.try_get("n")?,
            off_n: opt_f64(&row, "off_n")?,
            ..Default::default()
        };
        let early = opt_i64(&row, "early")?;
        let a = entry(&mut acc, key(&row)?, buckets);
        a.queue_ends[b].add(&m.shifted(shift));
        a.queue_base += early;
    }

    // Ended in the range: by outcome, the end of holding; and those that held at the start.
    let c = col("finished_at");
    let terminal: Vec<JobState> = JobState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    let by_state: String = terminal
        .iter()
        .map(|s| {
            format!(
                "CAST(SUM(CASE WHEN state = '{s}' THEN 1 ELSE 0 END) AS BIGINT) AS s_{s}, ",
                s = s.as_str()
            )
        })
        .collect();
    let held = |v: &str| format!("CASE WHEN admitted_at IS NULL THEN 0 ELSE {v} END");
    let held_f = |v: &str| format!("CASE WHEN admitted_at IS NULL THEN 0.0 ELSE {v} END");
    let early = |v: &str| format!("CASE WHEN admitted_at < $1 THEN {v} ELSE 0 END");
    let off = c.off();
    let sql = format!(
        "SELECT namespace, level, {u} AS u, {by_state}\
         CAST(SUM({held_n}) AS BIGINT) AS n, CAST(SUM({held_cpu}) AS BIGINT) AS cpu, \
         CAST(SUM({held_mem}) AS BIGINT) AS mem, \
         SUM({held_off}) AS off_n, \
         SUM({held_cpu_off}) AS off_cpu, \
         SUM({held_mem_off}) AS off_mem, \
         CAST(SUM({early_n}) AS BIGINT) AS early_n, CAST(SUM({early_cpu}) AS BIGINT) AS early_cpu, \
         CAST(SUM({early_mem}) AS BIGINT) AS early_mem \
         FROM jobs {idx} WHERE {range}{fs} GROUP BY {group}",
        u = c.unit(),
        held_n = held("1"),
        held_cpu = held("cpu_milli"),
        held_mem = held("mem_mib"),
        held_off = held_f(&off),
        held_cpu_off = held_f(&format!("CAST(cpu_milli AS DOUBLE PRECISION) * {off}")),
        held_mem_off = held_f(&format!("CAST(mem_mib AS DOUBLE PRECISION) * {off}")),
        early_n = early("1"),
        early_cpu = early("cpu_milli"),
        early_mem = early("mem_mib"),
        idx = idx(backend, "jobs_hist_finished"),
        range = c.in_range(),
        group = c.group(),
    );
    for row in fetch(conn, sql, &p).await? {
        let (b, shift) = place(&row, units, &p, buckets)?;
        let m = Moves {
            n: opt_i64(&row, "n")?,
            cpu: opt_i64(&row, "cpu")?,
            mem: opt_i64(&row, "mem")?,
            off_n: opt_f64(&row, "off_n")?,
            off_cpu: opt_f64(&row, "off_cpu")?,
            off_mem: opt_f64(&row, "off_mem")?,
        }
        .shifted(shift);
        let early = Moves {
            n: opt_i64(&row, "early_n")?,
            cpu: opt_i64(&row, "early_cpu")?,
            mem: opt_i64(&row, "early_mem")?,
            ..Default::default()
        };
        let mut counts = Vec::with_capacity(terminal.len());
        for s in &terminal {
            counts.push((*s, opt_i64(&row, &format!("s_{}", s.as_str()))?));
        }
        let a = entry(&mut acc, key(&row)?, buckets);
        for (s, n) in counts {
            if n > 0 {
                *a.finished[b].entry(s).or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
        a.held_ends[b].add(&m);
        a.held_base.add(&early);
    }

    // Waiting or holding at the start and still so at the end of the range (or now). For the
    // usual range ("the last N days") these read only what happened after it: nothing, or the
    // jobs waiting and running now. ($3 and $5 are mentioned, trivially true, so that every
    // statement binds the same parameters on both databases.)
    let (adm, deq, fin) = (col("admitted_at"), col("dequeued_at"), col("finished_at"));
    let sql = format!(
        "SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {adm_idx} WHERE {adm_h} >= $6 AND admitted_at >= $2 AND enqueued_at < $1 \
           AND $3 > 0 AND $5 >= $4{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {deq_idx} WHERE admitted_at IS NULL AND {deq_h} >= $6 AND dequeued_at >= $2 \
           AND enqueued_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'q' AS kind, namespace, level, COUNT(*) AS n, 0 AS cpu, 0 AS mem \
         FROM jobs {deq_idx} WHERE admitted_at IS NULL AND {deq_h} IS NULL \
           AND enqueued_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'h' AS kind, namespace, level, COUNT(*) AS n, \
           CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {fin_idx} WHERE {fin_h} >= $6 AND finished_at >= $2 AND admitted_at < $1{fs} \
         GROUP BY namespace, level \
         UNION ALL \
         SELECT 'h' AS kind, namespace, level, COUNT(*) AS n, \
           CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {fin_idx} WHERE {fin_h} IS NULL AND admitted_at < $1{fs} \
         GROUP BY namespace, level",
        adm_idx = idx(backend, "jobs_hist_admitted"),
        deq_idx = idx(backend, "jobs_hist_dequeued"),
        fin_idx = idx(backend, "jobs_hist_finished"),
        adm_h = adm.hour(),
        deq_h = deq.hour(),
        fin_h = fin.hour(),
    );
    for row in fetch(conn, sql, &p).await? {
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

    Ok(acc
        .into_iter()
        .map(|((namespace, level), mut a)| HistorySeries {
            namespace,
            level,
            points: integrate(&mut a, buckets, p.step),
        })
        .collect())
}

/// One level (count, cpu, mem) walked through the buckets.
#[derive(Debug, Clone, Copy, Default)]
struct Level {
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
    let mut held = Level {
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
