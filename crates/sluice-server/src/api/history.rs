//! The history API: time series over the store's job history ([`sluice_store::Store::history`]),
//! per namespace and level.
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /v1/history?from=&to=&step=&namespace=&level=` | queue length, wait-time percentiles, jobs finished by outcome, jobs / CPU / memory held, per bucket; per namespace, the cost and the held and used core- and GiB-hours of the runs that ended in each bucket |
//!
//! Per-job timelines are on `GET /v1/jobs/{id}` (`timeline`).
//!
//! The series come from the store, not from Prometheus: they cover the whole history the store
//! keeps, and each query reads only the index entries of its range. A job that was retried or
//! requeued counts for its latest pass through the queue (its earlier attempts are in its
//! timeline). The resource series are what admitted jobs requested and held; what runs *used*
//! (measured, see `docs/cost.md`) is in `cost`, by the bucket of each run's end.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::job::JobState;
use sluice_store::{HistoryQuery, HistorySeries, MAX_BUCKETS, StoreError};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::state::AppState;
use crate::time::{parse_duration, parse_time, rfc3339};

/// The default range when `from` is not given: the day before `to`.
const DEFAULT_RANGE_MS: i64 = 24 * 3_600_000;
/// Steps tried, in order, when `step` is not given: the first that makes at most
/// [`AUTO_BUCKETS`] buckets.
const AUTO_STEPS_SECS: [u64; 10] = [
    60,
    300,
    900,
    3_600,
    3 * 3_600,
    6 * 3_600,
    12 * 3_600,
    86_400,
    7 * 86_400,
    30 * 86_400,
];
/// The most buckets a default step makes.
const AUTO_BUCKETS: i64 = 240;

/// Query of `GET /v1/history`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct HistoryParams {
    /// Start (RFC 3339); default one day before `to`. Rounded down to a multiple of the step
    /// (from the Unix epoch, so an hourly step starts on the hour, UTC).
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default now. The last bucket is whole.
    pub to: Option<String>,
    /// Bucket width, like `30s`, `5m`, `1h`, `1d`; at least 1s. Default: the first of 1m, 5m,
    /// 15m, 1h, 3h, 6h, 12h, 1d, 7d, 30d that makes at most 240 buckets.
    pub step: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this priority level.
    pub level: Option<String>,
}

/// The series of one namespace and level; every list has one value per bucket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SeriesView {
    /// Namespace.
    pub namespace: String,
    /// Priority level.
    pub level: String,
    /// Jobs waiting in the queue at the end of each bucket.
    pub queued: Vec<u64>,
    /// Mean number of jobs waiting over each bucket.
    pub queued_avg: Vec<f64>,
    /// Jobs that entered the queue in each bucket.
    pub enqueued: Vec<u64>,
    /// Jobs admitted in each bucket.
    pub admitted: Vec<u64>,
    /// Median wait (submit or requeue to admission) of the jobs admitted in each bucket, in
    /// seconds; null where none was admitted.
    pub wait_p50_seconds: Vec<Option<f64>>,
    /// 90th percentile (nearest rank) of those waits, in seconds.
    pub wait_p90_seconds: Vec<Option<f64>>,
    /// 99th percentile (nearest rank) of those waits, in seconds.
    pub wait_p99_seconds: Vec<Option<f64>>,
    /// Longest of those waits, in seconds.
    pub wait_max_seconds: Vec<Option<f64>>,
    /// Mean of those waits, in seconds.
    pub wait_mean_seconds: Vec<Option<f64>>,
    /// Jobs that ended in each bucket, by terminal state (succeeded, failed, cancelled).
    pub finished: BTreeMap<String, Vec<u64>>,
    /// Jobs holding resources (admitted, submitted or running) at the end of each bucket.
    pub active: Vec<u64>,
    /// Mean number of jobs holding resources over each bucket.
    pub active_avg: Vec<f64>,
    /// CPU requested by the jobs holding resources at the end of each bucket, in cores.
    pub cpu_requested_cores: Vec<f64>,
    /// Mean CPU requested by jobs holding resources over each bucket, in cores.
    pub cpu_requested_avg_cores: Vec<f64>,
    /// Memory requested by the jobs holding resources at the end of each bucket, in bytes.
    pub memory_requested_bytes: Vec<u64>,
    /// Mean memory requested by jobs holding resources over each bucket, in bytes.
    pub memory_requested_avg_bytes: Vec<f64>,
}

/// What the runs of one namespace that ended in each bucket held, used and cost (see
/// `docs/cost.md`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CostSeriesView {
    /// Namespace.
    pub namespace: String,
    /// Runs that ended in each bucket.
    pub runs: Vec<u64>,
    /// Their cost, at the namespace's `[cost]` prices.
    pub cost: Vec<f64>,
    /// Core-hours they held.
    pub held_core_hours: Vec<f64>,
    /// Core-hours they used (measured runs).
    pub used_core_hours: Vec<f64>,
    /// GiB-hours they held.
    pub held_gib_hours: Vec<f64>,
    /// GiB-hours they used (measured runs).
    pub used_gib_hours: Vec<f64>,
}

/// The answer of `GET /v1/history`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct HistoryView {
    /// Start of the first bucket (RFC 3339).
    pub from: String,
    /// End of the last bucket (RFC 3339).
    pub to: String,
    /// Bucket width in seconds.
    pub step_seconds: f64,
    /// Start of each bucket (RFC 3339).
    pub buckets: Vec<String>,
    /// Per namespace and level with anything in the range (or waiting or holding resources at
    /// its start), sorted by namespace, then level.
    pub series: Vec<SeriesView>,
    /// Per namespace with runs that ended in the range: what they held, used and cost, by the
    /// bucket of their end (from the usage records).
    pub cost: Vec<CostSeriesView>,
}

/// The cost series of the range, per namespace the caller sees (`level` does not apply: runs
/// are priced per namespace).
async fn cost_series(
    st: &AppState,
    caller: &Caller,
    q: &HistoryQuery,
    n: usize,
) -> Result<Vec<CostSeriesView>, ApiError> {
    let f = sluice_store::UsageFilter {
        from_ms: q.from_ms,
        to_ms: q.from_ms + q.step_ms * n as i64,
        namespace: q.namespace.clone(),
        namespace_in: caller.namespace_in(sluice_core::access::AccessRole::Viewer),
        name: None,
        schedule: None,
    };
    let runs = st.store.usage(&f, super::cost::MAX_RUNS).await?;
    let mut by_ns: BTreeMap<String, CostSeriesView> = BTreeMap::new();
    for r in &runs {
        let Ok(i) = usize::try_from((r.ended_at_ms - q.from_ms) / q.step_ms) else {
            continue;
        };
        if i >= n {
            continue;
        }
        let e = sluice_core::cost::efficiency(r, &st.config.cost.prices(&r.namespace));
        let s = by_ns
            .entry(r.namespace.clone())
            .or_insert_with(|| CostSeriesView {
                namespace: r.namespace.clone(),
                runs: vec![0; n],
                cost: vec![0.0; n],
                held_core_hours: vec![0.0; n],
                used_core_hours: vec![0.0; n],
                held_gib_hours: vec![0.0; n],
                used_gib_hours: vec![0.0; n],
            });
        s.runs[i] += 1;
        s.cost[i] += e.cost;
        s.held_core_hours[i] += e.held_core_hours;
        s.used_core_hours[i] += e.used_core_hours;
        s.held_gib_hours[i] += e.held_gib_hours;
        s.used_gib_hours[i] += e.used_gib_hours;
    }
    Ok(by_ns.into_values().collect())
}

fn parse_step(v: &str) -> Result<i64, ApiError> {
    let d = parse_duration("step", v)?;
    if d < Duration::from_secs(1) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `step` = {v:?} is shorter than the smallest step, 1s"
        )));
    }
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Resolves the query's range and step: the store query, or a 400 naming the parameter.
pub fn resolve(p: &HistoryParams, now: i64) -> Result<HistoryQuery, ApiError> {
    let to =
        p.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(now);
    let from = p
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to.saturating_sub(DEFAULT_RANGE_MS));
    if to <= from {
        return Err(ApiError::BadRequest(format!(
            "query parameters `from` = {} and `to` = {}: the range must end after it starts",
            rfc3339(from),
            rfc3339(to)
        )));
    }
    let step = match p.step.as_deref() {
        Some(v) => parse_step(v)?,
        None => AUTO_STEPS_SECS
            .iter()
            .map(|s| i64::try_from(s * 1000).unwrap_or(i64::MAX))
            .find(|step| (to - from + step - 1) / step <= AUTO_BUCKETS)
            .unwrap_or(30 * 86_400_000),
    };
    let from = from - from.rem_euclid(step);
    let q = HistoryQuery {
        from_ms: from,
        to_ms: to,
        step_ms: step,
        namespace: p.namespace.clone().filter(|s| !s.is_empty()),
        level: p.level.clone().filter(|s| !s.is_empty()),
    };
    q.buckets().map_err(|e| match e {
        StoreError::BadQuery(m) => ApiError::BadRequest(format!(
            "query parameters `from`, `to`, `step`: {m} (at most {MAX_BUCKETS} buckets)"
        )),
        e => ApiError::from(e),
    })?;
    Ok(q)
}

fn seconds(ms: Option<i64>) -> Option<f64> {
    ms.map(|v| v as f64 / 1000.0)
}

const MIB: u64 = 1024 * 1024;

fn series_view(s: HistorySeries) -> SeriesView {
    let pts = &s.points;
    let col = |f: &dyn Fn(&sluice_store::HistoryPoint) -> u64| pts.iter().map(f).collect();
    let colf = |f: &dyn Fn(&sluice_store::HistoryPoint) -> f64| pts.iter().map(f).collect();
    let colo = |f: &dyn Fn(&sluice_store::HistoryPoint) -> Option<f64>| pts.iter().map(f).collect();
    let finished = JobState::ALL
        .into_iter()
        .filter(|st| st.is_terminal())
        .map(|st| {
            (
                st.to_string(),
                pts.iter()
                    .map(|p| p.finished.get(&st).copied().unwrap_or(0))
                    .collect(),
            )
        })
        .collect();
    SeriesView {
        queued: col(&|p| p.queued),
        queued_avg: colf(&|p| p.queued_avg),
        enqueued: col(&|p| p.enqueued),
        admitted: col(&|p| p.admitted),
        wait_p50_seconds: colo(&|p| seconds(p.wait_p50_ms)),
        wait_p90_seconds: colo(&|p| seconds(p.wait_p90_ms)),
        wait_p99_seconds: colo(&|p| seconds(p.wait_p99_ms)),
        wait_max_seconds: colo(&|p| seconds(p.wait_max_ms)),
        wait_mean_seconds: colo(&|p| p.wait_mean_ms.map(|v| v / 1000.0)),
        finished,
        active: col(&|p| p.active),
        active_avg: colf(&|p| p.active_avg),
        cpu_requested_cores: colf(&|p| p.cpu_milli as f64 / 1000.0),
        cpu_requested_avg_cores: colf(&|p| p.cpu_milli_avg / 1000.0),
        memory_requested_bytes: col(&|p| p.mem_mib.saturating_mul(MIB)),
        memory_requested_avg_bytes: colf(&|p| p.mem_mib_avg * MIB as f64),
        namespace: s.namespace,
        level: s.level,
    }
}

/// Time series per namespace and level over a time range, from the store.
#[utoipa::path(get, path = "/v1/history", params(HistoryParams),
    responses((status = 200, body = HistoryView), (status = 400, body = ErrorBody)))]
pub async fn history(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<HistoryParams>,
) -> Result<Json<HistoryView>, ApiError> {
    let q = resolve(&p, st.now_ms())?;
    let mut series = st.store.history(&q).await?;
    // Only the series of the caller's namespaces.
    series.retain(|s| caller.sees(&s.namespace));
    let n = q.buckets().unwrap_or(0);
    let buckets: Vec<String> = (0..n)
        .map(|i| rfc3339(q.from_ms + q.step_ms * i as i64))
        .collect();
    let cost = cost_series(&st, &caller, &q, n).await?;
    Ok(Json(HistoryView {
        from: rfc3339(q.from_ms),
        to: rfc3339(q.from_ms + q.step_ms * n as i64),
        step_seconds: q.step_ms as f64 / 1000.0,
        buckets,
        series: series.into_iter().map(series_view).collect(),
        cost,
    }))
}

/// The OpenAPI document of the history API (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(history),
    components(schemas(HistoryView, SeriesView, CostSeriesView))
)]
pub struct HistoryApiDoc;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/history", get(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_793_491_200_000 + 1_234_567; // 2026-11-01T00:20:34.567Z

    fn p(from: Option<&str>, to: Option<&str>, step: Option<&str>) -> HistoryParams {
        HistoryParams {
            from: from.map(String::from),
            to: to.map(String::from),
            step: step.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_the_last_day_in_minutes_or_more() {
        let q = resolve(&p(None, None, None), NOW).unwrap();
        assert_eq!(q.to_ms, NOW);
        // One day in at most 240 buckets: 15 minutes, aligned to the quarter hour.
        assert_eq!(q.step_ms, 900_000);
        assert_eq!(q.from_ms % 900_000, 0);
        assert!(q.from_ms <= NOW - DEFAULT_RANGE_MS);
        assert_eq!(q.buckets().unwrap(), 97);
    }

    #[test]
    fn explicit_range_and_step() {
        let q = resolve(
            &p(
                Some("2026-10-02T00:30:00Z"),
                Some("2026-11-01T00:00:00Z"),
                Some("1h"),
            ),
            NOW,
        )
        .unwrap();
        assert_eq!(q.step_ms, 3_600_000);
        // Rounded down to the hour.
        assert_eq!(rfc3339(q.from_ms), "2026-10-02T00:00:00.000Z");
        assert_eq!(q.buckets().unwrap(), 720);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (params, field) in [
            (p(Some("yesterday"), None, None), "`from`"),
            (p(None, Some("2026-13-01T00:00:00Z"), None), "`to`"),
            (p(None, None, Some("often")), "`step`"),
            (p(None, None, Some("10ms")), "`step`"),
            (
                p(
                    Some("2026-11-01T00:00:00Z"),
                    Some("2026-10-01T00:00:00Z"),
                    None,
                ),
                "`from`",
            ),
            (
                p(
                    Some("2025-11-01T00:00:00Z"),
                    Some("2026-11-01T00:00:00Z"),
                    Some("1m"),
                ),
                "`step`",
            ),
        ] {
            let e = resolve(&params, NOW).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }
}
