//! Schedules: a job template fired on a cron expression in a time zone, with concurrency and
//! missed-run policies. Pure: every function takes the time it reasons about.
//!
//! ## Expressions
//! - cron with 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first),
//!   evaluated by the `croner` crate (POSIX/Vixie semantics plus `L`, `W`, `#`);
//! - `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
//! - `@every DURATION` (`@every 10m`, `@every 1h30m`, `@every 90s`): a fixed interval of real
//!   time, counted from the schedule's creation (its anchor); the time zone does not matter.
//!
//! ## Time zones and daylight saving time
//! A cron expression is read in its IANA time zone (`Europe/Berlin`; default `UTC`; `Local` is
//! taken as UTC, since sluice does not read the machine's zone). The rules at DST changes are
//! croner's, and they make each wall-clock time run once:
//! - **spring forward** (a wall-clock hour is skipped): a *fixed-time* expression (specific
//!   second, minute and hour, like `30 2 * * *`) whose time falls in the gap runs once, at the
//!   first instant after the gap (03:00 in Berlin); it neither runs twice nor is dropped.
//!   Interval expressions (a wildcard or step in the time fields, like `*/15 * * * *` or
//!   `@hourly`) have no wall-clock times in the gap, so an hourly schedule runs 23 times that day.
//! - **fall back** (a wall-clock hour repeats): a fixed-time expression runs once, at the first
//!   (earlier) of the two instants; an interval expression runs at both, following real time, so
//!   an hourly schedule runs 25 times that day.
//!
//! ## Missed runs
//! A fire time counts as on time when the server sees it at most `on_time_ms` late; later than
//! that it was missed (sluice was down). After downtime, [`plan_fire`] follows the schedule's
//! [`MissedRunPolicy`]: `Skip` drops every missed fire time; `RunOnce` runs one job for the
//! latest missed fire time if it is at most the catch-up window old, and drops the rest. Either
//! way at most one run starts per check, and the next fire time is the first one after now.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use crate::document;
use crate::retry::JobPolicy;
use crate::spec::{self, Job, ParseOptions, SpecError, Text, parse_duration_secs};

/// The label every run of a schedule carries, naming the schedule.
pub const SCHEDULE_LABEL: &str = "sluice.io/schedule";
/// The annotation (on a `ScheduledSparkApplication`) that sets the missed-run policy.
pub const MISSED_RUN_POLICY_KEY: &str = "sluice.io/missed-run-policy";
/// The annotation (on a `ScheduledSparkApplication`) that sets the catch-up window.
pub const CATCH_UP_WINDOW_KEY: &str = "sluice.io/catch-up-window";
/// Default catch-up window: a missed run older than this is not caught up.
pub const DEFAULT_CATCH_UP_WINDOW_SECS: u64 = 3600;
/// Most fire times [`plan_fire`] counts when reporting skipped runs.
pub const MAX_COUNTED_MISSES: u64 = 1000;

/// What happens when a fire time comes while an earlier run of the schedule is still active
/// (queued, admitted, submitted or running), as the Spark Operator's `concurrencyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ConcurrencyPolicy {
    /// Start the new run anyway.
    #[default]
    Allow,
    /// Skip the new run.
    Forbid,
    /// Cancel the active runs, then start the new one.
    Replace,
}

/// What happens to fire times missed while sluice was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MissedRunPolicy {
    /// Drop them.
    Skip,
    /// Run once, for the latest, if it is within the catch-up window.
    #[default]
    RunOnce,
}

macro_rules! named_enum {
    ($t:ty, $what:literal, [$($v:ident => $s:literal),*]) => {
        impl $t {
            /// The name used in documents, the API and the store.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            /// Case-insensitive.
            fn from_str(s: &str) -> Result<Self, String> {
                $(if s.trim().eq_ignore_ascii_case($s) { return Ok(Self::$v); })*
                Err(format!(concat!("is not a ", $what, " (expected {})"), [$($s),*].join(", ")))
            }
        }
    };
}

named_enum!(ConcurrencyPolicy, "concurrency policy", [Allow => "Allow", Forbid => "Forbid", Replace => "Replace"]);
named_enum!(MissedRunPolicy, "missed-run policy", [Skip => "Skip", RunOnce => "RunOnce"]);

/// Reads an IANA time zone name; `UTC` and `Local` (taken as UTC) included.
pub fn parse_time_zone(field: &str, name: &str) -> Result<Tz, SpecError> {
    let n = name.trim();
    if n.is_empty() || n.eq_ignore_ascii_case("local") || n.eq_ignore_ascii_case("utc") {
        return Ok(Tz::UTC);
    }
    n.parse::<Tz>().map_err(|_| SpecError::BadValue {
        field: field.into(),
        value: name.into(),
        message: "is not an IANA time zone (like UTC, Europe/Berlin, America/New_York)".into(),
    })
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    Every { every_ms: i64, anchor_ms: i64 },
}

/// A compiled schedule expression in its time zone: computes fire times.
#[derive(Debug, Clone)]
pub struct Cadence {
    kind: Kind,
    tz: Tz,
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

impl Cadence {
    /// Compiles `expr` in the zone `tz`; `anchor_ms` is where `@every` intervals count from.
    /// Errors name the fields `schedule` and `timeZone` (prefixed with `p` when not empty).
    pub fn new(expr: &str, tz: &str, anchor_ms: i64, p: &str) -> Result<Cadence, SpecError> {
        let field = |f: &str| {
            if p.is_empty() {
                f.to_string()
            } else {
                format!("{p}.{f}")
            }
        };
        let tz = parse_time_zone(&field("timeZone"), tz)?;
        let e = expr.trim();
        let bad = |message: String| SpecError::BadValue {
            field: field("schedule"),
            value: expr.into(),
            message,
        };
        if let Some(rest) = e.strip_prefix("@every") {
            let ms = crate::retry::parse_duration_ms("", rest.trim()).map_err(|_| {
                bad("is not `@every DURATION` (like @every 10m, @every 1h30m)".into())
            })?;
            let every_ms = i64::try_from(ms).map_err(|_| bad("is too long an interval".into()))?;
            if every_ms < 1000 {
                return Err(bad("must be at least one second apart".into()));
            }
            return Ok(Cadence {
                kind: Kind::Every {
                    every_ms,
                    anchor_ms,
                },
                tz,
            });
        }
        let e = if e.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            e
        };
        let fields = e.split_whitespace().count();
        if !e.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(bad(format!(
                "has {fields} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(e)
            .map_err(|err| bad(format!("is not a cron expression: {err}")))?;
        let c = Cadence {
            kind: Kind::Cron(Box::new(cron)),
            tz,
        };
        // An expression that never matches (like 30 February) is refused now, not at fire time.
        if c.next_after(anchor_ms).is_none() {
            return Err(bad("never matches a real date".into()));
        }
        Ok(c)
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `after_ms` (None if there is none).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every {
                every_ms,
                anchor_ms,
            } => {
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                let k = (after_ms - anchor_ms) / every_ms + 1;
                anchor_ms.checked_add(k.checked_mul(*every_ms)?)
            }
            Kind::Cron(cron) => {
                // croner works in whole seconds: a fire time at or before `after_ms` is not next.
                let secs = after_ms.div_euclid(1000) * 1000;
                let from = utc(secs)?.with_timezone(&self.tz);
                let next = cron.find_next_occurrence(&from, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The latest fire time at or before `at_ms` (None if there is none).
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every {
                every_ms,
                anchor_ms,
            } => {
                if at_ms < *anchor_ms {
                    return None;
                }
                let k = (at_ms - anchor_ms) / every_ms;
                anchor_ms.checked_add(k.checked_mul(*every_ms)?)
            }
            Kind::Cron(cron) => {
                let secs = at_ms.div_euclid(1000) * 1000;
                let from = utc(secs)?.with_timezone(&self.tz);
                let prev = cron.find_previous_occurrence(&from, true).ok()?;
                Some(prev.timestamp_millis())
            }
        }
    }

    /// The next `n` fire times strictly after `after_ms`.
    pub fn upcoming(&self, after_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut t = after_ms;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) if next > t => {
                    out.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        out
    }

    /// `ms` as RFC 3339 in this cadence's time zone (`2025-03-30T03:00:00+02:00`).
    pub fn format(&self, ms: i64) -> String {
        match utc(ms) {
            Some(t) => t.with_timezone(&self.tz).to_rfc3339(),
            None => ms.to_string(),
        }
    }
}

/// What one check of a due schedule should do, from [`plan_fire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirePlan {
    /// The fire time a run should stand for, if one should start now.
    pub fire_for: Option<i64>,
    /// True when that run is a catch-up of a fire time missed during downtime.
    pub catch_up: bool,
    /// Fire times dropped (counted up to [`MAX_COUNTED_MISSES`]).
    pub skipped: u64,
    /// The earliest and latest dropped fire times.
    pub skipped_range: Option<(i64, i64)>,
    /// The next fire time to wait for (None: the expression has no more).
    pub next_fire_at: Option<i64>,
}

/// Decides what a schedule whose next fire time is `next_fire_at` does at `now`. See the module
/// documentation for the rules. Nothing is due (no run, nothing skipped, same next fire time)
/// while `now < next_fire_at`.
pub fn plan_fire(
    cadence: &Cadence,
    missed: MissedRunPolicy,
    catch_up_window_ms: i64,
    next_fire_at: i64,
    now: i64,
    on_time_ms: i64,
) -> FirePlan {
    if now < next_fire_at {
        return FirePlan {
            fire_for: None,
            catch_up: false,
            skipped: 0,
            skipped_range: None,
            next_fire_at: Some(next_fire_at),
        };
    }
    let latest = cadence
        .latest_at_or_before(now)
        .filter(|l| *l >= next_fire_at)
        .unwrap_or(next_fire_at);
    // Fire times before the latest one that was due: never run (at most one run per check).
    let mut earlier = 0u64;
    let mut t = next_fire_at;
    while t < latest && earlier < MAX_COUNTED_MISSES {
        earlier += 1;
        match cadence.next_after(t) {
            Some(n) if n > t => t = n,
            _ => break,
        }
    }
    let late_by = now - latest;
    let (fire_for, catch_up) = if late_by <= on_time_ms {
        (Some(latest), false)
    } else {
        match missed {
            MissedRunPolicy::Skip => (None, false),
            MissedRunPolicy::RunOnce if late_by <= catch_up_window_ms => (Some(latest), true),
            MissedRunPolicy::RunOnce => (None, false),
        }
    };
    let skipped = earlier + u64::from(fire_for.is_none());
    let skipped_range = (skipped > 0).then(|| {
        let last = if fire_for.is_none() {
            latest
        } else {
            cadence
                .latest_at_or_before(latest - 1)
                .unwrap_or(next_fire_at)
        };
        (next_fire_at, last.max(next_fire_at))
    });
    FirePlan {
        fire_for,
        catch_up,
        skipped,
        skipped_range,
        next_fire_at: cadence.next_after(now),
    }
}

/// What a due fire does about the schedule's still-active runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcurrencyAction {
    /// Start the new run.
    Fire,
    /// Do not start it (Forbid with active runs).
    Skip {
        /// Why, for the schedule's status.
        reason: String,
    },
    /// Cancel these runs, then start the new one.
    Replace {
        /// The active runs to cancel.
        cancel: Vec<String>,
    },
}

/// The concurrency decision for a fire with `active` runs of the schedule still active.
pub fn concurrency_action(policy: ConcurrencyPolicy, active: &[String]) -> ConcurrencyAction {
    if active.is_empty() {
        return ConcurrencyAction::Fire;
    }
    match policy {
        ConcurrencyPolicy::Allow => ConcurrencyAction::Fire,
        ConcurrencyPolicy::Forbid => ConcurrencyAction::Skip {
            reason: format!(
                "skipped (concurrencyPolicy Forbid): previous run {} still active",
                active.join(", ")
            ),
        },
        ConcurrencyPolicy::Replace => ConcurrencyAction::Replace {
            cancel: active.to_vec(),
        },
    }
}

/// A validated schedule document.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Namespace (the template's).
    pub namespace: String,
    /// Name, unique within the namespace.
    pub name: String,
    /// The expression as written.
    pub cron: String,
    /// The IANA zone name (`UTC` when none was given).
    pub time_zone: String,
    /// Concurrency policy.
    pub concurrency: ConcurrencyPolicy,
    /// Missed-run policy.
    pub missed_runs: MissedRunPolicy,
    /// Catch-up window for [`MissedRunPolicy::RunOnce`], in seconds.
    pub catch_up_window_secs: u64,
    /// Created suspended.
    pub suspend: bool,
    /// The job every run is made from.
    pub template: Job,
    /// The template's retry policy and queue TTL.
    pub policy: JobPolicy,
}

impl Schedule {
    /// The compiled expression, anchored at `anchor_ms` (the schedule's creation time).
    pub fn cadence(&self, anchor_ms: i64) -> Result<Cadence, SpecError> {
        Cadence::new(&self.cron, &self.time_zone, anchor_ms, "")
    }
}

/// sluice's own schedule document, as written.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScheduleDoc {
    name: Option<String>,
    namespace: Option<String>,
    schedule: Option<String>,
    time_zone: Option<String>,
    concurrency_policy: Option<String>,
    missed_run_policy: Option<String>,
    catch_up_window: Option<String>,
    suspend: Option<bool>,
    priority: Option<String>,
    template: Option<serde_json::Value>,
}

pub(crate) fn prefixed(e: SpecError, from: &str, to: &str) -> SpecError {
    let fix = |f: String| -> String {
        if from.is_empty() {
            if f.is_empty() {
                to.to_string()
            } else {
                format!("{to}.{f}")
            }
        } else if f == from {
            to.to_string()
        } else if let Some(rest) = f.strip_prefix(&format!("{from}.")) {
            format!("{to}.{rest}")
        } else {
            f
        }
    };
    match e {
        SpecError::BadType { field, message } => SpecError::BadType {
            field: fix(field),
            message,
        },
        SpecError::UnknownField { field } => SpecError::UnknownField { field: fix(field) },
        SpecError::Missing { field, hint } => SpecError::Missing {
            field: fix(field),
            hint,
        },
        SpecError::BadValue {
            field,
            value,
            message,
        } => SpecError::BadValue {
            field: fix(field),
            value,
            message,
        },
        other => other,
    }
}

fn enum_field<T: FromStr<Err = String>>(
    field: &str,
    v: Option<&str>,
) -> Result<Option<T>, SpecError> {
    v.map(|s| {
        s.parse::<T>().map_err(|message| SpecError::BadValue {
            field: field.into(),
            value: s.into(),
            message,
        })
    })
    .transpose()
}

/// Parses and validates a schedule: sluice's own document or a Spark Operator
/// `ScheduledSparkApplication` (`sparkoperator.k8s.io/*`). The expression is compiled (so a
/// bad one is refused now) with `anchor_ms` as its anchor.
pub fn parse_schedule(
    text: &str,
    opts: ParseOptions<'_>,
    anchor_ms: i64,
) -> Result<Schedule, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Malformed("the document is empty".into()));
    }
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| SpecError::Malformed(e.to_string()))?;
    // NUL and other control characters are refused anywhere, naming the path.
    spec::check_document_text(&value, "")?;
    let obj = value
        .as_object()
        .ok_or_else(|| SpecError::Malformed("expected a mapping at the top level".to_string()))?;
    let api = obj.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = obj.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let sched = if api.starts_with("sparkoperator.k8s.io/") && kind == "ScheduledSparkApplication" {
        parse_scheduled_spark_application(api, &value, opts)?
    } else if obj.contains_key("apiVersion") || obj.contains_key("kind") {
        return Err(SpecError::BadValue {
            field: "kind".into(),
            value: format!("{api}/{kind}"),
            message: "is not a schedule (expected sluice's own schedule document or a sparkoperator.k8s.io/v1beta2 ScheduledSparkApplication)".into(),
        });
    } else {
        parse_own_schedule(value, opts)?
    };
    sched.cadence(anchor_ms)?;
    Ok(sched)
}

fn parse_own_schedule(
    value: serde_json::Value,
    opts: ParseOptions<'_>,
) -> Result<Schedule, SpecError> {
    let mut unknown = Vec::new();
    let doc: ScheduleDoc = spec::decode(&value, "", Some(&mut unknown))?;
    if let Some(field) = unknown.into_iter().next() {
        return Err(SpecError::UnknownField { field });
    }
    let name = spec::required_name(doc.name.as_deref(), "name")?;
    let cron = doc
        .schedule
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| SpecError::Missing {
            field: "schedule".into(),
            hint: "a cron expression (\"0 2 * * *\"), @hourly/@daily, or @every 10m".into(),
        })?;
    let mut template = match doc.template {
        Some(serde_json::Value::Object(m)) => m,
        Some(other) => {
            return Err(SpecError::BadType {
                field: "template".into(),
                message: format!("expected a job spec (a mapping), got {other}"),
            });
        }
        None => {
            return Err(SpecError::Missing {
                field: "template".into(),
                hint: "the job spec every run is made from (like a job file, without the name)"
                    .into(),
            });
        }
    };
    if let Some(ns) = &doc.namespace {
        spec::namespace_of(Some(ns), "namespace")?;
        match template.get("namespace") {
            Some(t) if t.as_str() != Some(ns.as_str()) => {
                return Err(SpecError::BadValue {
                    field: "template.namespace".into(),
                    value: t.as_str().map_or_else(|| t.to_string(), str::to_string),
                    message: format!("differs from the schedule's namespace {ns:?}"),
                });
            }
            _ => {
                template.insert("namespace".into(), ns.clone().into());
            }
        }
    }
    template
        .entry("name")
        .or_insert_with(|| serde_json::Value::String(name.clone()));
    if let Some(p) = &doc.priority {
        template
            .entry("priority")
            .or_insert_with(|| serde_json::Value::String(p.clone()));
    }
    let (job, policy) = document::parse_own(serde_json::Value::Object(template), opts)
        .map_err(|e| prefixed(e, "", "template"))?;
    let catch_up_window_secs = doc
        .catch_up_window
        .as_deref()
        .map(|t| parse_duration_secs("catchUpWindow", t))
        .transpose()?
        .unwrap_or(DEFAULT_CATCH_UP_WINDOW_SECS);
    Ok(Schedule {
        namespace: job.namespace.clone(),
        name,
        cron,
        time_zone: doc.time_zone.unwrap_or_else(|| "UTC".into()),
        concurrency: enum_field("concurrencyPolicy", doc.concurrency_policy.as_deref())?
            .unwrap_or_default(),
        missed_runs: enum_field("missedRunPolicy", doc.missed_run_policy.as_deref())?
            .unwrap_or_default(),
        catch_up_window_secs,
        suspend: doc.suspend.unwrap_or(false),
        template: job,
        policy,
    })
}

fn parse_scheduled_spark_application(
    api: &str,
    value: &serde_json::Value,
    opts: ParseOptions<'_>,
) -> Result<Schedule, SpecError> {
    let meta = value
        .get("metadata")
        .cloned()
        .unwrap_or(serde_json::Value::Object(Default::default()));
    let name = spec::required_name(meta.get("name").and_then(|v| v.as_str()), "metadata.name")?;
    let namespace = spec::namespace_of(
        meta.get("namespace").and_then(|v| v.as_str()),
        "metadata.namespace",
    )?;
    let s = value.get("spec").ok_or_else(|| SpecError::Missing {
        field: "spec".into(),
        hint: "a ScheduledSparkApplication needs a spec with schedule and template".into(),
    })?;
    let text_of = |field: &str| -> Result<Option<String>, SpecError> {
        match s.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(v)) => Ok(Some(v.clone())),
            Some(other) => Err(SpecError::BadType {
                field: format!("spec.{field}"),
                message: format!("expected a string, got {other}"),
            }),
        }
    };
    let cron = text_of("schedule")?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| SpecError::Missing {
            field: "spec.schedule".into(),
            hint: "a cron expression, like \"@every 10m\" or \"0 2 * * *\"".into(),
        })?;
    let template = s.get("template").ok_or_else(|| SpecError::Missing {
        field: "spec.template".into(),
        hint: "the SparkApplication spec every run is made from".into(),
    })?;
    let suspend = match s.get("suspend") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => {
            return Err(SpecError::BadType {
                field: "spec.suspend".into(),
                message: format!("expected true or false, got {other}"),
            });
        }
    };
    let annotations: BTreeMap<String, Text> = match meta.get("annotations") {
        Some(a) => spec::decode(a, "metadata.annotations", None)?,
        None => BTreeMap::new(),
    };
    let ann = |k: &str| annotations.get(k).map(|t| t.as_str().to_string());
    // Each run is the SparkApplication the operator would create: the template with the
    // schedule's metadata.
    let mut app_meta = serde_json::Map::new();
    app_meta.insert("name".into(), name.clone().into());
    app_meta.insert("namespace".into(), namespace.clone().into());
    for key in ["labels", "annotations"] {
        if let Some(v) = meta.get(key) {
            app_meta.insert(key.into(), v.clone());
        }
    }
    let app = serde_json::json!({
        "apiVersion": api,
        "kind": "SparkApplication",
        "metadata": app_meta,
        "spec": template,
    });
    let app_text = serde_json::to_string_pretty(&app)
        .map_err(|e| SpecError::Malformed(format!("re-encoding the template: {e}")))?;
    let policy = document::spark_application_policy(&app)
        .map_err(|e| prefixed(e, "spec", "spec.template"))?;
    let job = document::parse_spark_application(&app_text, app, opts)
        .map_err(|e| prefixed(e, "spec", "spec.template"))?;
    Ok(Schedule {
        namespace,
        name,
        cron,
        time_zone: text_of("timeZone")?.unwrap_or_else(|| "Local".into()),
        concurrency: enum_field(
            "spec.concurrencyPolicy",
            text_of("concurrencyPolicy")?.as_deref(),
        )?
        .unwrap_or_default(),
        missed_runs: enum_field(
            &format!("metadata.annotations.{MISSED_RUN_POLICY_KEY}"),
            ann(MISSED_RUN_POLICY_KEY).as_deref(),
        )?
        .unwrap_or_default(),
        catch_up_window_secs: ann(CATCH_UP_WINDOW_KEY)
            .map(|t| {
                parse_duration_secs(&format!("metadata.annotations.{CATCH_UP_WINDOW_KEY}"), &t)
            })
            .transpose()?
            .unwrap_or(DEFAULT_CATCH_UP_WINDOW_SECS),
        suspend,
        template: job,
        policy,
    })
}

/// A schedule to insert (see `Store::create_schedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSchedule {
    /// Namespace.
    pub namespace: String,
    /// Name (unique within the namespace).
    pub name: String,
    /// The expression.
    pub cron: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Concurrency policy.
    pub concurrency: ConcurrencyPolicy,
    /// Missed-run policy.
    pub missed_runs: MissedRunPolicy,
    /// Catch-up window in seconds.
    pub catch_up_window_secs: u64,
    /// Whether it starts suspended.
    pub suspended: bool,
    /// Priority level of its runs.
    pub level: String,
    /// The template in stored form (the job plus its policy, as a job's spec JSON).
    pub template: serde_json::Value,
    /// The document as submitted.
    pub source: String,
    /// Creation time (also the `@every` anchor).
    pub created_at_ms: i64,
    /// The first fire time (None when suspended or the expression has none).
    pub next_fire_at_ms: Option<i64>,
}

/// A schedule as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The expression.
    pub cron: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Concurrency policy.
    pub concurrency: ConcurrencyPolicy,
    /// Missed-run policy.
    pub missed_runs: MissedRunPolicy,
    /// Catch-up window in seconds.
    pub catch_up_window_secs: u64,
    /// Suspended: no fire times are computed or run.
    pub suspended: bool,
    /// Priority level of its runs.
    pub level: String,
    /// The template in stored form.
    pub template: serde_json::Value,
    /// The document as submitted.
    pub source: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// The next fire time, if any.
    pub next_fire_at_ms: Option<i64>,
    /// When a run was last started (by a fire or a trigger).
    pub last_fire_at_ms: Option<i64>,
    /// The last run started.
    pub last_job_id: Option<String>,
    /// What the last check did ("started run X", "skipped ...").
    pub last_message: Option<String>,
}

impl ScheduleRecord {
    /// The compiled expression.
    pub fn cadence(&self) -> Result<Cadence, SpecError> {
        Cadence::new(&self.cron, &self.time_zone, self.created_at_ms, "")
    }
}

#[cfg(test)]
mod tests;
