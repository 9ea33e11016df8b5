//! The `SparkApplication` sluice creates for a job attempt, its name and labels, and the mapping
//! of the operator's `applicationState` to a [`RunStatus`]. Pure: no I/O.
//!
//! - A job that came as a `SparkApplication` keeps every field it had. sluice renames it (the
//!   name is per job attempt; the original name is kept in the `sluice.io/original-name`
//!   annotation), adds its labels and the demand annotation, adds the job labels to
//!   `spec.driver.labels` and `spec.executor.labels` (so that the pods carry them), fills
//!   `spec.sparkVersion` if missing (the CRD requires it) and drops the server-set metadata
//!   (`resourceVersion`, `uid`, ...) and `status`. One field is changed: a `restartPolicy` other
//!   than `Never` is sluice's retry policy for the job (read when it was parsed), so the
//!   application gets `Never` and the original goes into the `sluice.io/restart-policy`
//!   annotation; otherwise the operator would retry each of sluice's attempts too.
//! - A job in sluice's own spec becomes a `sparkoperator.k8s.io/v1beta2` application with the
//!   configured image, Spark version and driver service account; `restartPolicy: Never`
//!   (sluice decides about retries).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sluice_core::job::Demand;
use sluice_core::spec::{AppType, Job, JobKind, SparkSpec};

use crate::{BackendError, RunStatus};

/// The operator's API group and version.
pub const API_VERSION: &str = "sparkoperator.k8s.io/v1beta2";
/// Label: the sluice job id.
pub const JOB_ID_LABEL: &str = "sluice.io/job-id";
/// Label: the attempt number.
pub const ATTEMPT_LABEL: &str = "sluice.io/attempt";
/// Label: the sluice job name.
pub const JOB_NAME_LABEL: &str = "sluice.io/job-name";
/// Label: the role of a placeholder pod ("driver" or "executor").
pub const ROLE_LABEL: &str = "sluice.io/role";
/// Label: set to "true" on placeholder pods.
pub const PLACEHOLDER_LABEL: &str = "sluice.io/placeholder";
/// Label: set to "sluice" on everything sluice creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "sluice";
/// Annotation: the demand sluice admitted the job with (JSON), so that a restarted sluice knows
/// what the application's pods will request before they exist.
pub const DEMAND_ANNOTATION: &str = "sluice.io/demand";
/// Annotation: the `metadata.name` a user's SparkApplication had.
pub const ORIGINAL_NAME_ANNOTATION: &str = "sluice.io/original-name";
/// Annotation: a user's `spec.restartPolicy` (JSON) that sluice replaced by `Never`, because it
/// carries out that policy itself (as the job's retry policy).
pub const RESTART_POLICY_ANNOTATION: &str = "sluice.io/restart-policy";
/// The label Spark puts on its pods: "driver" or "executor".
pub const SPARK_ROLE_LABEL: &str = "spark-role";
/// Longest application name: the operator derives service names (`<name>-ui-svc`), which must
/// be DNS labels of at most 63 characters.
pub const MAX_APP_NAME: usize = 50;

/// What a sluice-spec job needs that the spec does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDefaults {
    /// Spark image for driver and executors.
    pub image: String,
    /// `spec.sparkVersion` (required by the CRD).
    pub spark_version: String,
    /// Service account of the driver pod (it creates the executors).
    pub service_account: Option<String>,
    /// Where sluice's SQL runner is in the image, for `sparkSql` jobs (the image must hold
    /// `crates/sluice-backend/src/kinds/sql_runner.py` there; see docs/job-spec.md).
    pub sql_runner: String,
    /// The shared event-log location every application (sluice-spec or the user's own) logs
    /// into, unless its `sparkConf` says otherwise; `None`: event logging is left to the job.
    pub event_log: Option<crate::eventlog::SharedEventLog>,
}

/// The default place of sluice's SQL runner in a Spark image.
pub const DEFAULT_SQL_RUNNER: &str = "local:///opt/sluice/sluice_sql_runner.py";

impl Default for AppDefaults {
    fn default() -> Self {
        AppDefaults {
            image: "docker.io/apache/spark:4.0.4".into(),
            spark_version: "4.0.4".into(),
            service_account: Some("spark-operator-spark".into()),
            sql_runner: DEFAULT_SQL_RUNNER.into(),
            event_log: None,
        }
    }
}

/// The deterministic name of a job attempt's SparkApplication: the job name (dots made dashes,
/// cut to fit), the last 10 characters of the job id and the attempt, at most
/// [`MAX_APP_NAME`] characters, a valid DNS label starting with a letter.
pub fn app_name(job_name: &str, job_id: &str, attempt: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    let id = clean(job_id);
    let id = &id[id.len().saturating_sub(10)..];
    let suffix = format!("-{id}-{attempt}");
    let mut prefix = clean(job_name);
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
        prefix.insert(0, 'j');
    }
    let keep = MAX_APP_NAME.saturating_sub(suffix.len());
    prefix.truncate(keep);
    let prefix = prefix.trim_end_matches('-');
    format!("{prefix}{suffix}").replace("--", "-")
}

/// The labels that tie an object to a job attempt.
pub fn job_labels(job: &Job, job_id: &str, attempt: u32) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    l.insert(JOB_ID_LABEL.to_string(), job_id.to_string());
    l.insert(ATTEMPT_LABEL.to_string(), attempt.to_string());
    if is_label_value(&job.name) {
        l.insert(JOB_NAME_LABEL.to_string(), job.name.clone());
    }
    l
}

/// Whether `v` is a valid Kubernetes label value (at most 63 characters, alphanumerics, `-`,
/// `_`, `.`, starting and ending with an alphanumeric; or empty).
pub fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Whether `k` is a valid Kubernetes label key (`[prefix/]name`).
pub fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        // invariant: the value was made an object just above.
        _ => unreachable!(),
    }
}

fn child<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    obj(v).entry(key.to_string()).or_insert(Value::Null)
}

fn merge_labels(target: &mut Value, labels: &BTreeMap<String, String>) {
    let m = obj(target);
    for (k, v) in labels {
        m.insert(k.clone(), Value::String(v.clone()));
    }
}

/// Builds the SparkApplication of a job attempt. `Rejected` if the job is not a Spark job.
pub fn build_app(
    job: &Job,
    job_id: &str,
    attempt: u32,
    demand: &Demand,
    defaults: &AppDefaults,
) -> Result<Value, BackendError> {
    let (spec, application) = match &job.kind {
        JobKind::Spark {
            spec, application, ..
        } => (
            std::borrow::Cow::Borrowed(spec.as_ref()),
            application.as_ref(),
        ),
        JobKind::SparkSql(q) => (std::borrow::Cow::Owned(sql_app_spec(q, defaults)?), None),
        JobKind::Python(p) if p.spark && !p.requirements.is_empty() => {
            return Err(BackendError::Rejected(
                "python.requirements: the kubernetes backend cannot install requirements into \
                 the Spark image; build them into the image (and give python.interpreter if \
                 needed), or run the job on the local backend"
                    .into(),
            ));
        }
        kind => match kind.spark_spec() {
            Some(spec) => (spec, None),
            None => {
                return Err(BackendError::Rejected(format!(
                    "the kubernetes backend runs Spark applications only (spark, sparkSql, \
                     python with spark: true); a `{}` job is one process on a host and needs \
                     the local backend",
                    kind.section()
                )));
            }
        },
    };
    let labels = job_labels(job, job_id, attempt);
    let name = app_name(&job.name, job_id, attempt);
    let demand_json = serde_json::to_string(demand)
        .map_err(|e| BackendError::Config(format!("encoding the demand: {e}")))?;
    let mut app = match application {
        Some(original) => {
            let mut app = original.clone();
            let m = obj(&mut app);
            m.remove("status");
            let meta = child(&mut app, "metadata");
            let original_name = meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&job.name)
                .to_string();
            let mm = obj(meta);
            for k in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generateName",
            ] {
                mm.remove(k);
            }
            merge_labels(
                child(meta, "annotations"),
                &[(ORIGINAL_NAME_ANNOTATION.to_string(), original_name)].into(),
            );
            let spec_v = child(&mut app, "spec");
            if spec_v.get("sparkVersion").is_none_or(Value::is_null) {
                obj(spec_v).insert(
                    "sparkVersion".into(),
                    Value::String(defaults.spark_version.clone()),
                );
            }
            // sluice took the restart policy as the job's retry policy and retries each attempt
            // itself (after a capacity check): the operator must not retry it as well.
            let restart = spec_v.get("restartPolicy").cloned();
            if let Some(rp) =
                restart.filter(|rp| rp.get("type").and_then(Value::as_str) != Some("Never"))
            {
                obj(spec_v).insert("restartPolicy".into(), json!({"type": "Never"}));
                merge_labels(
                    child(child(&mut app, "metadata"), "annotations"),
                    &[(RESTART_POLICY_ANNOTATION.to_string(), rp.to_string())].into(),
                );
            }
            app
        }
        None => own_app(&spec, defaults),
    };
    add_secret_env(&mut app, &spec.secret_env)?;
    let pod_labels: BTreeMap<String, String> = [
        (JOB_ID_LABEL.to_string(), job_id.to_string()),
        (ATTEMPT_LABEL.to_string(), attempt.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ]
    .into();
    {
        let spec_v = child(&mut app, "spec");
        for role in ["driver", "executor"] {
            merge_labels(child(child(spec_v, role), "labels"), &pod_labels);
        }
    }
    if let Some(share) = &defaults.event_log {
        // Each key only where the job does not set it (its own `spark.eventLog.dir` wins).
        let conf = obj(child(child(&mut app, "spec"), "sparkConf"));
        for (k, v) in share.conf() {
            conf.entry(k).or_insert(Value::String(v));
        }
    }
    let m = obj(&mut app);
    m.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    m.insert("kind".into(), Value::String("SparkApplication".into()));
    let meta = child(&mut app, "metadata");
    let mm = obj(meta);
    mm.insert("name".into(), Value::String(name));
    mm.insert("namespace".into(), Value::String(job.namespace.clone()));
    let mut all_labels: BTreeMap<String, String> = job
        .labels
        .iter()
        .filter(|(k, v)| is_label_key(k) && is_label_value(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all_labels.extend(labels);
    merge_labels(child(meta, "labels"), &all_labels);
    merge_labels(
        child(meta, "annotations"),
        &[(DEMAND_ANNOTATION.to_string(), demand_json)].into(),
    );
    Ok(app)
}

/// The Spark application of a `sparkSql` job on Kubernetes: the runner at
/// [`AppDefaults::sql_runner`] in the image, with the statements as its argument (JSON). The
/// statements must be in the job: a `file` on the sluice host is not in the image.
fn sql_app_spec(
    q: &sluice_core::spec::SparkSqlSpec,
    defaults: &AppDefaults,
) -> Result<SparkSpec, BackendError> {
    let Some(statements) = q
        .statements()
        .map_err(|e| BackendError::Rejected(e.to_string()))?
    else {
        return Err(BackendError::Rejected(format!(
            "sparkSql.file {:?}: a file on the sluice host is not in the Spark image; give the \
             statements as sparkSql.sql for the kubernetes backend",
            q.file.as_deref().unwrap_or("")
        )));
    };
    let json = serde_json::to_string(&statements)
        .map_err(|e| BackendError::Config(format!("encoding the statements: {e}")))?;
    let mut spec = q.to_spark();
    spec.main_application_file = Some(defaults.sql_runner.clone());
    spec.arguments = vec![
        sluice_core::spec::Text("--statements-json".into()),
        sluice_core::spec::Text(json),
    ];
    Ok(spec)
}

/// `secretEnv` of a Spark job: each a Kubernetes Secret's key, added to the driver's and the
/// executors' `env` as `valueFrom.secretKeyRef` (the operator's `EnvVar`), so that the value never
/// passes through sluice. A file or an environment variable of the sluice server is `Rejected`:
/// it would have to be written into the SparkApplication in clear.
fn add_secret_env(
    app: &mut Value,
    refs: &BTreeMap<String, sluice_core::secretref::SecretRef>,
) -> Result<(), BackendError> {
    use sluice_core::secretref::SecretRef;
    for (k, r) in refs {
        let SecretRef::SecretKeyRef { name, key } = r else {
            return Err(BackendError::Rejected(format!(
                "spark.secretEnv.{k}: a {} reference cannot be used on the kubernetes backend \
                 (use secretKeyRef: a Kubernetes Secret in the job's namespace)",
                r.kind()
            )));
        };
        let entry = json!({"name": k, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}});
        let spec_v = child(app, "spec");
        for role in ["driver", "executor"] {
            let env = child(child(spec_v, role), "env");
            if !env.is_array() {
                *env = Value::Array(Vec::new());
            }
            if let Value::Array(items) = env {
                items.retain(|e| e.get("name").and_then(Value::as_str) != Some(k.as_str()));
                items.push(entry.clone());
            }
        }
    }
    Ok(())
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// The operator's `spec` for a job in sluice's own spec.
fn own_app(spec: &SparkSpec, d: &AppDefaults) -> Value {
    let app_type = match spec.app_type() {
        AppType::Scala => "Scala",
        AppType::Java => "Java",
        AppType::Python => "Python",
        AppType::R => "R",
    };
    let mut sp = Map::new();
    sp.insert("type".into(), s(app_type));
    sp.insert("mode".into(), s("cluster"));
    sp.insert("image".into(), s(&d.image));
    sp.insert("imagePullPolicy".into(), s("IfNotPresent"));
    sp.insert(
        "sparkVersion".into(),
        s(spec.spark_version.as_deref().unwrap_or(&d.spark_version)),
    );
    if spec.app_type() == AppType::Python {
        sp.insert("pythonVersion".into(), s("3"));
    }
    if let Some(f) = &spec.main_application_file {
        sp.insert("mainApplicationFile".into(), s(f));
    }
    if let Some(c) = &spec.main_class {
        sp.insert("mainClass".into(), s(c));
    }
    if !spec.arguments.is_empty() {
        sp.insert(
            "arguments".into(),
            Value::Array(spec.arguments.iter().map(|a| s(a.as_str())).collect()),
        );
    }
    let mut conf: Map<String, Value> = spec
        .spark_conf
        .iter()
        .map(|(k, v)| (k.clone(), s(v.as_str())))
        .collect();
    if let Some(f) = &spec.memory_overhead_factor {
        sp.insert("memoryOverheadFactor".into(), s(f.as_str()));
    }
    let mut driver = Map::new();
    if let Some(c) = spec.driver.cores {
        driver.insert("cores".into(), json!(c));
    }
    if let Some(c) = &spec.driver.core_request {
        driver.insert("coreRequest".into(), s(c.as_str()));
    }
    if let Some(m) = &spec.driver.memory {
        driver.insert("memory".into(), s(m.as_str()));
    }
    if let Some(m) = &spec.driver.memory_overhead {
        driver.insert("memoryOverhead".into(), s(m.as_str()));
    }
    if let Some(sa) = &d.service_account {
        driver.insert("serviceAccount".into(), s(sa));
    }
    let mut executor = Map::new();
    if let Some(c) = spec.executor.cores {
        executor.insert("cores".into(), json!(c));
    }
    if let Some(c) = &spec.executor.core_request {
        executor.insert("coreRequest".into(), s(c.as_str()));
    }
    if let Some(m) = &spec.executor.memory {
        executor.insert("memory".into(), s(m.as_str()));
    }
    if let Some(m) = &spec.executor.memory_overhead {
        executor.insert("memoryOverhead".into(), s(m.as_str()));
    }
    match spec.executor.instances {
        // The CRD's minimum is 1: zero executors go through the Spark conf.
        Some(0) => {
            conf.insert("spark.executor.instances".into(), s("0"));
        }
        Some(n) => {
            executor.insert("instances".into(), json!(n));
        }
        None => {}
    }
    if !conf.is_empty() {
        sp.insert("sparkConf".into(), Value::Object(conf));
    }
    sp.insert("driver".into(), Value::Object(driver));
    sp.insert("executor".into(), Value::Object(executor));
    if let Some(da) = &spec.dynamic_allocation {
        let mut m = Map::new();
        m.insert("enabled".into(), json!(da.enabled));
        if let Some(v) = da.initial_executors {
            m.insert("initialExecutors".into(), json!(v));
        }
        if let Some(v) = da.min_executors {
            m.insert("minExecutors".into(), json!(v));
        }
        if let Some(v) = da.max_executors {
            m.insert("maxExecutors".into(), json!(v));
        }
        if let Some(v) = da.shuffle_tracking_enabled {
            m.insert("shuffleTrackingEnabled".into(), json!(v));
        }
        if let Some(v) = da.shuffle_tracking_timeout {
            m.insert("shuffleTrackingTimeout".into(), json!(v));
        }
        sp.insert("dynamicAllocation".into(), Value::Object(m));
    }
    if let Some(deps) = &spec.deps {
        let deps = serde_json::to_value(deps).unwrap_or(Value::Null);
        if deps.as_object().is_some_and(|m| !m.is_empty()) {
            sp.insert("deps".into(), deps);
        }
    }
    sp.insert("restartPolicy".into(), json!({"type": "Never"}));
    json!({
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {},
        "spec": Value::Object(sp),
    })
}

/// The operator's view of an application: `status.applicationState` and executor states.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppState {
    /// `status.applicationState.state` ("" before the operator has looked at it).
    pub state: String,
    /// `status.applicationState.errorMessage`.
    pub error_message: String,
}

impl AppState {
    /// Reads the state out of a SparkApplication object.
    pub fn of(app: &Value) -> AppState {
        let st = app.pointer("/status/applicationState");
        AppState {
            state: st
                .and_then(|s| s.get("state"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            error_message: st
                .and_then(|s| s.get("errorMessage"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }

    /// True once the application has ended (COMPLETED, FAILED, SUBMISSION_FAILED).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED" | "FAILED" | "SUBMISSION_FAILED"
        )
    }

    /// The operator's state and message, for people: "FAILED: driver container failed ...".
    pub fn describe(&self) -> String {
        let state = if self.state.is_empty() {
            "NEW"
        } else {
            &self.state
        };
        if self.error_message.is_empty() {
            format!("SparkApplication {state}")
        } else {
            format!("SparkApplication {state}: {}", self.error_message)
        }
    }
}

/// Maps the operator's `applicationState` to a [`RunStatus`]:
///
/// | operator state | sluice |
/// | --- | --- |
/// | (none yet), SUBMITTED, PENDING_RERUN, INVALIDATING, SUSPENDING, SUSPENDED, RESUMING | Pending |
/// | RUNNING, SUCCEEDING, FAILING | Running (SUCCEEDING and FAILING are on their way out) |
/// | COMPLETED | Succeeded |
/// | FAILED, SUBMISSION_FAILED | Failed, with the state and message |
/// | UNKNOWN (the driver pod's state cannot be read) | Pending |
///
/// The exit code of a failed application is read from the operator's message ("ExitCode: 1").
pub fn map_state(st: &AppState) -> RunStatus {
    match st.state.as_str() {
        "RUNNING" | "SUCCEEDING" | "FAILING" => RunStatus::Running,
        "COMPLETED" => RunStatus::Succeeded,
        "FAILED" | "SUBMISSION_FAILED" => RunStatus::Failed {
            exit_code: exit_code_in(&st.error_message),
            message: st.describe(),
        },
        _ => RunStatus::Pending,
    }
}

/// The number after "ExitCode:" (or "exit code") in an operator message.
fn exit_code_in(msg: &str) -> Option<i32> {
    let lower = msg.to_ascii_lowercase();
    for key in ["exitcode:", "exit code:", "exit code"] {
        if let Some(i) = lower.find(key) {
            let rest = lower[i + key.len()..].trim_start();
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// The demand recorded on an application by [`build_app`].
pub fn demand_of(app: &Value) -> Option<Demand> {
    let text = app
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEMAND_ANNOTATION))
        .and_then(Value::as_str)?;
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_valid_and_short() {
        let id = "01jz8m3v9q7x2kd4h6n8p0r2s4";
        assert_eq!(app_name("pi", id, 1), "pi-h6n8p0r2s4-1");
        assert_eq!(app_name("pi", id, 1), app_name("pi", id, 1));
        assert_ne!(app_name("pi", id, 1), app_name("pi", id, 2));
        let long = "a".repeat(200);
        let n = app_name(&long, id, 12);
        assert!(n.len() <= MAX_APP_NAME, "{n}");
        assert!(n.ends_with("-h6n8p0r2s4-12"), "{n}");
        assert_eq!(app_name("etl.daily", id, 1), "etl-daily-h6n8p0r2s4-1");
        assert_eq!(app_name("9lives", "x", 3), "j9lives-x-3");
        for n in [app_name("a-", "ID-1", 1), app_name("-.-", id, 7)] {
            assert!(is_label_value(&n), "{n}");
            assert!(!n.contains("--"), "{n}");
            assert!(n.starts_with(|c: char| c.is_ascii_lowercase()), "{n}");
        }
    }

    #[test]
    fn label_rules() {
        assert!(is_label_key("team"));
        assert!(is_label_key("sluice.io/job-id"));
        assert!(!is_label_key("Bad Key"));
        assert!(!is_label_key("/x"));
        assert!(is_label_value(""));
        assert!(is_label_value("a.b_c-1"));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value(&"a".repeat(64)));
    }

    #[test]
    fn state_mapping() {
        let st = |s: &str, m: &str| AppState {
            state: s.into(),
            error_message: m.into(),
        };
        for s in [
            "",
            "SUBMITTED",
            "PENDING_RERUN",
            "INVALIDATING",
            "SUSPENDED",
            "SUSPENDING",
            "RESUMING",
            "UNKNOWN",
        ] {
            assert_eq!(map_state(&st(s, "")), RunStatus::Pending, "{s}");
        }
        for s in ["RUNNING", "SUCCEEDING", "FAILING"] {
            assert_eq!(map_state(&st(s, "")), RunStatus::Running, "{s}");
        }
        assert_eq!(map_state(&st("COMPLETED", "")), RunStatus::Succeeded);
        assert_eq!(
            map_state(&st(
                "FAILED",
                "driver container failed with ExitCode: 137, Reason: OOMKilled"
            )),
            RunStatus::Failed {
                exit_code: Some(137),
                message: "SparkApplication FAILED: driver container failed with ExitCode: 137, \
                          Reason: OOMKilled"
                    .into()
            }
        );
        assert_eq!(
            map_state(&st("SUBMISSION_FAILED", "failed to run spark-submit")),
            RunStatus::Failed {
                exit_code: None,
                message: "SparkApplication SUBMISSION_FAILED: failed to run spark-submit".into()
            }
        );
        assert!(st("FAILED", "").is_terminal());
        assert!(!st("FAILING", "").is_terminal());
        assert_eq!(st("", "").describe(), "SparkApplication NEW");
    }
}
