//! The trace: one job a line, as CSV (with a header) or JSON lines, and its writer.
//!
//! Fields (CSV columns or JSON keys):
//!
//! | field | meaning | example |
//! | --- | --- | --- |
//! | `submit` | when the job is submitted, from the start of the trace (duration grammar: a bare number is seconds) | `90`, `1h 30m`, `500ms` |
//! | `namespace` | its namespace | `etl` |
//! | `level` | its priority level (one of the cluster's `scheduler.levels`); empty: the namespace's default | `high` |
//! | `name` | a name, for people | `nightly-report` |
//! | `driver_cpu`, `driver_memory` | the driver pod's request (after Spark's overhead) | `1`, `4g` |
//! | `executor_cpu`, `executor_memory` | each executor pod's request | `500m`, `8g` |
//! | `executors` | how many executors the job needs at once | `8` |
//! | `duration` | how long the job runs once all its pods run | `10m` |
//! | `outcome` | optional: `succeeded` (default), `failed` or `oom`; counted in the report | `failed` |
//! | `max_runtime` | optional: the job's `maxRuntime`; the watchdog stops a run there (its run time is cut to it) | `30m` |
//!
//! In JSON lines, times and quantities may also be numbers (seconds, cores, MiB, a count).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_core::job::{Demand, PodDemand, Resources, Role};

use crate::error::{SimError, trace_err};

/// The fields of a trace line, in CSV column order.
pub const FIELDS: [&str; 12] = [
    "submit",
    "namespace",
    "level",
    "name",
    "driver_cpu",
    "driver_memory",
    "executor_cpu",
    "executor_memory",
    "executors",
    "duration",
    "outcome",
    "max_runtime",
];

/// The fields a trace may leave out.
const OPTIONAL: [&str; 3] = ["level", "outcome", "max_runtime"];

/// Most executors one job may ask for.
pub const MAX_EXECUTORS: u32 = 10_000;

/// How a job ends (counted in the report; the run holds its room for its duration either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeds.
    #[default]
    Succeeded,
    /// It fails.
    Failed,
    /// It is killed for want of memory.
    Oom,
}

impl Outcome {
    /// The name in traces.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Oom => "oom",
        }
    }
}

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceJob {
    /// 1-based line in the trace file (0 for jobs built in code).
    pub line: u64,
    /// Submit time, in milliseconds from the start of the trace.
    pub submit_ms: i64,
    /// Namespace.
    pub namespace: String,
    /// Priority level name; `None`: the namespace's default level.
    pub level: Option<String>,
    /// Name, for people.
    pub name: String,
    /// The driver pod's request.
    pub driver: Resources,
    /// Each executor pod's request.
    pub executor: Resources,
    /// Executors needed at once.
    pub executors: u32,
    /// Run time once every pod runs, in milliseconds.
    pub duration_ms: i64,
    /// How the run ends.
    pub outcome: Outcome,
    /// Its `maxRuntime`, ms: the watchdog stops the run there. `None`: no bound.
    pub max_runtime_ms: Option<i64>,
}

impl TraceJob {
    /// The pods the job needs at once: the driver, then its executors.
    pub fn demand(&self) -> Demand {
        let mut pods = vec![PodDemand {
            role: Role::Driver,
            count: 1,
            cpu_milli: self.driver.cpu_milli,
            mem_mib: self.driver.mem_mib,
        }];
        if self.executors > 0 {
            pods.push(PodDemand {
                role: Role::Executor,
                count: self.executors,
                cpu_milli: self.executor.cpu_milli,
                mem_mib: self.executor.mem_mib,
            });
        }
        Demand { pods }
    }
}

/// Reads a trace: JSON lines when the first non-blank character is `{`, else CSV with a header.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, SimError> {
    if text.trim_start().starts_with('{') {
        parse_jsonl(text)
    } else {
        parse_csv(text)
    }
}

/// Reads a CSV trace with a header line naming the columns (any order; `level`, `outcome` and
/// `max_runtime` may be left out). Unknown columns are refused.
pub fn parse_csv(text: &str) -> Result<Vec<TraceJob>, SimError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| SimError::TraceLine {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        match FIELDS.iter().find(|f| **f == h) {
            Some(f) => {
                if column.insert(f, i).is_some() {
                    return Err(trace_err(1, h, h, "column given twice"));
                }
            }
            None => {
                return Err(trace_err(
                    1,
                    h,
                    h,
                    format!("unknown column (expected {})", FIELDS.join(", ")),
                ));
            }
        }
    }
    for f in FIELDS {
        if !column.contains_key(f) && !OPTIONAL.contains(&f) {
            return Err(trace_err(1, f, "", "missing column"));
        }
    }
    let mut jobs = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(SimError::TraceLine {
                    line,
                    message: e.to_string(),
                });
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let fields: BTreeMap<&str, String> = column
            .iter()
            .map(|(f, &i)| (*f, record.get(i).unwrap_or("").to_string()))
            .collect();
        jobs.push(job_from(line, &fields)?);
    }
    Ok(jobs)
}

/// Reads JSON lines: one object a line with the trace's fields (blank lines skipped).
pub fn parse_jsonl(text: &str) -> Result<Vec<TraceJob>, SimError> {
    let mut jobs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| SimError::TraceLine {
                line,
                message: format!("not a JSON object: {e}"),
            })?;
        let serde_json::Value::Object(map) = value else {
            return Err(SimError::TraceLine {
                line,
                message: "not a JSON object".into(),
            });
        };
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in &map {
            let Some(f) = FIELDS.iter().find(|f| **f == k.as_str()) else {
                return Err(trace_err(
                    line,
                    k,
                    v,
                    format!("unknown field (expected {})", FIELDS.join(", ")),
                ));
            };
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                other => return Err(trace_err(line, k, other, "must be a string or a number")),
            };
            fields.insert(f, text);
        }
        jobs.push(job_from(line, &fields)?);
    }
    Ok(jobs)
}

fn job_from(line: u64, fields: &BTreeMap<&str, String>) -> Result<TraceJob, SimError> {
    let get = |f: &str| fields.get(f).map_or("", String::as_str);
    let name_field = |f: &str| -> Result<String, SimError> {
        let v = get(f);
        if v.is_empty() {
            return Err(trace_err(line, f, v, "must not be empty"));
        }
        if v.chars().any(char::is_control) {
            return Err(trace_err(line, f, v, "must not hold control characters"));
        }
        Ok(v.to_string())
    };
    let time = |f: &str| -> Result<i64, SimError> {
        let v = get(f);
        let d = time_ms(v).map_err(|m| trace_err(line, f, v, m))?;
        i64::try_from(d).map_err(|_| trace_err(line, f, v, "is too large"))
    };
    let cpu = |f: &str| {
        let v = get(f);
        sluice_core::quantity::parse_cpu_milli(v).map_err(|e| trace_err(line, f, v, e.to_string()))
    };
    let mem = |f: &str| {
        let v = get(f);
        sluice_core::quantity::parse_mem_mib(v).map_err(|e| trace_err(line, f, v, e.to_string()))
    };
    let submit_ms = time("submit")?;
    let namespace = name_field("namespace")?;
    let level = match get("level") {
        "" => None,
        l => Some(name_field("level").map(|_| l.to_string())?),
    };
    let name = name_field("name")?;
    let driver = Resources::new(cpu("driver_cpu")?, mem("driver_memory")?);
    let executors = {
        let v = get("executors");
        match v.parse::<u32>() {
            Ok(n) if n <= MAX_EXECUTORS => n,
            _ => {
                return Err(trace_err(
                    line,
                    "executors",
                    v,
                    format!("must be a whole number from 0 to {MAX_EXECUTORS}"),
                ));
            }
        }
    };
    let executor = if executors == 0 && get("executor_cpu").is_empty() {
        Resources::default()
    } else {
        Resources::new(cpu("executor_cpu")?, mem("executor_memory")?)
    };
    let duration_ms = time("duration")?;
    let outcome = match get("outcome") {
        "" | "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "oom" => Outcome::Oom,
        other => {
            return Err(trace_err(
                line,
                "outcome",
                other,
                "expected succeeded, failed or oom",
            ));
        }
    };
    let max_runtime_ms = match get("max_runtime") {
        "" => None,
        v => match time("max_runtime")? {
            0 => return Err(trace_err(line, "max_runtime", v, "must be above 0")),
            ms => Some(ms),
        },
    };
    Ok(TraceJob {
        line,
        submit_ms,
        namespace,
        level,
        name,
        driver,
        executor,
        executors,
        duration_ms,
        outcome,
        max_runtime_ms,
    })
}

/// A time in the duration grammar, or a decimal number of seconds ("12.5"), in milliseconds.
fn time_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Some((whole, frac)) = t.split_once('.')
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let secs: u64 = whole.parse().map_err(|_| "is too large".to_string())?;
        let ms: u64 = format!("{frac:0<3}")
            .parse()
            .map_err(|_| "bad".to_string())?;
        return secs
            .checked_mul(1000)
            .and_then(|s| s.checked_add(ms))
            .ok_or_else(|| "is too large".to_string());
    }
    sluice_core::duration::parse("", t)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .map_err(|e| e.problem())
}

/// Writes jobs as a CSV trace (header first), in the form [`parse_csv`] reads; the
/// `max_runtime` column only when some job has one.
pub fn write_csv(jobs: &[TraceJob]) -> String {
    let with_max = jobs.iter().any(|j| j.max_runtime_ms.is_some());
    let columns = if with_max {
        &FIELDS[..]
    } else {
        &FIELDS[..FIELDS.len() - 1]
    };
    let mut out = columns.join(",");
    out.push('\n');
    for j in jobs {
        let fields = [
            time_text(j.submit_ms),
            j.namespace.clone(),
            j.level.clone().unwrap_or_default(),
            j.name.clone(),
            cpu_text(j.driver.cpu_milli),
            mem_text(j.driver.mem_mib),
            cpu_text(j.executor.cpu_milli),
            mem_text(j.executor.mem_mib),
            j.executors.to_string(),
            time_text(j.duration_ms),
            j.outcome.as_str().to_string(),
            j.max_runtime_ms.map(time_text).unwrap_or_default(),
        ];
        let quoted: Vec<String> = fields[..columns.len()]
            .iter()
            .map(|f| csv_field(f))
            .collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

fn time_text(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn cpu_text(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

fn mem_text(mib: u64) -> String {
    if mib.is_multiple_of(1024) && mib > 0 {
        format!("{}g", mib / 1024)
    } else {
        format!("{mib}m")
    }
}

#[cfg(test)]
mod tests;
