//! Reading a history: [`history`] from the jobs alone ([`live`]) or from the rollup rows of the
//! rolled-up hours and the jobs for the rest ([`with_rollups`]), then integrated into points.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Row};

use super::model::{HistoryPoint, HistoryQuery, HistorySeries};
use super::rollup;
use super::scan::{
    Acc, Column, Extras, HOUR_MS, Hours, Key, Moves, Params, Units, entry, fetch, filters, idx,
    key, level_shift, nonneg, opt_i64, place, scan,
};
use crate::dialect::Dialect;
use crate::error::StoreError;

/// Reads the history; see the module documentation. `conn` should be in a read transaction.
pub(crate) async fn history(
    conn: &mut AnyConnection,
    dialect: Dialect,
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
            with_rollups(conn, dialect, q, &p, units, buckets, next).await?
        }
        _ => live(conn, dialect, &p, units, buckets).await?,
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
pub(super) async fn live(
    conn: &mut AnyConnection,
    dialect: Dialect,
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
        for (u, k, a) in scan(conn, dialect, units, p, &Hours::Between, column, early).await? {
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
         FROM jobs {adm_idx} WHERE {adm_f}admitted_at / 3600000 >= $6 AND admitted_at >= $2 \
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
         FROM jobs {fin_idx} WHERE {fin_f}finished_at / 3600000 >= $6 AND finished_at >= $2 \
           AND admitted_at < $1{fs} GROUP BY namespace, level \
         UNION ALL \
         SELECT 'h' AS kind, namespace, level, COUNT(*) AS n, \
           CAST(SUM(cpu_milli) AS BIGINT) AS cpu, CAST(SUM(mem_mib) AS BIGINT) AS mem \
         FROM jobs {fin_idx} WHERE {fin_f}finished_at / 3600000 IS NULL AND admitted_at < $1{fs} \
         GROUP BY namespace, level",
        adm_idx = idx(dialect, Column::Admitted.index()),
        deq_idx = idx(dialect, Column::Dequeued.index()),
        fin_idx = idx(dialect, Column::Finished.index()),
        adm_f = Column::Admitted.filter(),
        fin_f = Column::Finished.filter(),
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
pub(super) async fn with_rollups(
    conn: &mut AnyConnection,
    dialect: Dialect,
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
            rollup::read_hours(conn, dialect, first_whole, last_rolled, &values, &sql).await?
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
                dialect,
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
        for (k, d) in level_shift(conn, dialect, hour_start, from, &values, &sql).await? {
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
pub(super) struct Held {
    n: i64,
    cpu: i64,
    mem: i64,
}

/// The mean of a step function over a bucket of width `step` that starts at `level`, with
/// intervals starting (`s`) and ending (`e`) inside it; `off` are the sums of the offsets of
/// those moves into the bucket (each start adds `step - offset` to the integral, each end
/// takes it away).
pub(super) fn mean(level: i64, s: i64, s_off: f64, e: i64, e_off: f64, step: i64) -> f64 {
    let step = step as f64;
    let integral = level as f64 * step + (s as f64 * step - s_off) - (e as f64 * step - e_off);
    (integral / step).max(0.0)
}

/// Nearest-rank percentile `pct` of sorted, non-empty `v`.
pub(super) fn nearest_rank(v: &[i64], pct: usize) -> Option<i64> {
    let k = (v.len() * pct).div_ceil(100).max(1);
    v.get(k - 1).copied()
}

pub(super) fn integrate(a: &mut Acc, buckets: usize, step: i64) -> Vec<HistoryPoint> {
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
