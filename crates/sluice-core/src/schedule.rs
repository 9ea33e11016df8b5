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

fn prefixed(e: SpecError, from: &str, to: &str) -> SpecError {
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
    let (job, policy) = spec::parse_own(serde_json::Value::Object(template), opts)
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
    let policy =
        spec::spark_application_policy(&app).map_err(|e| prefixed(e, "spec", "spec.template"))?;
    let job = spec::parse_spark_application(&app_text, app, opts)
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
mod tests {
    use super::*;
    use crate::spec::Levels;

    fn at(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        let tz: Tz = tz.parse().unwrap();
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    fn z(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        at("UTC", y, mo, d, h, mi)
    }

    fn cad(expr: &str, tz: &str) -> Cadence {
        Cadence::new(expr, tz, 0, "").unwrap()
    }

    const HOUR: i64 = 3_600_000;
    const MIN: i64 = 60_000;

    #[test]
    fn expressions() {
        let c = cad("0 2 * * *", "UTC");
        assert_eq!(c.next_after(z(2025, 1, 1, 0, 0)), Some(z(2025, 1, 1, 2, 0)));
        // Strictly after: a fire time equal to `after` is not next.
        assert_eq!(c.next_after(z(2025, 1, 1, 2, 0)), Some(z(2025, 1, 2, 2, 0)));
        assert_eq!(
            c.next_after(z(2025, 1, 1, 2, 0) + 500),
            Some(z(2025, 1, 2, 2, 0))
        );
        assert_eq!(
            c.latest_at_or_before(z(2025, 1, 1, 2, 0)),
            Some(z(2025, 1, 1, 2, 0))
        );
        // Six fields: seconds first.
        let c = cad("*/10 * * * * *", "UTC");
        assert_eq!(
            c.next_after(z(2025, 1, 1, 0, 0)),
            Some(z(2025, 1, 1, 0, 0) + 10_000)
        );
        // Nicknames.
        let c = cad("@hourly", "UTC");
        assert_eq!(
            c.upcoming(z(2025, 1, 1, 0, 30), 2),
            vec![z(2025, 1, 1, 1, 0), z(2025, 1, 1, 2, 0)]
        );
        let c = cad("@midnight", "UTC");
        assert_eq!(
            c.next_after(z(2025, 1, 1, 0, 30)),
            Some(z(2025, 1, 2, 0, 0))
        );
        // @every counts from its anchor.
        let anchor = z(2025, 1, 1, 0, 3);
        let c = Cadence::new("@every 10m", "Europe/Berlin", anchor, "").unwrap();
        assert_eq!(c.next_after(anchor - 1), Some(anchor));
        assert_eq!(c.next_after(anchor), Some(anchor + 10 * MIN));
        assert_eq!(
            c.latest_at_or_before(anchor + 25 * MIN),
            Some(anchor + 20 * MIN)
        );
        assert_eq!(
            c.upcoming(anchor, 3),
            vec![anchor + 10 * MIN, anchor + 20 * MIN, anchor + 30 * MIN]
        );
        for (bad, want) in [
            ("* * *", "3 fields"),
            ("0 0 0 1 1 * 2030", "7 fields"),
            ("61 * * * *", "not a cron expression"),
            ("@every soon", "@every DURATION"),
            ("@every 500ms", "at least one second"),
            ("0 0 30 2 *", "never matches"),
            ("@fortnightly", "not a cron expression"),
        ] {
            let e = Cadence::new(bad, "UTC", 0, "spec").unwrap_err().to_string();
            assert!(
                e.contains("spec.schedule") && e.contains(want),
                "{bad}: {e}"
            );
        }
        let e = Cadence::new("@daily", "Mars/Olympus", 0, "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeZone") && e.contains("Mars/Olympus"), "{e}");
        // Local is taken as UTC.
        assert_eq!(
            cad("0 2 * * *", "Local").next_after(0),
            cad("0 2 * * *", "UTC").next_after(0)
        );
    }

    #[test]
    fn time_zone_shifts_fire_times() {
        let c = cad("0 9 * * *", "America/New_York");
        // 09:00 EST = 14:00 UTC in January, 09:00 EDT = 13:00 UTC in July.
        assert_eq!(
            c.next_after(z(2025, 1, 10, 0, 0)),
            Some(z(2025, 1, 10, 14, 0))
        );
        assert_eq!(
            c.next_after(z(2025, 7, 10, 0, 0)),
            Some(z(2025, 7, 10, 13, 0))
        );
        assert_eq!(c.format(z(2025, 7, 10, 13, 0)), "2025-07-10T09:00:00-04:00");
    }

    /// The fire times of `c` during the local day `y-m-d` in `tz`.
    fn day_runs(c: &Cadence, tz: &str, y: i32, mo: u32, d: u32) -> Vec<i64> {
        let start = at(tz, y, mo, d, 0, 0);
        let next = chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|n| n.succ_opt())
            .unwrap();
        use chrono::Datelike;
        let end = at(tz, next.year(), next.month(), next.day(), 0, 0);
        let mut out = Vec::new();
        let mut t = start - 1;
        while let Some(n) = c.next_after(t) {
            if n >= end {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    #[test]
    fn dst_spring_forward_fixed_time_runs_once_after_the_gap() {
        // Berlin, 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let c = cad("30 2 * * *", "Europe/Berlin");
        let runs = day_runs(&c, "Europe/Berlin", 2025, 3, 30);
        assert_eq!(
            runs,
            vec![z(2025, 3, 30, 1, 0)],
            "once, at 03:00 CEST (01:00 UTC)"
        );
        assert_eq!(c.format(runs[0]), "2025-03-30T03:00:00+02:00");
        // The days around keep their 02:30.
        assert_eq!(
            day_runs(&c, "Europe/Berlin", 2025, 3, 29),
            vec![z(2025, 3, 29, 1, 30)]
        );
        assert_eq!(
            day_runs(&c, "Europe/Berlin", 2025, 3, 31),
            vec![z(2025, 3, 31, 0, 30)]
        );
        // A fixed time outside the gap is unaffected.
        let c = cad("30 3 * * *", "Europe/Berlin");
        assert_eq!(
            day_runs(&c, "Europe/Berlin", 2025, 3, 30),
            vec![z(2025, 3, 30, 1, 30)]
        );
    }

    #[test]
    fn dst_fall_back_fixed_time_runs_once_at_the_first_instant() {
        // Berlin, 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let c = cad("30 2 * * *", "Europe/Berlin");
        let runs = day_runs(&c, "Europe/Berlin", 2025, 10, 26);
        assert_eq!(runs, vec![z(2025, 10, 26, 0, 30)], "once, at 02:30 CEST");
        assert_eq!(c.format(runs[0]), "2025-10-26T02:30:00+02:00");
    }

    #[test]
    fn dst_interval_schedules_follow_real_time() {
        let c = cad("0 * * * *", "Europe/Berlin");
        let spring = day_runs(&c, "Europe/Berlin", 2025, 3, 30);
        assert_eq!(spring.len(), 23);
        let fall = day_runs(&c, "Europe/Berlin", 2025, 10, 26);
        assert_eq!(fall.len(), 25);
        // Every run is one real hour after the previous: none twice, none dropped.
        for w in spring.windows(2).chain(fall.windows(2)) {
            assert_eq!(w[1] - w[0], HOUR);
        }
        // @every ignores the zone entirely.
        let e = Cadence::new(
            "@every 1h",
            "Europe/Berlin",
            at("Europe/Berlin", 2025, 10, 26, 0, 0),
            "",
        )
        .unwrap();
        assert_eq!(day_runs(&e, "Europe/Berlin", 2025, 10, 26).len(), 25);
    }

    #[test]
    fn plan_on_time_and_not_yet() {
        let c = cad("0 * * * *", "UTC");
        let next = z(2025, 1, 1, 10, 0);
        let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, next - 1, MIN);
        assert_eq!(p.fire_for, None);
        assert_eq!(p.next_fire_at, Some(next));
        let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, next + 300, MIN);
        assert_eq!(p.fire_for, Some(next));
        assert!(!p.catch_up);
        assert_eq!(p.skipped, 0);
        assert_eq!(p.next_fire_at, Some(z(2025, 1, 1, 11, 0)));
    }

    #[test]
    fn plan_after_downtime() {
        // Down from 09:59 to 13:20: 10:00, 11:00, 12:00 and 13:00 were missed.
        let c = cad("0 * * * *", "UTC");
        let next = z(2025, 1, 1, 10, 0);
        let now = z(2025, 1, 1, 13, 20);
        let skip = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, now, MIN);
        assert_eq!(skip.fire_for, None);
        assert_eq!(skip.skipped, 4);
        assert_eq!(skip.skipped_range, Some((next, z(2025, 1, 1, 13, 0))));
        assert_eq!(skip.next_fire_at, Some(z(2025, 1, 1, 14, 0)));
        let once = plan_fire(&c, MissedRunPolicy::RunOnce, HOUR, next, now, MIN);
        assert_eq!(
            once.fire_for,
            Some(z(2025, 1, 1, 13, 0)),
            "one run, for the latest"
        );
        assert!(once.catch_up);
        assert_eq!(once.skipped, 3);
        assert_eq!(once.skipped_range, Some((next, z(2025, 1, 1, 12, 0))));
        assert_eq!(once.next_fire_at, Some(z(2025, 1, 1, 14, 0)));
        // Beyond the catch-up window: nothing is caught up.
        let old = plan_fire(&c, MissedRunPolicy::RunOnce, 10 * MIN, next, now, MIN);
        assert_eq!(old.fire_for, None);
        assert_eq!(old.skipped, 4);
        // Back just in time for a fire time: it runs on time under either policy; the earlier
        // missed ones are dropped.
        let now = z(2025, 1, 1, 13, 0) + 5_000;
        for policy in [MissedRunPolicy::Skip, MissedRunPolicy::RunOnce] {
            let p = plan_fire(&c, policy, HOUR, next, now, MIN);
            assert_eq!(p.fire_for, Some(z(2025, 1, 1, 13, 0)));
            assert!(!p.catch_up);
            assert_eq!(p.skipped, 3);
        }
        // A daily schedule down for a week, run-once with a 2-day window: one catch-up.
        let c = cad("0 2 * * *", "UTC");
        let p = plan_fire(
            &c,
            MissedRunPolicy::RunOnce,
            48 * HOUR,
            z(2025, 1, 1, 2, 0),
            z(2025, 1, 8, 9, 0),
            MIN,
        );
        assert_eq!(p.fire_for, Some(z(2025, 1, 8, 2, 0)));
        assert_eq!(p.skipped, 7);
        assert_eq!(p.next_fire_at, Some(z(2025, 1, 9, 2, 0)));
    }

    #[test]
    fn plan_counts_are_bounded() {
        let c = cad("* * * * * *", "UTC");
        let now = 10 * 86_400_000;
        let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, 0, now, 1000);
        assert_eq!(p.fire_for, Some(now));
        assert_eq!(p.skipped, MAX_COUNTED_MISSES);
        let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, 0, now + 1500, 100);
        assert_eq!(p.fire_for, None);
        assert_eq!(p.skipped, MAX_COUNTED_MISSES + 1);
    }

    #[test]
    fn concurrency() {
        let none: Vec<String> = vec![];
        let one = vec!["j1".to_string()];
        for p in [
            ConcurrencyPolicy::Allow,
            ConcurrencyPolicy::Forbid,
            ConcurrencyPolicy::Replace,
        ] {
            assert_eq!(concurrency_action(p, &none), ConcurrencyAction::Fire);
        }
        assert_eq!(
            concurrency_action(ConcurrencyPolicy::Allow, &one),
            ConcurrencyAction::Fire
        );
        match concurrency_action(ConcurrencyPolicy::Forbid, &one) {
            ConcurrencyAction::Skip { reason } => assert!(reason.contains("j1"), "{reason}"),
            a => panic!("{a:?}"),
        }
        assert_eq!(
            concurrency_action(ConcurrencyPolicy::Replace, &one),
            ConcurrencyAction::Replace {
                cancel: one.clone()
            }
        );
        assert_eq!(
            "forbid".parse::<ConcurrencyPolicy>(),
            Ok(ConcurrencyPolicy::Forbid)
        );
        assert!(
            "Sometimes"
                .parse::<ConcurrencyPolicy>()
                .unwrap_err()
                .contains("Allow, Forbid, Replace")
        );
    }

    fn parse(text: &str) -> Result<Schedule, SpecError> {
        parse_schedule(
            text,
            ParseOptions {
                priority: None,
                levels: &Levels::default(),
            },
            0,
        )
    }

    #[test]
    fn own_schedule_document() {
        let s = parse(
            "name: nightly\nnamespace: etl\nschedule: \"30 2 * * *\"\ntimeZone: Europe/Berlin\nconcurrencyPolicy: Forbid\nmissedRunPolicy: Skip\ncatchUpWindow: 2h\npriority: high\ntemplate:\n  labels: {team: data}\n  retry: {maxAttempts: 2}\n  command: {argv: [echo, hi]}\n",
        )
        .unwrap();
        assert_eq!((s.namespace.as_str(), s.name.as_str()), ("etl", "nightly"));
        assert_eq!(s.template.name, "nightly");
        assert_eq!(s.template.level, "high");
        assert_eq!(s.concurrency, ConcurrencyPolicy::Forbid);
        assert_eq!(s.missed_runs, MissedRunPolicy::Skip);
        assert_eq!(s.catch_up_window_secs, 7200);
        assert_eq!(s.policy.max_attempts(), 2);
        // Defaults.
        let s =
            parse("name: a\nschedule: \"@every 10m\"\ntemplate: {command: {argv: [ls]}}").unwrap();
        assert_eq!(s.namespace, "default");
        assert_eq!(s.time_zone, "UTC");
        assert_eq!(s.concurrency, ConcurrencyPolicy::Allow);
        assert_eq!(s.missed_runs, MissedRunPolicy::RunOnce);
        assert_eq!(s.catch_up_window_secs, DEFAULT_CATCH_UP_WINDOW_SECS);
        let bad: &[(&str, &str, &str)] = &[
            (
                "name: a\ntemplate: {command: {argv: [ls]}}",
                "`schedule`",
                "",
            ),
            ("name: a\nschedule: \"@daily\"", "`template`", ""),
            (
                "name: a\nschedule: \"@daily\"\nschedul: x\ntemplate: {command: {argv: [ls]}}",
                "`schedul`",
                "",
            ),
            (
                "name: a\nschedule: \"@daily\"\ntemplate: {command: {argv: [ls], memroy: 1g}}",
                "`template.command.memroy`",
                "",
            ),
            (
                "name: a\nschedule: \"@daily\"\ntemplate: {command: {argv: [ls], memory: 12qb}}",
                "`template.command.memory`",
                "12qb",
            ),
            (
                "name: a\nschedule: \"@daily\"\ntemplate: {retry: {maxAttempts: 0}, command: {argv: [ls]}}",
                "`template.retry.maxAttempts`",
                "0",
            ),
            (
                "name: a\nschedule: \"99 * * * *\"\ntemplate: {command: {argv: [ls]}}",
                "`schedule`",
                "99 * * * *",
            ),
            (
                "name: a\nschedule: \"@daily\"\ntimeZone: Nowhere/City\ntemplate: {command: {argv: [ls]}}",
                "`timeZone`",
                "Nowhere/City",
            ),
            (
                "name: a\nschedule: \"@daily\"\nconcurrencyPolicy: Sometimes\ntemplate: {command: {argv: [ls]}}",
                "`concurrencyPolicy`",
                "Sometimes",
            ),
            (
                "name: a\nschedule: \"@daily\"\nmissedRunPolicy: All\ntemplate: {command: {argv: [ls]}}",
                "`missedRunPolicy`",
                "All",
            ),
            (
                "name: a\nnamespace: x\nschedule: \"@daily\"\ntemplate: {namespace: other, command: {argv: [ls]}}",
                "`template.namespace`",
                "other",
            ),
            (
                "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}",
                "`kind`",
                "CronJob",
            ),
        ];
        for (text, field, value) in bad {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(field) && e.contains(value), "{text}: {e}");
        }
    }

    #[test]
    fn scheduled_spark_application() {
        let text = r#"
apiVersion: sparkoperator.k8s.io/v1beta2
kind: ScheduledSparkApplication
metadata:
  name: spark-pi-scheduled
  namespace: default
  labels: {sluice.io/priority: high}
  annotations: {sluice.io/missed-run-policy: Skip}
spec:
  schedule: "@every 3m"
  concurrencyPolicy: Replace
  timeZone: Europe/Paris
  successfulRunHistoryLimit: 3
  template:
    type: Python
    mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
    sparkVersion: 4.0.4
    image: docker.io/apache/spark:4.0.4
    restartPolicy: {type: OnFailure, onFailureRetries: 2, onFailureRetryInterval: 1}
    driver: {cores: 1, memory: 512m}
    executor: {cores: 1, instances: 1, memory: 512m}
"#;
        let s = parse(text).unwrap();
        assert_eq!(s.name, "spark-pi-scheduled");
        assert_eq!(s.cron, "@every 3m");
        assert_eq!(s.time_zone, "Europe/Paris");
        assert_eq!(s.concurrency, ConcurrencyPolicy::Replace);
        assert_eq!(s.missed_runs, MissedRunPolicy::Skip);
        assert_eq!(s.template.level, "high");
        assert_eq!(s.policy.max_attempts(), 3);
        let crate::spec::JobKind::Spark { application, .. } = &s.template.kind else {
            panic!("not spark")
        };
        let app = application.as_ref().unwrap();
        assert_eq!(app["kind"], "SparkApplication");
        assert_eq!(app["spec"]["image"], "docker.io/apache/spark:4.0.4");
        // Errors point into spec.template.
        let e = parse(&text.replace("memory: 512m}\n    executor", "memory: 12qb}\n    executor"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.template.driver.memory") && e.contains("12qb"),
            "{e}"
        );
        let e = parse(&text.replace("  schedule: \"@every 3m\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.schedule"), "{e}");
        // Default zone of a ScheduledSparkApplication is Local (read as UTC).
        let s = parse(&text.replace("  timeZone: Europe/Paris\n", "")).unwrap();
        assert_eq!(s.time_zone, "Local");
    }

    #[test]
    fn shipped_schedule_examples_parse() {
        let dir = format!("{}/../../examples/schedules", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 2, "expected schedule examples in {dir}");
    }
}
