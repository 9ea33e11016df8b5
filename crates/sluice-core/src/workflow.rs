//! Workflows: a document of steps (each a normal job spec, of any kind) with `dependsOn`, a
//! trigger per step, parameters and a priority level inherited by its steps; the DAG and its
//! state machine are in [`dag`].
//!
//! ```yaml
//! apiVersion: sluice.io/v1
//! kind: Workflow
//! metadata: {name: nightly, namespace: analytics}
//! spec:
//!   priority: normal
//!   parameters: {table: events}
//!   schedule: {cron: "0 2 * * *", timeZone: UTC, concurrencyPolicy: Forbid}
//!   steps:
//!     - name: extract
//!       job: {command: {argv: [extract, "{{ params.table }}", "{{ logicalDate }}"]}}
//!     - name: load
//!       dependsOn: [extract]
//!       job: {spark: {...}}
//! ```
//!
//! Parameters are substituted into the string values of a step's job (never its keys) by
//! sluice itself, before the job is parsed and checked like any job: nothing goes through a
//! shell, and a value that makes a field invalid is refused naming that field.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::parse_stored;
use crate::schedule::{ConcurrencyPolicy, parse_time_zone, prefixed};
use crate::spec::{
    self, Controls, ParseOptions, SpecError, check_document_text, check_text, namespace_of,
    required_name,
};
use crate::stored::StoredJob;

pub mod dag;

pub use dag::{Dag, DagError, Decision, RunOutcome, StepStatus, Trigger, advance, waiting_for};

/// The `apiVersion` of a workflow document.
pub const API_VERSION: &str = "sluice.io/v1";
/// The `kind` of a workflow document.
pub const KIND: &str = "Workflow";
/// Label on every step job: the workflow's name.
pub const WORKFLOW_LABEL: &str = "sluice.io/workflow";
/// Label on every step job: the run's id.
pub const RUN_LABEL: &str = "sluice.io/workflow-run";
/// Label on every step job: the step's name.
pub const STEP_LABEL: &str = "sluice.io/workflow-step";

/// A validated workflow: what the store keeps (as JSON) and every run is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Namespace of the workflow and of every step's job.
    pub namespace: String,
    /// Name, unique in the namespace.
    pub name: String,
    /// Priority level of the steps that do not set their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Parameters and their defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The steps, in document order.
    pub steps: Vec<Step>,
    /// When a schedule fires it, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<WorkflowSchedule>,
}

/// One step: a job spec and when it may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Name, unique in the workflow.
    pub name: String,
    /// The steps it waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// When it may start, from their outcomes.
    #[serde(default)]
    pub trigger: Trigger,
    /// The job spec, as written (placeholders not yet substituted).
    pub job: Map<String, Value>,
}

/// A workflow's schedule: a cron expression in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSchedule {
    /// The expression (cron, @daily, @every 10m).
    pub cron: String,
    /// IANA zone.
    pub time_zone: String,
    /// Allow (runs may overlap) or Forbid (a fire time is skipped while a run is active).
    pub concurrency: ConcurrencyPolicy,
    /// No run is fired while suspended.
    pub suspend: bool,
}

/// A workflow run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunState {
    /// Steps are waiting or running.
    Running,
    /// Every step ended and none failed or was cancelled.
    Succeeded,
    /// Every step ended and some failed or was cancelled.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl RunState {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        self != RunState::Running
    }
}

impl From<RunOutcome> for RunState {
    fn from(o: RunOutcome) -> Self {
        match o {
            RunOutcome::Succeeded => RunState::Succeeded,
            RunOutcome::Failed => RunState::Failed,
            RunOutcome::Cancelled => RunState::Cancelled,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(RunState::Running),
            "succeeded" => Ok(RunState::Succeeded),
            "failed" => Ok(RunState::Failed),
            "cancelled" => Ok(RunState::Cancelled),
            _ => Err("is not a workflow run state (running, succeeded, failed, cancelled)".into()),
        }
    }
}

/// What the store records of a step; with its job's state this gives its [`StepStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepPhase {
    /// Not started.
    Waiting,
    /// Its job was queued (the job's state tells the rest).
    Started,
    /// Skipped: its trigger could not hold.
    Skipped,
    /// Cancelled before it started.
    Cancelled,
    /// No job could be made for it (the message says why).
    Failed,
}

impl StepPhase {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StepPhase::Waiting => "waiting",
            StepPhase::Started => "started",
            StepPhase::Skipped => "skipped",
            StepPhase::Cancelled => "cancelled",
            StepPhase::Failed => "failed",
        }
    }
}

impl FromStr for StepPhase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waiting" => Ok(StepPhase::Waiting),
            "started" => Ok(StepPhase::Started),
            "skipped" => Ok(StepPhase::Skipped),
            "cancelled" => Ok(StepPhase::Cancelled),
            "failed" => Ok(StepPhase::Failed),
            _ => Err("is not a step phase".into()),
        }
    }
}

impl Workflow {
    /// The checked DAG of its steps.
    pub fn dag(&self) -> Result<Dag, DagError> {
        Dag::new(
            self.steps
                .iter()
                .map(|s| (s.name.as_str(), s.depends_on.as_slice(), s.trigger)),
        )
    }

    /// The parameters of a run: the defaults with `overrides` on top. An override of a
    /// parameter the workflow does not declare is refused, naming it.
    pub fn parameters_with(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, SpecError> {
        let mut out = self.parameters.clone();
        for (k, v) in overrides {
            let field = format!("parameters.{k}");
            if !self.parameters.contains_key(k) {
                return Err(SpecError::bad(
                    field,
                    v,
                    format!(
                        "is not a parameter of workflow {} (it declares: {})",
                        self.name,
                        declared(&self.parameters)
                    ),
                ));
            }
            check_text(&field, v, Controls::Whitespace)?;
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    /// The job of step `i` for a run with these parameters and logical date: placeholders
    /// substituted, the workflow's namespace, its level unless the step sets one, the workflow
    /// labels (and the run's, when given), parsed and checked like a submitted job.
    pub fn render_step(
        &self,
        i: usize,
        params: &BTreeMap<String, String>,
        logical_date_ms: i64,
        run_id: Option<&str>,
        opts: ParseOptions<'_>,
    ) -> Result<StoredJob, SpecError> {
        let step = self.steps.get(i).ok_or_else(|| {
            SpecError::bad(
                "spec.steps",
                i,
                "is not the index of a step of this workflow",
            )
        })?;
        let field = format!("spec.steps[{i}].job");
        let date = logical_date(logical_date_ms);
        let mut job = Map::new();
        for (k, v) in &step.job {
            let v = substitute_value(v, &format!("{field}.{k}"), params, &date)?;
            job.insert(k.clone(), v);
        }
        match job.get("namespace") {
            Some(ns) if ns.as_str() != Some(self.namespace.as_str()) => {
                return Err(SpecError::bad(
                    format!("{field}.namespace"),
                    ns.as_str().map_or_else(|| ns.to_string(), str::to_string),
                    format!("differs from the workflow's namespace {:?}", self.namespace),
                ));
            }
            _ => {
                job.insert("namespace".into(), self.namespace.clone().into());
            }
        }
        job.entry("name")
            .or_insert_with(|| Value::String(format!("{}-{}", self.name, step.name)));
        if let Some(p) = &self.priority {
            job.entry("priority")
                .or_insert_with(|| Value::String(p.clone()));
        }
        let labels = job
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(labels) = labels else {
            return Err(SpecError::BadType {
                field: format!("{field}.labels"),
                message: "expected a mapping of label keys to values".into(),
            });
        };
        labels.insert(WORKFLOW_LABEL.into(), self.name.clone().into());
        labels.insert(STEP_LABEL.into(), step.name.clone().into());
        if let Some(run) = run_id {
            labels.insert(RUN_LABEL.into(), run.into());
        }
        let text = serde_json::to_string(&Value::Object(job))
            .map_err(|e| SpecError::Malformed(format!("re-encoding {field}: {e}")))?;
        parse_stored(&text, opts).map_err(|e| prefixed(e, "", &field))
    }

    /// Every step's job for a run (see [`Workflow::render_step`]), in step order.
    pub fn render_all(
        &self,
        params: &BTreeMap<String, String>,
        logical_date_ms: i64,
        run_id: Option<&str>,
        opts: ParseOptions<'_>,
    ) -> Result<Vec<StoredJob>, SpecError> {
        (0..self.steps.len())
            .map(|i| self.render_step(i, params, logical_date_ms, run_id, opts))
            .collect()
    }
}

fn declared(params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        "none".into()
    } else {
        params.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A logical date as the placeholder `{{ logicalDate }}` writes it: RFC 3339, UTC, with
/// milliseconds only when there are any (`2026-01-02T03:04:05Z`, `...05.250Z`).
pub fn logical_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

fn substitute_value(
    v: &Value,
    field: &str,
    params: &BTreeMap<String, String>,
    date: &str,
) -> Result<Value, SpecError> {
    Ok(match v {
        Value::String(s) => Value::String(substitute(s, field, params, date)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| substitute_value(x, &format!("{field}[{i}]"), params, date))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    substitute_value(x, &format!("{field}.{k}"), params, date)
                        .map(|x| (k.clone(), x))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Replaces each `{{ params.NAME }}` and `{{ logicalDate }}` in `s`; any other `{{ ... }}` is
/// refused naming the field.
pub fn substitute(
    s: &str,
    field: &str,
    params: &BTreeMap<String, String>,
    date: &str,
) -> Result<String, SpecError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| SpecError::bad(field, s, "has `{{` without a closing `}}`"))?;
        let inner = after[..close].trim();
        if inner == "logicalDate" {
            out.push_str(date);
        } else if let Some(name) = inner.strip_prefix("params.") {
            let value = params.get(name.trim()).ok_or_else(|| {
                SpecError::bad(
                    field,
                    s,
                    format!(
                        "uses parameter {:?}, which the workflow does not declare (it declares: {})",
                        name.trim(),
                        declared(params)
                    ),
                )
            })?;
            out.push_str(value);
        } else {
            return Err(SpecError::bad(
                field,
                s,
                format!(
                    "has the placeholder {{{{ {inner} }}}}: only {{{{ params.NAME }}}} and {{{{ logicalDate }}}} exist"
                ),
            ));
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a document is a workflow (`kind: Workflow`), without checking the rest.
pub fn is_workflow(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some(KIND)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[allow(dead_code)]
    api_version: Option<String>,
    #[allow(dead_code)]
    kind: Option<String>,
    metadata: Option<Meta>,
    spec: Option<SpecDoc>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecDoc {
    priority: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
    schedule: Option<ScheduleDoc>,
    #[serde(default)]
    steps: Vec<StepDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleDoc {
    cron: Option<String>,
    time_zone: Option<String>,
    concurrency_policy: Option<String>,
    suspend: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepDoc {
    name: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    trigger: Option<String>,
    job: Option<Value>,
}

/// A parameter name: a letter or `_`, then letters, digits or `_`.
fn check_param_name(field: &str, name: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(SpecError::bad(
            field,
            name,
            "is not a parameter name (a letter or _, then letters, digits or _; at most 64)",
        ))
    }
}

/// Parses and validates a workflow document (YAML or JSON): names, parameters, the DAG
/// (duplicate names, unknown `dependsOn`, cycles are refused naming the steps) and every
/// step's job, rendered with the default parameters as a run would make it.
pub fn parse_workflow(text: &str, opts: ParseOptions<'_>) -> Result<Workflow, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Malformed("the document is empty".into()));
    }
    let value: Value =
        serde_saphyr::from_str(text).map_err(|e| SpecError::Malformed(e.to_string()))?;
    check_document_text(&value, "")?;
    if !value.is_object() {
        return Err(SpecError::Malformed(
            "expected a mapping at the top level".into(),
        ));
    }
    let api = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api != API_VERSION {
        return Err(SpecError::bad(
            "apiVersion",
            api,
            format!("is not the workflow API version (expected {API_VERSION})"),
        ));
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != KIND {
        return Err(SpecError::bad(
            "kind",
            kind,
            "is not a workflow (expected Workflow)",
        ));
    }
    let mut unknown = Vec::new();
    let doc: Doc = spec::decode(&value, "", Some(&mut unknown))?;
    if let Some(field) = unknown
        .into_iter()
        // A step's job is checked as a job, below.
        .find(|f| !(f.starts_with("spec.steps") && f.contains(".job")))
    {
        return Err(SpecError::UnknownField { field });
    }
    let meta = doc.metadata.ok_or_else(|| SpecError::Missing {
        field: "metadata".into(),
        hint: "a workflow needs metadata.name (and metadata.namespace)".into(),
    })?;
    let name = required_name(meta.name.as_deref(), "metadata.name")?;
    let namespace = namespace_of(meta.namespace.as_deref(), "metadata.namespace")?;
    let spec_doc = doc.spec.ok_or_else(|| SpecError::Missing {
        field: "spec".into(),
        hint: "a workflow needs spec.steps".into(),
    })?;
    let priority = spec_doc
        .priority
        .as_deref()
        .map(|p| opts.levels.check("spec.priority", p))
        .transpose()?;
    let mut parameters = BTreeMap::new();
    for (k, v) in spec_doc.parameters {
        let field = format!("spec.parameters.{k}");
        check_param_name(&field, &k)?;
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(SpecError::BadType {
                    field,
                    message: format!("expected a string, number or boolean default, got {other}"),
                });
            }
        };
        parameters.insert(k, v);
    }
    if spec_doc.steps.is_empty() {
        return Err(SpecError::Missing {
            field: "spec.steps".into(),
            hint: "a workflow needs at least one step".into(),
        });
    }
    let mut steps = Vec::with_capacity(spec_doc.steps.len());
    for (i, s) in spec_doc.steps.into_iter().enumerate() {
        let field = format!("spec.steps[{i}]");
        let step_name = required_name(s.name.as_deref(), &format!("{field}.name"))?;
        let trigger = match s.trigger.as_deref() {
            None => Trigger::default(),
            Some(t) => t.parse().map_err(|message| SpecError::BadValue {
                field: format!("{field}.trigger"),
                value: t.into(),
                message,
            })?,
        };
        let job = match s.job {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(SpecError::BadType {
                    field: format!("{field}.job"),
                    message: format!("expected a job spec (a mapping), got {other}"),
                });
            }
            None => {
                return Err(SpecError::Missing {
                    field: format!("{field}.job"),
                    hint: "the step's job spec (like a job file; name and namespace default to the workflow's)".into(),
                });
            }
        };
        steps.push(Step {
            name: step_name,
            depends_on: s.depends_on,
            trigger,
            job,
        });
    }
    let schedule = spec_doc.schedule.map(parse_schedule_doc).transpose()?;
    let wf = Workflow {
        namespace,
        name,
        priority,
        parameters,
        steps,
        schedule,
    };
    wf.dag().map_err(|e| {
        let field = match &e {
            DagError::Cycle(_) | DagError::UnknownDependency { .. } => "spec.steps.dependsOn",
            DagError::Duplicate(_) => "spec.steps.name",
            DagError::NeverTriggered(_) => "spec.steps.trigger",
        };
        SpecError::BadValue {
            field: field.into(),
            value: match &e {
                DagError::Cycle(c) => c.join(" -> "),
                DagError::UnknownDependency { missing, .. } => missing.clone(),
                DagError::Duplicate(n) | DagError::NeverTriggered(n) => n.clone(),
            },
            message: format!("is refused: {e}"),
        }
    })?;
    // Every step must make a valid job with the defaults, as a run would.
    wf.render_all(&wf.parameters, 0, None, opts)?;
    Ok(wf)
}

fn parse_schedule_doc(s: ScheduleDoc) -> Result<WorkflowSchedule, SpecError> {
    let cron = s
        .cron
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| SpecError::Missing {
            field: "spec.schedule.cron".into(),
            hint: "a cron expression (\"0 2 * * *\"), @hourly/@daily, or @every 10m".into(),
        })?;
    let time_zone = s.time_zone.unwrap_or_else(|| "UTC".into());
    parse_time_zone("spec.schedule.timeZone", &time_zone)?;
    let concurrency = match s.concurrency_policy.as_deref() {
        None => ConcurrencyPolicy::Allow,
        Some("Allow") => ConcurrencyPolicy::Allow,
        Some("Forbid") => ConcurrencyPolicy::Forbid,
        Some(other) => {
            return Err(SpecError::bad(
                "spec.schedule.concurrencyPolicy",
                other,
                "is not a workflow concurrency policy (Allow or Forbid)",
            ));
        }
    };
    // The expression must compile (checked as a schedule's is).
    crate::schedule::Cadence::new(&cron, &time_zone, 0, "")
        .map_err(|e| prefixed(e, "schedule", "spec.schedule.cron"))?;
    Ok(WorkflowSchedule {
        cron,
        time_zone,
        concurrency,
        suspend: s.suspend.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests;
