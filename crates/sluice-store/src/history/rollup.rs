//! The hourly rollups of the history (migration `0004_history_rollups`): rolling hours up, and
//! reading the rows back. See the documentation of [`crate::history`].

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::scan::{
    Column, Extras, HOUR_MS, Hours, Key, Level, Moves, Params, UnitAgg, Units, idx, key,
    level_shift, opt_i64, scan,
};
use crate::dialect::Dialect;
use crate::error::StoreError;

/// How long after an hour ends [`crate::Store::roll_up_history`] waits before rolling it up, so
/// that writes stamped by a clock a little behind or committed a little late are in. (Later
/// ones are still counted: they mark the hour stale and it is rolled up again.)
pub const ROLL_UP_MARGIN_MS: i64 = 5 * 60_000;

/// The most hours one [`crate::Store::roll_up_history`] call rolls up, counted from the first
/// hour with anything in it (hours with nothing in them and nothing waiting or held are
/// skipped at no cost).
pub const ROLL_UP_HOURS: i64 = 24;

/// The first hour that has rollup rows (hours since the Unix epoch). The levels at its start
/// (jobs of 1970's first hour or earlier: only tests have them) are counted from the jobs.
pub(super) const FIRST_HOUR: i64 = 1;

/// The PostgreSQL advisory lock ("sluice" then 0x0001) that a roll-up takes exclusively and
/// every write of a history column shares (see migration 0004).
const LOCK_KEY: i64 = 8_317_151_707_346_042_881;

/// Rows per INSERT when writing rollups.
const ROWS_PER_INSERT: usize = 200;

/// The columns of `history_hours`, in the order they are written.
const COLUMNS: [&str; 8] = [
    "hour",
    "namespace",
    "level",
    "sums",
    "queued",
    "held_n",
    "held_cpu",
    "held_mem",
];

/// How many whole numbers open the `sums` text of a rollup row, before the waits (see migration
/// 0004): the hour, then enq (n, off), left (n, off), adm (n, cpu, mem, 3 offs), fin_n, the
/// counts by terminal state, rel (n, cpu, mem, 3 offs).
const SUMS_NUMBERS: usize = 21;

/// What one [`crate::Store::roll_up_history`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollUp {
    /// Every hour before this one (in hours since the Unix epoch) is rolled up; `None` while
    /// nothing is.
    pub rolled_until_hour: Option<i64>,
    /// Rollup rows written by this call.
    pub rows: u64,
    /// The hour from which this call dropped rollups that writes had made stale (they are rolled
    /// up again by this and the next calls), if it did.
    pub invalidated_from_hour: Option<i64>,
    /// Every hour that ended before `now_ms` minus [`ROLL_UP_MARGIN_MS`] is rolled up: another
    /// call does nothing until time passes or a write makes a rolled-up hour stale.
    pub done: bool,
}

/// `next_hour` and the earliest stale hour.
async fn state(conn: &mut AnyConnection) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let row = sqlx::query(
        "SELECT next_hour, (SELECT MIN(hour) FROM history_stale) AS stale \
         FROM history_rollup WHERE id = 1",
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::Corrupt("history_rollup has lost its row".into()))?;
    Ok((row.try_get("next_hour")?, row.try_get("stale")?))
}

/// The hours whose rollup rows a query may use: those before the returned hour (none if
/// `None`).
pub(super) async fn coverage(conn: &mut AnyConnection) -> Result<Option<i64>, StoreError> {
    let (next, stale) = state(conn).await?;
    Ok(next.map(|n| stale.map_or(n, |s| n.min(s.max(FIRST_HOUR)))))
}

/// The first hour not to roll up at `now_ms`: hours before it ended at least the margin ago.
fn target(now_ms: i64) -> i64 {
    now_ms.saturating_sub(ROLL_UP_MARGIN_MS).div_euclid(HOUR_MS)
}

/// What [`roll_up`] would report if there is nothing to do (read without any lock); `None` if
/// there is work.
pub(crate) async fn roll_up_done(
    conn: &mut AnyConnection,
    now_ms: i64,
) -> Result<Option<RollUp>, StoreError> {
    let (next, stale) = state(conn).await?;
    let target = target(now_ms);
    let idle = stale.is_none() && next.map_or(target <= FIRST_HOUR, |n| n >= target);
    Ok(idle.then_some(RollUp {
        rolled_until_hour: next,
        rows: 0,
        invalidated_from_hour: None,
        done: true,
    }))
}

/// Drops stale rollups and rolls up the next hours (at most [`ROLL_UP_HOURS`] of them with
/// anything in them) that ended before `now_ms` minus [`ROLL_UP_MARGIN_MS`]. `conn` must be in a
/// write transaction (on PostgreSQL at READ COMMITTED, so that its statements see every write
/// committed before the lock was granted).
pub(crate) async fn roll_up(
    conn: &mut AnyConnection,
    dialect: Dialect,
    now_ms: i64,
) -> Result<RollUp, StoreError> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT COUNT(*) AS n FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
    }
    let (stored, stale) = state(conn).await?;
    let target = target(now_ms);
    let mut report = RollUp::default();
    let mut next = stored;
    if let Some(s) = stale {
        let s = s.max(FIRST_HOUR);
        if next.is_some_and(|n| s < n) {
            sqlx::query("DELETE FROM history_hours WHERE hour >= $1")
                .bind(s)
                .execute(&mut *conn)
                .await?;
            next = Some(s);
            report.invalidated_from_hour = Some(s);
        }
        sqlx::query("DELETE FROM history_stale")
            .execute(&mut *conn)
            .await?;
    }
    let start = match next {
        Some(n) => n.max(FIRST_HOUR),
        None => {
            // A fresh start: no row may be left from before.
            sqlx::query("DELETE FROM history_hours")
                .execute(&mut *conn)
                .await?;
            FIRST_HOUR
        }
    };
    if start < target {
        let mut levels = if start == FIRST_HOUR {
            level_shift(conn, dialect, i64::MIN, FIRST_HOUR * HOUR_MS, &[], "").await?
        } else {
            read_levels(conn, start - 1, &[], "").await?
        };
        levels.retain(|_, l| !l.is_zero());
        let mut a = start;
        if levels.is_empty() {
            // Nothing waits or is held: skip to the next hour with anything in it.
            a = match next_activity(conn, dialect, start).await? {
                Some(h) if h < target => h.max(start),
                _ => target,
            };
        }
        let b = a.saturating_add(ROLL_UP_HOURS).min(target);
        if a < b {
            report.rows = roll_hours(conn, dialect, a, b, levels).await?;
        }
        next = Some(b.max(a));
    }
    if next != stored {
        sqlx::query("UPDATE history_rollup SET next_hour = $1 WHERE id = 1")
            .bind(next)
            .execute(&mut *conn)
            .await?;
    }
    report.rolled_until_hour = next;
    report.done = next.is_none_or(|n| n >= target);
    Ok(report)
}

/// The first hour at or after `from_hour` in which any job entered or left its queue or
/// ended (one index seek per column).
async fn next_activity(
    conn: &mut AnyConnection,
    dialect: Dialect,
    from_hour: i64,
) -> Result<Option<i64>, StoreError> {
    let mut first: Option<i64> = None;
    for column in Column::ALL {
        let c = column.name();
        let sql = format!(
            "SELECT {c} / 3600000 AS h FROM jobs {idx} WHERE {f}{c} / 3600000 >= $1 \
             ORDER BY {c} / 3600000 LIMIT 1",
            idx = idx(dialect, column.index()),
            f = column.filter(),
        );
        let h: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(from_hour)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(h) = h {
            first = Some(first.map_or(h, |f| f.min(h)));
        }
    }
    Ok(first)
}

/// Jobs whose times are out of order, per hour of `[a, b)`: entered the queue in the hour
/// having left it before the hour; admitted in the hour having ended before the hour.
async fn out_of_order(
    conn: &mut AnyConnection,
    dialect: Dialect,
    a: i64,
    b: i64,
) -> Result<Vec<(i64, Key, i64, Moves)>, StoreError> {
    let left = "COALESCE(admitted_at, dequeued_at)";
    let sql = format!(
        "SELECT namespace, level, enqueued_at / 3600000 AS u, CAST(COUNT(*) AS BIGINT) AS q, \
           CAST(0 AS BIGINT) AS n, CAST(0 AS BIGINT) AS cpu, CAST(0 AS BIGINT) AS mem \
         FROM jobs {left_idx} WHERE enqueued_at / 3600000 >= $1 AND enqueued_at / 3600000 < $2 \
           AND enqueued_at > {left} AND {left} < (enqueued_at / 3600000) * 3600000 \
         GROUP BY enqueued_at / 3600000, namespace, level \
         UNION ALL \
         SELECT namespace, level, admitted_at / 3600000 AS u, CAST(0 AS BIGINT) AS q, \
           CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(cpu_milli) AS BIGINT) AS cpu, \
           CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {ended_idx} WHERE admitted_at / 3600000 >= $1 AND admitted_at / 3600000 < $2 \
           AND finished_at < admitted_at AND finished_at < (admitted_at / 3600000) * 3600000 \
         GROUP BY admitted_at / 3600000, namespace, level",
        left_idx = idx(dialect, "jobs_hist_left_early"),
        ended_idx = idx(dialect, "jobs_hist_ended_early"),
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let held = Moves {
                n: opt_i64(row, "n")?,
                cpu: opt_i64(row, "cpu")?,
                mem: opt_i64(row, "mem")?,
                ..Default::default()
            };
            Ok((row.try_get("u")?, key(row)?, opt_i64(row, "q")?, held))
        })
        .collect()
}

/// Rolls up the hours `[a, b)`, the levels at `a`'s start being `levels` (the non-zero ones);
/// returns the rows written.
async fn roll_hours(
    conn: &mut AnyConnection,
    dialect: Dialect,
    a: i64,
    b: i64,
    mut levels: BTreeMap<Key, Level>,
) -> Result<u64, StoreError> {
    let p = Params::hours(a, b);
    let chain = Extras {
        early: false,
        chain: true,
    };
    let mut hours: BTreeMap<i64, BTreeMap<Key, UnitAgg>> = BTreeMap::new();
    for column in Column::ALL {
        for (u, k, agg) in scan(
            conn,
            dialect,
            Units::Hours,
            &p,
            &Hours::Between,
            column,
            chain,
        )
        .await?
        {
            hours.entry(u).or_default().entry(k).or_default().add(agg);
        }
    }
    for (u, k, q, held) in out_of_order(conn, dialect, a, b).await? {
        let agg = hours.entry(u).or_default().entry(k).or_default();
        agg.back_q += q;
        agg.back_h.add(&held);
    }
    let mut rows = Vec::new();
    for hour in a..b {
        let mut found = hours.remove(&hour).unwrap_or_default();
        for k in levels.keys() {
            found.entry(k.clone()).or_default();
        }
        for (k, mut u) in found {
            let mut l = levels.remove(&k).unwrap_or_default();
            l.queued += u.enq.n - u.out_q - u.back_q;
            l.n += u.adm.n - u.out_h.n - u.back_h.n;
            l.cpu += u.adm.cpu - u.out_h.cpu - u.back_h.cpu;
            l.mem += u.adm.mem - u.out_h.mem - u.back_h.mem;
            if u.active() || !l.is_zero() {
                u.waits.sort_unstable();
                rows.push((hour, k.clone(), u, l));
            }
            if !l.is_zero() {
                levels.insert(k, l);
            }
        }
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        insert(conn, chunk).await?;
    }
    Ok(rows.len() as u64)
}

/// An offset sum as stored. The scans sum whole numbers of ms (times weights) as floating point,
/// so the sum is a whole number, held exactly (below 2^53; above, a float is whole anyway).
fn whole(v: f64) -> i64 {
    v as i64
}

/// The `sums` text of a rollup row (see migration 0004 and [`SUMS_NUMBERS`]).
fn encode(hour: i64, u: &UnitAgg) -> String {
    use std::fmt::Write;
    let numbers: [i64; SUMS_NUMBERS] = [
        hour,
        u.enq.n,
        whole(u.enq.off_n),
        u.left.n,
        whole(u.left.off_n),
        u.adm.n,
        u.adm.cpu,
        u.adm.mem,
        whole(u.adm.off_n),
        whole(u.adm.off_cpu),
        whole(u.adm.off_mem),
        u.fin_n,
        u.finished[0],
        u.finished[1],
        u.finished[2],
        u.rel.n,
        u.rel.cpu,
        u.rel.mem,
        whole(u.rel.off_n),
        whole(u.rel.off_cpu),
        whole(u.rel.off_mem),
    ];
    let mut s = String::with_capacity(8 * (SUMS_NUMBERS + u.waits.len()));
    // Writing to a String cannot fail.
    for v in numbers {
        let _ = write!(s, "{v}:");
    }
    for (i, w) in u.waits.iter().enumerate() {
        let _ = write!(s, "{}{w}", if i == 0 { "" } else { "," });
    }
    s
}

/// A cursor over `sums` texts joined by `;`.
struct Sums<'a> {
    text: &'a [u8],
    at: usize,
}

impl Sums<'_> {
    /// The whole number at the cursor and the separator after it (`None` at the end), both
    /// consumed; `None` if there is no number.
    fn number(&mut self) -> Option<(i64, Option<u8>)> {
        let negative = self.text.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut v: i64 = 0;
        while let Some(&c) = self.text.get(self.at).filter(|c| c.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        let sep = self.text.get(self.at).copied();
        if sep.is_some() {
            self.at += 1;
        }
        Some((if negative { -v } else { v }, sep))
    }

    /// The next row: its hour and sums; `None` at the end or if the text is not well formed.
    fn row(&mut self) -> Option<(i64, UnitAgg)> {
        let mut v = [0i64; SUMS_NUMBERS];
        for x in v.iter_mut() {
            match self.number()? {
                (n, Some(b':')) => *x = n,
                _ => return None,
            }
        }
        let moves = |n, cpu, mem, off: &[i64]| Moves {
            n,
            cpu,
            mem,
            // Whole numbers far below 2^53: exact.
            off_n: off[0] as f64,
            off_cpu: off[1] as f64,
            off_mem: off[2] as f64,
        };
        let mut a = UnitAgg {
            enq: moves(v[1], 0, 0, &[v[2], 0, 0]),
            left: moves(v[3], 0, 0, &[v[4], 0, 0]),
            adm: moves(v[5], v[6], v[7], &v[8..11]),
            fin_n: v[11],
            finished: [v[12], v[13], v[14]],
            rel: moves(v[15], v[16], v[17], &v[18..21]),
            ..Default::default()
        };
        // The waits, up to the next row or the end.
        a.waits.reserve(usize::try_from(a.adm.n).unwrap_or(0));
        match self.text.get(self.at) {
            None => {}
            Some(b';') => self.at += 1,
            Some(_) => loop {
                match self.number()? {
                    (w, Some(b',')) => a.waits.push(w),
                    (w, None | Some(b';')) => {
                        a.waits.push(w);
                        break;
                    }
                    _ => return None,
                }
            },
        }
        Some((v[0], a))
    }
}

async fn insert(
    conn: &mut AnyConnection,
    rows: &[(i64, Key, UnitAgg, Level)],
) -> Result<(), StoreError> {
    let mut sql = format!("INSERT INTO history_hours ({}) VALUES ", COLUMNS.join(", "));
    let mut n = 0;
    for i in 0..rows.len() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for j in 0..COLUMNS.len() {
            n += 1;
            sql.push_str(&format!("{}${n}", if j == 0 { "" } else { ", " }));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (hour, (namespace, level), u, l) in rows {
        q = q
            .bind(*hour)
            .bind(namespace.clone())
            .bind(level.clone())
            .bind(encode(*hour, u))
            .bind(l.queued)
            .bind(l.n)
            .bind(l.cpu)
            .bind(l.mem);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// The levels at the end of `hour` per (namespace, level) with a rollup row there, filtered
/// by `filter_sql` (bound from `$2`). Only meaningful for a rolled-up hour.
pub(super) async fn read_levels(
    conn: &mut AnyConnection,
    hour: i64,
    filter_values: &[String],
    filter_sql: &str,
) -> Result<BTreeMap<Key, Level>, StoreError> {
    let sql = format!(
        "SELECT namespace, level, queued, held_n, held_cpu, held_mem FROM history_hours \
         WHERE hour = $1{filter_sql}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(hour);
    for f in filter_values {
        query = query.bind(f.clone());
    }
    let mut levels = BTreeMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let l = Level {
            queued: row.try_get(2)?,
            n: row.try_get(3)?,
            cpu: row.try_get(4)?,
            mem: row.try_get(5)?,
        };
        levels.insert((row.try_get(0)?, row.try_get(1)?), l);
    }
    Ok(levels)
}

/// The sums of the rollup rows of hours `lo..=hi`, filtered by `filter_sql` (bound from `$3`).
/// The database joins the `sums` of each series into one text: a month of hourly rows is then
/// about twenty rows to fetch instead of 14,400, which would cost more than all the rest.
pub(super) async fn read_hours(
    conn: &mut AnyConnection,
    dialect: Dialect,
    lo: i64,
    hi: i64,
    filter_values: &[String],
    filter_sql: &str,
) -> Result<Vec<(i64, Key, UnitAgg)>, StoreError> {
    let joined = match dialect {
        Dialect::Sqlite => "group_concat(sums, ';')",
        Dialect::Postgres => "string_agg(sums, ';')",
    };
    let sql = format!(
        "SELECT namespace, level, {joined} AS sums FROM history_hours \
         WHERE hour >= $1 AND hour <= $2{filter_sql} GROUP BY namespace, level"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(lo).bind(hi);
    for f in filter_values {
        query = query.bind(f.clone());
    }
    let mut out = Vec::new();
    for row in query.fetch_all(&mut *conn).await? {
        let k = key(&row)?;
        let text: Option<String> = row.try_get("sums")?;
        let text = text.unwrap_or_default();
        let mut sums = Sums {
            text: text.as_bytes(),
            at: 0,
        };
        while sums.at < text.len() {
            let (hour, a) = sums.row().ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "history_hours.sums of {}/{} is not well formed near byte {} of {:?}",
                    k.0,
                    k.1,
                    sums.at,
                    text.get(sums.at.saturating_sub(40)..(sums.at + 40).min(text.len()))
                ))
            })?;
            out.push((hour, k.clone(), a));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
