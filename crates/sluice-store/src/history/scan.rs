//! The range scans of the history: what the database sums per time unit (an hour or a bucket)
//! and (namespace, level), and the accumulators those sums are folded into. Shared by the live
//! computation ([`super::read`]) and the roll-up ([`super::rollup`]).

use std::collections::BTreeMap;

use sluice_core::job::JobState;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::model::HistoryQuery;
use crate::dialect::Dialect;
use crate::error::StoreError;

/// Starts or ends of intervals in one bucket: counts and weights, and the sums of their
/// offsets into the bucket (weighted), for the integral.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Moves {
    pub(super) n: i64,
    pub(super) cpu: i64,
    pub(super) mem: i64,
    pub(super) off_n: f64,
    pub(super) off_cpu: f64,
    pub(super) off_mem: f64,
}

impl Moves {
    pub(super) fn add(&mut self, o: &Moves) {
        self.n += o.n;
        self.cpu += o.cpu;
        self.mem += o.mem;
        self.off_n += o.off_n;
        self.off_cpu += o.off_cpu;
        self.off_mem += o.off_mem;
    }

    /// These moves, read with offsets into a unit that starts `shift` ms after its bucket,
    /// with offsets into the bucket.
    pub(super) fn shifted(mut self, shift: i64) -> Moves {
        let shift = shift as f64;
        self.off_n += self.n as f64 * shift;
        self.off_cpu += self.cpu as f64 * shift;
        self.off_mem += self.mem as f64 * shift;
        self
    }
}

/// The terminal states, in the order of the rollup columns `s_succeeded`, `s_failed`,
/// `s_cancelled` (a unit test checks that these are all of them).
pub(super) const TERMINAL: [JobState; 3] =
    [JobState::Succeeded, JobState::Failed, JobState::Cancelled];

/// The sums of one time unit (an hour or a bucket) and one (namespace, level), as a range scan
/// returns them or a rollup row holds them.
#[derive(Debug, Clone, Default)]
pub(super) struct UnitAgg {
    /// Entered the queue.
    pub(super) enq: Moves,
    /// Left the queue (admitted, or cancelled or expired while waiting).
    pub(super) left: Moves,
    /// Admitted: the start of holding.
    pub(super) adm: Moves,
    /// The waits of the jobs admitted, in ms.
    pub(super) waits: Vec<i64>,
    /// Ended, in any state.
    pub(super) fin_n: i64,
    /// Ended, by terminal state ([`TERMINAL`] order).
    pub(super) finished: [i64; 3],
    /// Ended while holding: the end of holding.
    pub(super) rel: Moves,
    /// Live base: left the queue here, having entered it before the range.
    pub(super) early_q: i64,
    /// Live base: ended here, having been admitted before the range (count, cpu, mem).
    pub(super) early_h: Moves,
    /// Roll-up: left the queue here, having entered it before the hour's end.
    pub(super) out_q: i64,
    /// Roll-up: ended here, having been admitted before the hour's end (count, cpu, mem).
    pub(super) out_h: Moves,
    /// Roll-up: entered the queue here, having left it before the hour (times out of order).
    pub(super) back_q: i64,
    /// Roll-up: admitted here, having ended before the hour (times out of order).
    pub(super) back_h: Moves,
}

impl UnitAgg {
    pub(super) fn add(&mut self, o: UnitAgg) {
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
    pub(super) fn active(&self) -> bool {
        self.enq.n != 0 || self.left.n != 0 || self.fin_n != 0
    }
}

/// The jobs waiting and held at one instant: a level of the series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Level {
    pub(super) queued: i64,
    pub(super) n: i64,
    pub(super) cpu: i64,
    pub(super) mem: i64,
}

impl Level {
    pub(super) fn is_zero(&self) -> bool {
        *self == Level::default()
    }
}

/// Everything read for one (namespace, level), before the levels are integrated.
#[derive(Debug, Default)]
pub(super) struct Acc {
    pub(super) queue_base: i64,
    pub(super) queue_starts: Vec<Moves>,
    pub(super) queue_ends: Vec<Moves>,
    pub(super) held_base: Moves,
    pub(super) held_starts: Vec<Moves>,
    pub(super) held_ends: Vec<Moves>,
    pub(super) waits: Vec<Vec<i64>>,
    pub(super) finished: Vec<BTreeMap<JobState, u64>>,
}

impl Acc {
    pub(super) fn new(buckets: usize) -> Self {
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
    pub(super) fn fold(&mut self, b: usize, shift: i64, u: UnitAgg) {
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
pub(super) const HOUR_MS: i64 = 3_600_000;

/// How rows are grouped in time. `Hours` when the buckets are whole hours from a whole hour:
/// the database groups by `column / 3600000`, which is the order of the indexes, so nothing is
/// sorted, and the hours are added up into buckets here. `Buckets` otherwise: the database
/// groups by bucket (sorting the rows of the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Units {
    Hours,
    Buckets,
}

/// Parameters `$1`.. of every range scan.
#[derive(Debug, Clone)]
pub(super) struct Params {
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) step: i64,
    /// Hours scanned (`$4` to `$5`; by default those of `from` and of the last ms of the
    /// range), and the hour of `to`.
    pub(super) from_hour: i64,
    pub(super) last_hour: i64,
    pub(super) to_hour: i64,
    /// The namespace and level filters, bound as `$7` and `$8` when present.
    pub(super) filters: Vec<String>,
    /// ` AND namespace = $7 ...`.
    pub(super) filter_sql: String,
}

/// The SQL condition (` AND namespace = $N ...`, numbered from `$first`) and values of the
/// namespace and level filters of a query.
pub(super) fn filters(q: &HistoryQuery, first: usize) -> (Vec<String>, String) {
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
    pub(super) fn new(q: &HistoryQuery, to: i64) -> Params {
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
    pub(super) fn hours(from_hour: i64, to_hour: i64) -> Params {
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

pub(super) async fn fetch(
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
pub(super) struct Col<'a> {
    pub(super) units: Units,
    pub(super) column: &'a str,
}

impl Col<'_> {
    /// The hour expression of the indexes (must match their text exactly).
    pub(super) fn hour(&self) -> String {
        format!("{} / 3600000", self.column)
    }

    /// The unit a row falls in.
    pub(super) fn unit(&self) -> String {
        match self.units {
            Units::Hours => self.hour(),
            Units::Buckets => format!("({} - $1) / $3", self.column),
        }
    }

    /// The row's offset into its unit, as a float.
    pub(super) fn off(&self) -> String {
        let off = match self.units {
            Units::Hours => format!("{} % 3600000", self.column),
            Units::Buckets => format!("({} - $1) % $3", self.column),
        };
        format!("CAST({off} AS DOUBLE PRECISION)")
    }

    /// The GROUP BY of a range scan.
    pub(super) fn group(&self) -> String {
        format!("{}, namespace, level", self.unit())
    }
}

pub(super) type Key = (String, String);

pub(super) fn entry(acc: &mut BTreeMap<Key, Acc>, k: Key, buckets: usize) -> &mut Acc {
    acc.entry(k).or_insert_with(|| Acc::new(buckets))
}

pub(super) fn key(row: &AnyRow) -> Result<Key, StoreError> {
    Ok((row.try_get("namespace")?, row.try_get("level")?))
}

/// The bucket a unit falls in and how far into the bucket the unit starts.
pub(super) fn place(
    u: i64,
    units: Units,
    p: &Params,
    buckets: usize,
) -> Result<(usize, i64), StoreError> {
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
pub(super) fn opt_f64(row: &AnyRow, column: &str) -> Result<f64, StoreError> {
    match row.try_get::<Option<f64>, _>(column) {
        Ok(v) => Ok(v.unwrap_or(0.0)),
        Err(_) => Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0) as f64),
    }
}

pub(super) fn opt_i64(row: &AnyRow, column: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0))
}

/// `INDEXED BY name` on SQLite: without statistics its planner may pick another index (for
/// example one whose range condition reads the whole history before the range).
pub(super) fn idx(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("INDEXED BY {name}"),
        Dialect::Postgres => String::new(),
    }
}

/// The list of a group's waits as text: `a,b,c`.
pub(super) fn waits_agg(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "group_concat(admitted_at - enqueued_at, ',')",
        Dialect::Postgres => "string_agg(CAST(admitted_at - enqueued_at AS TEXT), ',')",
    }
}

pub(super) fn parse_waits(text: &str, into: &mut Vec<i64>) -> Result<(), StoreError> {
    for w in text.split(',').filter(|w| !w.is_empty()) {
        into.push(w.trim().parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!("history: wait {w:?} is not a number of ms"))
        })?);
    }
    Ok(())
}

/// A time column of the jobs, with its history index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Enqueued,
    Admitted,
    /// Only the jobs that left the queue without being admitted (`admitted_at` equals
    /// `dequeued_at` when set).
    Dequeued,
    Finished,
}

impl Column {
    pub(super) const ALL: [Column; 4] = [
        Column::Enqueued,
        Column::Admitted,
        Column::Dequeued,
        Column::Finished,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Column::Enqueued => "enqueued_at",
            Column::Admitted => "admitted_at",
            Column::Dequeued => "dequeued_at",
            Column::Finished => "finished_at",
        }
    }

    pub(super) fn index(self) -> &'static str {
        match self {
            Column::Enqueued => "jobs_hist_enqueued",
            Column::Admitted => "jobs_hist_admitted",
            Column::Dequeued => "jobs_hist_dequeued",
            Column::Finished => "jobs_hist_finished",
        }
    }

    /// The condition a row of its index meets (the indexes but that of entries are partial:
    /// migrations 0003 and 0013), as every query of the index repeats it (SQLite uses a
    /// partial index only then). A row the condition leaves out has no time in this column or,
    /// for ends, was never admitted either: it is a job waiting in its queue.
    pub(super) fn filter(self) -> &'static str {
        match self {
            Column::Enqueued => "",
            Column::Admitted => "admitted_at IS NOT NULL AND ",
            Column::Dequeued => "admitted_at IS NULL AND ",
            Column::Finished => "(finished_at IS NOT NULL OR admitted_at IS NOT NULL) AND ",
        }
    }
}

/// Which hours a range scan reads: `$4` to `$5`, or a list (when buckets that are not whole
/// hours leave hours here and there to be read live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Hours {
    Between,
    List(Vec<i64>),
}

/// What a range scan sums besides the moves of each unit.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Extras {
    /// For the live base: what left the queue or ended in the unit having started before `$1`.
    pub(super) early: bool,
    /// For the roll-up (hour units): what left the queue or ended in the hour having started
    /// before the hour's end.
    pub(super) chain: bool,
}

/// Reads the starts or ends of one time column in the range (and hours) of `p`, one row per
/// (unit, namespace, level).
pub(super) async fn scan(
    conn: &mut AnyConnection,
    dialect: Dialect,
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
                waits = waits_agg(dialect)
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
        idx = idx(dialect, column.index()),
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
pub(super) async fn level_shift(
    conn: &mut AnyConnection,
    dialect: Dialect,
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
            idx = idx(dialect, index),
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

/// `v`, or 0 if negative.
pub(super) fn nonneg(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
