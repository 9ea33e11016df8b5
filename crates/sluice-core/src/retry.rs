//! Retries: failure classes, per-job retry policies, exponential backoff with a cap and
//! deterministic jitter, and the OOM memory raise.
//!
//! Pure: the caller passes the facts of a failed attempt (exit code, message, a piece of the
//! driver log) and a seed; the same inputs always give the same decision.
//!
//! A job's policy ([`JobPolicy`]) comes from its spec (`retry`, `maxQueueWait`) and is kept in the
//! stored spec JSON under the key [`POLICY_KEY`], next to the [`Job`] fields.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::job::Demand;
pub use crate::spec::{BackoffSpec, RetrySpec};
use crate::spec::{Job, JobKind, SpecError, Text, factor_field, mem_field};

/// Key of the [`JobPolicy`] in a job's stored spec JSON.
pub const POLICY_KEY: &str = "policy";

/// Message prefix the submitter writes when sluice killed a run for exceeding `maxRuntime`.
pub const TIMEOUT_PREFIX: &str = "timeout:";
/// Message prefix the submitter writes when the backend refused a job.
pub const SUBMISSION_PREFIX: &str = "submission failed";
/// Message the submitter writes when a stored spec no longer decodes (a submission failure).
pub const UNDECODABLE_PREFIX: &str = "the stored spec no longer decodes";
/// Message prefix the reconciler writes for a run that vanished.
pub const LOST_PREFIX: &str = "lost:";
/// What the JVM prints when a heap is exhausted.
pub const JAVA_OOM: &str = "java.lang.OutOfMemoryError";
/// What Kubernetes reports for a container killed by the OOM killer.
pub const K8S_OOM: &str = "OOMKilled";

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// The backend refused the job (submission failed).
    Submission,
    /// The application failed: a non-zero exit code, a FAILED Spark application.
    Application,
    /// Out of memory: exit code 137, OOMKilled, or `java.lang.OutOfMemoryError` in the driver log.
    Oom,
    /// Killed from outside (a signal sluice did not send, a run that vanished).
    Watchdog,
    /// Killed by sluice for running longer than `maxRuntime`.
    Timeout,
}

impl FailureClass {
    /// Every class.
    pub const ALL: [FailureClass; 5] = [
        FailureClass::Submission,
        FailureClass::Application,
        FailureClass::Oom,
        FailureClass::Watchdog,
        FailureClass::Timeout,
    ];

    /// The lowercase name used in specs, the API and the store.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureClass::Submission => "submission",
            FailureClass::Application => "application",
            FailureClass::Oom => "oom",
            FailureClass::Watchdog => "watchdog",
            FailureClass::Timeout => "timeout",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure class name that is not one of [`FailureClass::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown failure class {0:?} (expected one of submission, application, oom, watchdog, timeout)"
)]
pub struct UnknownClass(pub String);

impl FromStr for FailureClass {
    type Err = UnknownClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownClass(s.to_string()))
    }
}

/// The facts of a failed attempt, as the server knows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureFacts<'a> {
    /// The job's last message (what the submitter or reconciler wrote).
    pub message: &'a str,
    /// The run's exit code, if any.
    pub exit_code: Option<i32>,
    /// The end of the run's (driver) log, if it could be read.
    pub log_tail: &'a str,
}

/// Classifies a failed attempt. Rules, first match wins:
/// 1. message starts with [`TIMEOUT_PREFIX`]: [`FailureClass::Timeout`];
/// 2. message starts with [`SUBMISSION_PREFIX`] or [`UNDECODABLE_PREFIX`]: [`FailureClass::Submission`];
/// 3. exit code 137, [`K8S_OOM`] in the message, or [`JAVA_OOM`] in the message or log tail:
///    [`FailureClass::Oom`];
/// 4. message starts with [`LOST_PREFIX`], or the run was killed by a signal (no exit code and
///    "killed by" in the message, or an exit code 129-191 other than 137): [`FailureClass::Watchdog`];
/// 5. anything else: [`FailureClass::Application`].
pub fn classify(f: &FailureFacts<'_>) -> FailureClass {
    let m = f.message.trim_start();
    // The reconciler writes "failed: <backend message>".
    let inner = m.strip_prefix("failed:").map(str::trim_start).unwrap_or(m);
    if m.starts_with(TIMEOUT_PREFIX) {
        return FailureClass::Timeout;
    }
    if m.starts_with(SUBMISSION_PREFIX) || m.starts_with(UNDECODABLE_PREFIX) {
        return FailureClass::Submission;
    }
    if f.exit_code == Some(137)
        || m.contains(K8S_OOM)
        || m.contains(JAVA_OOM)
        || f.log_tail.contains(JAVA_OOM)
    {
        return FailureClass::Oom;
    }
    let signalled = match f.exit_code {
        Some(c) => (129..=191).contains(&c),
        None => inner.starts_with("killed by"),
    };
    if m.starts_with(LOST_PREFIX) || signalled {
        return FailureClass::Watchdog;
    }
    FailureClass::Application
}

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds.
    pub backoff_initial_ms: u64,
    /// Longest delay, in milliseconds (applied after jitter).
    pub backoff_max_ms: u64,
    /// Growth factor per retry.
    pub backoff_factor: f64,
    /// Jitter fraction, 0 to 1.
    pub jitter: f64,
    /// The classes that are retried.
    pub retry_on: Vec<FailureClass>,
    /// Memory factor for a retry after an OOM failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_memory_factor: Option<f64>,
    /// Cap of an OOM raise, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_memory_cap_mib: Option<u64>,
}

/// Default attempts when `retry` is given without `maxAttempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default first backoff.
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 10_000;
/// Default backoff cap.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 600_000;
/// Default backoff factor.
pub const DEFAULT_BACKOFF_FACTOR: f64 = 2.0;
/// Default jitter fraction.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Most attempts a policy may ask for.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// Orchestration settings of one job: its retry policy and its time-to-live in the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobPolicy {
    /// How failed attempts are retried; none means one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// A job that waited longer than this in its queue is dead-lettered ("expired in queue").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_wait_secs: Option<u64>,
}

impl JobPolicy {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.retry.is_none() && self.max_queue_wait_secs.is_none()
    }

    /// How many attempts a round of this job may make.
    pub fn max_attempts(&self) -> u32 {
        self.retry.as_ref().map_or(1, |r| r.max_attempts)
    }
}

/// Parses a duration in milliseconds, greater than zero, in the grammar of
/// [`crate::duration`] (`250ms`, `10s`, `1m30s`, `1h 30m`, `2h`, a bare number of seconds).
pub fn parse_duration_ms(field: &str, text: &str) -> Result<u64, SpecError> {
    let d = crate::duration::parse_positive(field, text)?;
    u64::try_from(d.as_millis()).map_err(|_| SpecError::BadValue {
        field: field.into(),
        value: text.into(),
        message: "is too long a duration".into(),
    })
}

impl RetrySpec {
    /// Validates and fills in defaults. `p` is the path of the `retry` field, for messages.
    pub fn resolve(&self, p: &str) -> Result<RetryPolicy, SpecError> {
        let bad = |field: &str, value: &dyn fmt::Display, message: &str| SpecError::BadValue {
            field: format!("{p}.{field}"),
            value: value.to_string(),
            message: message.into(),
        };
        let max_attempts = match self.max_attempts {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(n) if n >= 1 && n <= i64::from(MAX_ATTEMPTS_LIMIT) => n as u32,
            Some(n) => {
                return Err(bad(
                    "maxAttempts",
                    &n,
                    &format!(
                        "must be between 1 and {MAX_ATTEMPTS_LIMIT} (the first attempt counts)"
                    ),
                ));
            }
        };
        let b = self.backoff.clone().unwrap_or_default();
        let initial = match &b.initial {
            Some(t) => parse_duration_ms(&format!("{p}.backoff.initial"), t)?,
            None => DEFAULT_BACKOFF_INITIAL_MS,
        };
        let max = match &b.max {
            Some(t) => parse_duration_ms(&format!("{p}.backoff.max"), t)?,
            None => DEFAULT_BACKOFF_MAX_MS.max(initial),
        };
        if max < initial {
            return Err(bad(
                "backoff.max",
                &b.max.clone().unwrap_or_default(),
                "must not be less than backoff.initial",
            ));
        }
        let factor = match &b.factor {
            Some(t) => {
                let f = factor_field(&format!("{p}.backoff.factor"), t.as_str())?;
                if f < 1.0 {
                    return Err(bad("backoff.factor", t, "must be at least 1"));
                }
                f
            }
            None => DEFAULT_BACKOFF_FACTOR,
        };
        let jitter = match &self.jitter {
            Some(t) => match t.as_str().trim().parse::<f64>() {
                Ok(j) if (0.0..=1.0).contains(&j) => j,
                _ => return Err(bad("jitter", t, "must be a number from 0 to 1 (like 0.2)")),
            },
            None => DEFAULT_JITTER,
        };
        let retry_on = match &self.retry_on {
            None => FailureClass::ALL.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    let c: FailureClass =
                        name.parse()
                            .map_err(|e: UnknownClass| SpecError::BadValue {
                                field: format!("{p}.retryOn[{i}]"),
                                value: name.clone(),
                                message: e.to_string().replace(&format!("{name:?} "), ""),
                            })?;
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                out.sort();
                out
            }
        };
        let oom_memory_factor = match &self.oom_memory_factor {
            Some(t) => {
                let f = factor_field(&format!("{p}.oomMemoryFactor"), t.as_str())?;
                if f <= 1.0 {
                    return Err(bad(
                        "oomMemoryFactor",
                        t,
                        "must be greater than 1 (like 1.5)",
                    ));
                }
                Some(f)
            }
            None => None,
        };
        let oom_memory_cap_mib = self
            .oom_memory_cap
            .as_ref()
            .map(|t| mem_field(&format!("{p}.oomMemoryCap"), t.as_str()))
            .transpose()?;
        Ok(RetryPolicy {
            max_attempts,
            backoff_initial_ms: initial,
            backoff_max_ms: max,
            backoff_factor: factor,
            jitter,
            retry_on,
            oom_memory_factor,
            oom_memory_cap_mib,
        })
    }
}

/// A deterministic seed for the jitter of one retry: FNV-1a over the job id and the attempt.
pub fn jitter_seed(job_id: &str, attempt: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job_id.bytes().chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A number in [0, 1) from a seed (splitmix64's finaliser).
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The delay before retry number `retry` (1 for the first retry):
/// `min(max, initial x factor^(retry-1))`, spread by the jitter over `x (1 +- jitter)` with a
/// number drawn from `seed`, and capped at `max` again.
pub fn backoff_delay_ms(p: &RetryPolicy, retry: u32, seed: u64) -> u64 {
    let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let max = p.backoff_max_ms as f64;
    let base = (p.backoff_initial_ms as f64 * p.backoff_factor.powi(exp)).min(max);
    let spread = 1.0 + p.jitter * (2.0 * unit(seed) - 1.0);
    (base * spread).clamp(0.0, max).round() as u64
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run again after `delay_ms`.
    Retry {
        /// The next attempt's number within this round (2 for the first retry).
        next_attempt_in_round: u32,
        /// How long to wait.
        delay_ms: u64,
        /// Whether to raise memory first (an OOM failure with `oomMemoryFactor`).
        raise_memory: Option<(f64, Option<u64>)>,
    },
    /// Stop: the job is dead-lettered with this reason.
    GiveUp {
        /// Why no retry.
        reason: String,
    },
}

/// Decides whether attempt `attempt_in_round` (1-based within the current round) that failed
/// with `class` is retried under `policy`.
pub fn decide(
    policy: &JobPolicy,
    class: FailureClass,
    attempt_in_round: u32,
    seed: u64,
) -> Decision {
    let Some(p) = &policy.retry else {
        return Decision::GiveUp {
            reason: "no retry policy (one attempt)".into(),
        };
    };
    if !p.retry_on.contains(&class) {
        let on: Vec<&str> = p.retry_on.iter().map(FailureClass::as_str).collect();
        return Decision::GiveUp {
            reason: format!(
                "{class} failures are not retried (retryOn: {})",
                if on.is_empty() {
                    "none".to_string()
                } else {
                    on.join(", ")
                }
            ),
        };
    }
    if attempt_in_round >= p.max_attempts {
        return Decision::GiveUp {
            reason: format!(
                "attempt limit reached ({attempt_in_round} of {})",
                p.max_attempts
            ),
        };
    }
    Decision::Retry {
        next_attempt_in_round: attempt_in_round + 1,
        delay_ms: backoff_delay_ms(p, attempt_in_round, seed),
        raise_memory: match (class, p.oom_memory_factor) {
            (FailureClass::Oom, Some(f)) => Some((f, p.oom_memory_cap_mib)),
            _ => None,
        },
    }
}

/// A job with more memory after an OOM failure, its new demand and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// The job with raised memory.
    pub job: Job,
    /// Its demand, recomputed by the sizing rules.
    pub demand: Demand,
    /// What changed, for the timeline ("memory 64 MiB -> 128 MiB").
    pub change: String,
}

fn raise(cur: u64, factor: f64, cap: Option<u64>) -> u64 {
    let want = (cur as f64 * factor).ceil();
    let want = if want >= u64::MAX as f64 {
        u64::MAX
    } else {
        want as u64
    };
    match cap {
        Some(c) => want.min(c.max(cur)),
        None => want,
    }
}

fn mib(n: u64) -> Text {
    Text(format!("{n}m"))
}

/// Raises a process's `memory` (at `p.memory`) by `factor`, capped, noting the change.
fn raise_process(
    p: &str,
    memory: &mut Option<Text>,
    factor: f64,
    cap_mib: Option<u64>,
    changes: &mut Vec<String>,
) -> Result<(), SpecError> {
    let cur = match memory {
        Some(t) => mem_field(&format!("{p}.memory"), t.as_str())?,
        None => crate::sizing::DEFAULT_MEMORY_MIB,
    };
    let new = raise(cur, factor, cap_mib);
    if new > cur {
        *memory = Some(mib(new));
        changes.push(format!(
            "memory {} -> {}",
            crate::quantity::format_mem(cur),
            crate::quantity::format_mem(new)
        ));
    }
    Ok(())
}

/// Raises the driver's and executors' heap of a job run by Spark (its section `p`) by
/// `factor`, capped: their `memory` fields, and the `spark.{driver,executor}.memory` conf
/// when set.
fn raise_roles(
    p: &str,
    memories: [&mut Option<Text>; 2],
    conf: &mut BTreeMap<String, Text>,
    factor: f64,
    cap_mib: Option<u64>,
    changes: &mut Vec<String>,
) -> Result<(), SpecError> {
    for (role, memory) in ["driver", "executor"].into_iter().zip(memories) {
        let conf_key = format!("spark.{role}.memory");
        let cur = match (&*memory, conf.get(&conf_key)) {
            (Some(t), _) => mem_field(&format!("{p}.{role}.memory"), t.as_str())?,
            (None, Some(v)) => mem_field(&format!("{p}.sparkConf[{conf_key}]"), v.as_str())?,
            (None, None) => crate::sizing::DEFAULT_MEMORY_MIB,
        };
        let new = raise(cur, factor, cap_mib);
        if new <= cur {
            continue;
        }
        *memory = Some(mib(new));
        if conf.contains_key(&conf_key) {
            conf.insert(conf_key, mib(new));
        }
        changes.push(format!(
            "{role} memory {} -> {}",
            crate::quantity::format_mem(cur),
            crate::quantity::format_mem(new)
        ));
    }
    Ok(())
}

/// Raises the memory of a job by `factor`, each process capped at `cap_mib` (never lowered):
/// a command's `memory`; a Spark job's driver and executor heap (`driver.memory`,
/// `executor.memory`, and the `spark.{driver,executor}.memory` conf when set, and in a kept
/// SparkApplication document). `None` when nothing can grow (already at the cap).
pub fn raise_memory(
    job: &Job,
    factor: f64,
    cap_mib: Option<u64>,
) -> Result<Option<Raised>, SpecError> {
    let mut out = job.clone();
    let mut changes = Vec::new();
    match &mut out.kind {
        JobKind::Command(c) => {
            raise_process("command", &mut c.memory, factor, cap_mib, &mut changes)?;
        }
        JobKind::Dbt(d) => raise_process("dbt", &mut d.memory, factor, cap_mib, &mut changes)?,
        JobKind::Python(p) if !p.spark => {
            raise_process("python", &mut p.memory, factor, cap_mib, &mut changes)?;
        }
        JobKind::Python(p) => {
            let p = p.as_mut();
            let driver = &mut p.driver.get_or_insert_with(Default::default).memory;
            let executor = &mut p.executor.get_or_insert_with(Default::default).memory;
            raise_roles(
                "python",
                [driver, executor],
                &mut p.spark_conf,
                factor,
                cap_mib,
                &mut changes,
            )?;
        }
        JobKind::SparkSql(q) => {
            let q = q.as_mut();
            raise_roles(
                "sparkSql",
                [&mut q.driver.memory, &mut q.executor.memory],
                &mut q.spark_conf,
                factor,
                cap_mib,
                &mut changes,
            )?;
        }
        JobKind::Spark {
            spec, application, ..
        } => {
            for role in ["driver", "executor"] {
                let conf_key = format!("spark.{role}.memory");
                let field = if role == "driver" {
                    &spec.driver.memory
                } else {
                    &spec.executor.memory
                };
                let cur = match (field, spec.conf(&conf_key)) {
                    (Some(t), _) => mem_field(&format!("spark.{role}.memory"), t.as_str())?,
                    (None, Some(v)) => mem_field(&conf_key, v)?,
                    (None, None) => crate::sizing::DEFAULT_MEMORY_MIB,
                };
                let new = raise(cur, factor, cap_mib);
                if new <= cur {
                    continue;
                }
                if role == "driver" {
                    spec.driver.memory = Some(mib(new));
                } else {
                    spec.executor.memory = Some(mib(new));
                }
                if spec.spark_conf.contains_key(&conf_key) {
                    spec.spark_conf.insert(conf_key.clone(), mib(new));
                }
                if let Some(app) = application.as_mut()
                    && let Some(s) = app.get_mut("spec").and_then(|s| s.as_object_mut())
                {
                    let r = s
                        .entry(role)
                        .or_insert_with(|| serde_json::Value::Object(Default::default()));
                    if let Some(r) = r.as_object_mut() {
                        r.insert(
                            "memory".into(),
                            serde_json::Value::String(format!("{new}m")),
                        );
                    }
                    if let Some(conf) = s.get_mut("sparkConf").and_then(|c| c.as_object_mut())
                        && conf.contains_key(&conf_key)
                    {
                        conf.insert(
                            conf_key.clone(),
                            serde_json::Value::String(format!("{new}m")),
                        );
                    }
                }
                changes.push(format!(
                    "{role} memory {} -> {}",
                    crate::quantity::format_mem(cur),
                    crate::quantity::format_mem(new)
                ));
            }
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let demand = crate::sizing::job_demand(&out)?;
    Ok(Some(Raised {
        job: out,
        demand,
        change: changes.join(", "),
    }))
}

/// Maps a SparkApplication's `spec.restartPolicy` to a retry policy, as the Spark Operator reads
/// it: `type: Never` (or none) is no retry; `OnFailure` and `Always` retry failures
/// `onFailureRetries` times every `onFailureRetryInterval` seconds (default 5), and submission
/// failures when `onSubmissionFailureRetries` is set. Attempts in all = 1 + the larger count.
pub fn from_restart_policy(
    rp: &BTreeMap<String, serde_json::Value>,
    p: &str,
) -> Result<Option<RetryPolicy>, SpecError> {
    let ty = rp.get("type").and_then(|v| v.as_str()).unwrap_or("Never");
    match ty {
        "Never" => return Ok(None),
        "OnFailure" | "Always" => {}
        other => {
            return Err(SpecError::BadValue {
                field: format!("{p}.type"),
                value: other.into(),
                message: "is not a restart policy (expected Never, OnFailure or Always)".into(),
            });
        }
    }
    let count = |key: &str| -> Result<u32, SpecError> {
        match rp.get(key) {
            None | Some(serde_json::Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n < MAX_ATTEMPTS_LIMIT)
                .ok_or_else(|| SpecError::BadValue {
                    field: format!("{p}.{key}"),
                    value: v.to_string(),
                    message: format!(
                        "must be a whole number from 0 to {}",
                        MAX_ATTEMPTS_LIMIT - 1
                    ),
                }),
        }
    };
    let on_failure = count("onFailureRetries")?;
    let on_submission = count("onSubmissionFailureRetries")?;
    if on_failure == 0 && on_submission == 0 {
        return Ok(None);
    }
    let interval = match rp.get("onFailureRetryInterval") {
        None | Some(serde_json::Value::Null) => 5,
        Some(v) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| SpecError::BadValue {
                field: format!("{p}.onFailureRetryInterval"),
                value: v.to_string(),
                message: "must be a whole number of seconds greater than zero".into(),
            })?,
    };
    let mut retry_on = Vec::new();
    if on_submission > 0 {
        retry_on.push(FailureClass::Submission);
    }
    if on_failure > 0 {
        retry_on.extend([
            FailureClass::Application,
            FailureClass::Oom,
            FailureClass::Watchdog,
            FailureClass::Timeout,
        ]);
    }
    let ms = interval
        .checked_mul(1000)
        .ok_or_else(|| SpecError::BadValue {
            field: format!("{p}.onFailureRetryInterval"),
            value: interval.to_string(),
            message: "is too large".into(),
        })?;
    Ok(Some(RetryPolicy {
        max_attempts: 1 + on_failure.max(on_submission),
        backoff_initial_ms: ms,
        backoff_max_ms: ms,
        backoff_factor: 1.0,
        jitter: 0.0,
        retry_on,
        oom_memory_factor: None,
        oom_memory_cap_mib: None,
    }))
}

#[cfg(test)]
mod tests;
