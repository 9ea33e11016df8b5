//! The job kinds beyond a Spark application and a command: `sparkSql` (SQL statements run by
//! Spark through sluice's runner), `python` (an entry point, with its requirements in a cached
//! virtual environment, with or without a Spark session) and `dbt` (a dbt project's command).
//!
//! A `sparkSql` job and a `python` job with `spark: true` are Spark applications when they run:
//! [`SparkSqlSpec::to_spark`] and [`PythonSpec::to_spark`] give the [`SparkSpec`] they run as
//! (sized, submitted and rendered like any other). A `python` job without Spark and a `dbt` job
//! are one process, sized like a command (`cpu`, `memory`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spark::{Deps, DriverSpec, DynamicAllocation, ExecutorSpec};
use super::sql::split_statements;
use super::{AppType, Controls, SparkSpec, SpecError, Text, check_text};
use crate::secretref::SecretRef;

/// The file name of sluice's SQL runner (a PySpark script) in a run's directory.
pub const SQL_RUNNER_FILE: &str = "sluice_sql_runner.py";
/// The file (in a run's directory) that holds a `sparkSql` job's statements as a JSON list.
pub const SQL_STATEMENTS_FILE: &str = "sluice_statements.json";
/// The directory (in a run's directory) where dbt writes its artifacts (`run_results.json`).
pub const DBT_TARGET_DIR: &str = "dbt-target";

/// A Spark SQL job: SQL statements run one after the other in one Spark session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SparkSqlSpec {
    /// The SQL text: one or more statements separated by `;` (exactly one of `sql` and `file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// An absolute path to a `.sql` file on the backend's host, read when the run starts
    /// (exactly one of `sql` and `file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Spark configuration (`--conf key=value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, Text>,
    /// Overhead factor for both roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead_factor: Option<Text>,
    /// Driver settings.
    #[serde(default)]
    pub driver: DriverSpec,
    /// Executor settings.
    #[serde(default)]
    pub executor: ExecutorSpec,
    /// Dynamic allocation settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<DynamicAllocation>,
    /// Dependencies (jars of UDFs or catalogs, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<Deps>,
    /// Environment variables of the driver taken from secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
}

impl SparkSqlSpec {
    /// The Spark application this job runs as: sluice's runner ([`SQL_RUNNER_FILE`], a Python
    /// application) reading the statements from [`SQL_STATEMENTS_FILE`], both in the run's
    /// directory, with the job's conf, resources and dependencies.
    pub fn to_spark(&self) -> SparkSpec {
        SparkSpec {
            app_type: Some(AppType::Python),
            main_application_file: Some(SQL_RUNNER_FILE.to_string()),
            arguments: vec![
                Text("--statements".into()),
                Text(SQL_STATEMENTS_FILE.into()),
            ],
            spark_conf: self.spark_conf.clone(),
            memory_overhead_factor: self.memory_overhead_factor.clone(),
            driver: self.driver.clone(),
            executor: self.executor.clone(),
            dynamic_allocation: self.dynamic_allocation.clone(),
            deps: self.deps.clone(),
            secret_env: self.secret_env.clone(),
            ..SparkSpec::default()
        }
    }

    /// The statements of the `sql` text (`None` for a `file`, which is read when the run
    /// starts), split as Spark reads them.
    pub fn statements(&self) -> Result<Option<Vec<String>>, SpecError> {
        match &self.sql {
            None => Ok(None),
            Some(sql) => split_statements(sql)
                .map(Some)
                .map_err(|e| SpecError::bad("sparkSql.sql", first_line(sql), e.to_string())),
        }
    }
}

/// What a `dbt` job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum DbtCommand {
    /// `dbt build`: seeds, models, snapshots and tests, in DAG order.
    #[default]
    Build,
    /// `dbt run`: models.
    Run,
    /// `dbt test`: tests.
    Test,
    /// `dbt seed`: seeds.
    Seed,
}

impl DbtCommand {
    /// The dbt sub-command.
    pub fn as_str(&self) -> &'static str {
        match self {
            DbtCommand::Build => "build",
            DbtCommand::Run => "run",
            DbtCommand::Test => "test",
            DbtCommand::Seed => "seed",
        }
    }
}

/// A Python job: an entry point run by a Python interpreter, with or without a Spark session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PythonSpec {
    /// The script to run (`.py`); a relative path is inside the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Text>,
    /// Requirements (pip's syntax, like "tabulate==0.9.0"), installed into a virtual
    /// environment kept under the backend's data directory, one per set of requirements and
    /// Python version, made once and reused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
    /// The Python interpreter (an absolute path); default the backend's. With `requirements`,
    /// the interpreter the virtual environment is made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// True: a PySpark application, run by `spark-submit` with a Spark session and sized as
    /// Spark (driver, executors). False (default): one process sized by `cpu` and `memory`.
    #[serde(default)]
    pub spark: bool,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Text>,
    /// Environment variables taken from secrets, resolved when the run starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
    /// Working directory; default the backend's run directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// CPU to reserve without Spark: cores or millicores; default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1"))]
    pub cpu: Option<Text>,
    /// Memory to reserve without Spark, like "512m"; default 1g.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1g"))]
    pub memory: Option<Text>,
    /// Spark configuration (with `spark: true`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, Text>,
    /// Overhead factor for both roles (with `spark: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead_factor: Option<Text>,
    /// Driver settings (with `spark: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverSpec>,
    /// Executor settings (with `spark: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorSpec>,
    /// Dynamic allocation settings (with `spark: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<DynamicAllocation>,
    /// Dependencies (with `spark: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<Deps>,
}

impl PythonSpec {
    /// The Spark application a `spark: true` job runs as (`None` without Spark): its file as
    /// a Python application with its arguments, conf, resources and dependencies.
    pub fn to_spark(&self) -> Option<SparkSpec> {
        if !self.spark {
            return None;
        }
        Some(SparkSpec {
            app_type: Some(AppType::Python),
            main_application_file: self.file.clone(),
            arguments: self.args.clone(),
            spark_conf: self.spark_conf.clone(),
            memory_overhead_factor: self.memory_overhead_factor.clone(),
            driver: self.driver.clone().unwrap_or_default(),
            executor: self.executor.clone().unwrap_or_default(),
            dynamic_allocation: self.dynamic_allocation.clone(),
            deps: self.deps.clone(),
            secret_env: self.secret_env.clone(),
            ..SparkSpec::default()
        })
    }
}

/// A dbt job: one dbt command over a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DbtSpec {
    /// The dbt project's directory (holding `dbt_project.yml`), an absolute path on the
    /// backend's host; dbt runs in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_dir: Option<String>,
    /// The dbt command; default `build`.
    #[serde(default)]
    pub command: DbtCommand,
    /// `--select` selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// `--exclude` selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// `--target`: the profile's target; default the profile's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `--profiles-dir`: where `profiles.yml` is; default the project directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles_dir: Option<String>,
    /// `--vars`: project variables (scalars), passed as one JSON object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Text>,
    /// Extra environment variables (read by `env_var()` in the project and profile).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Text>,
    /// Environment variables taken from secrets, resolved when the run starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
    /// CPU to reserve: cores or millicores; default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1"))]
    pub cpu: Option<Text>,
    /// Memory to reserve, like "512m"; default 1g.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1g"))]
    pub memory: Option<Text>,
}

impl DbtSpec {
    /// dbt's arguments after the executable, the target path given: the command, the
    /// project and profiles directories, the target, selectors and vars.
    pub fn args(&self, target_path: &str) -> Vec<String> {
        let project = self.project_dir.clone().unwrap_or_default();
        let mut argv = vec![
            self.command.as_str().to_string(),
            "--project-dir".into(),
            project.clone(),
            "--profiles-dir".into(),
            self.profiles_dir.clone().unwrap_or(project),
            "--target-path".into(),
            target_path.to_string(),
        ];
        if let Some(t) = &self.target {
            argv.push("--target".into());
            argv.push(t.clone());
        }
        for (flag, list) in [("--select", &self.select), ("--exclude", &self.exclude)] {
            if !list.is_empty() {
                argv.push(flag.into());
                argv.extend(list.iter().cloned());
            }
        }
        if !self.vars.is_empty() {
            let vars: serde_json::Map<String, serde_json::Value> = self
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.0.clone())))
                .collect();
            argv.push("--vars".into());
            argv.push(serde_json::Value::Object(vars).to_string());
        }
        argv
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let short: String = line.chars().take(60).collect();
    if short.len() < line.len() || s.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        format!("{short}...")
    } else {
        short
    }
}

/// A required, non-empty, absolute path in `field`.
fn absolute(field: &str, v: Option<&str>, hint: &str) -> Result<(), SpecError> {
    match v.map(str::trim) {
        None | Some("") => Err(SpecError::Missing {
            field: field.into(),
            hint: hint.into(),
        }),
        Some(p) if !p.starts_with('/') => Err(SpecError::bad(
            field,
            p,
            "must be an absolute path on the backend's host",
        )),
        Some(_) => Ok(()),
    }
}

/// A value passed to a program as a separate argument: no control characters, not empty and
/// not beginning with '-' (the program would read it as one of its options).
fn plain_arg(field: &str, v: &str) -> Result<(), SpecError> {
    check_text(field, v, Controls::None)?;
    if v.trim().is_empty() {
        return Err(SpecError::bad(field, v, "is empty"));
    }
    if v.trim_start().starts_with('-') {
        return Err(SpecError::bad(
            field,
            v,
            "may not begin with '-' (it would be read as an option)",
        ));
    }
    Ok(())
}

/// Field checks of a `sparkSql` job; quantities are checked by sizing.
pub(crate) fn validate_spark_sql(s: &SparkSqlSpec) -> Result<(), SpecError> {
    match (&s.sql, &s.file) {
        (Some(_), Some(_)) => {
            return Err(SpecError::bad(
                "sparkSql.sql/file",
                "both",
                "give exactly one of `sql` (the statements) and `file` (a .sql file)",
            ));
        }
        (None, None) => {
            return Err(SpecError::Missing {
                field: "sparkSql.sql".into(),
                hint: "the SQL statements to run (or `file`: a .sql file)".into(),
            });
        }
        (Some(sql), None) => {
            check_text("sparkSql.sql", sql, Controls::Whitespace)?;
            if s.statements()?.unwrap_or_default().is_empty() {
                return Err(SpecError::bad(
                    "sparkSql.sql",
                    first_line(sql),
                    "has no statement (only white space and comments)",
                ));
            }
        }
        (None, Some(f)) => {
            check_text("sparkSql.file", f, Controls::None)?;
            absolute("sparkSql.file", Some(f), "the .sql file to run")?;
            if !f.to_ascii_lowercase().ends_with(".sql") {
                return Err(SpecError::bad("sparkSql.file", f, "is not a .sql file"));
            }
        }
    }
    super::spark::validate_spark(&s.to_spark(), "sparkSql")
}

/// Field checks of a `python` job; quantities are checked by sizing.
pub(crate) fn validate_python(p: &PythonSpec) -> Result<(), SpecError> {
    let file = p.file.as_deref().map(str::trim).unwrap_or("");
    if file.is_empty() {
        return Err(SpecError::Missing {
            field: "python.file".into(),
            hint: "the Python script to run, like /opt/jobs/report.py".into(),
        });
    }
    plain_arg("python.file", file)?;
    for (i, a) in p.args.iter().enumerate() {
        check_text(
            &format!("python.args[{i}]"),
            a.as_str(),
            Controls::Whitespace,
        )?;
    }
    for (i, r) in p.requirements.iter().enumerate() {
        plain_arg(&format!("python.requirements[{i}]"), r)?;
        if r.contains(char::is_whitespace) && !r.contains(';') {
            return Err(SpecError::bad(
                format!("python.requirements[{i}]"),
                r,
                "holds white space; give one requirement per item, like \"tabulate==0.9.0\"",
            ));
        }
    }
    if let Some(i) = &p.interpreter {
        check_text("python.interpreter", i, Controls::None)?;
        absolute("python.interpreter", Some(i), "an absolute path to python")?;
    }
    if let Some(w) = &p.working_dir {
        check_text("python.workingDir", w, Controls::None)?;
    }
    for (k, v) in &p.env {
        check_text(&format!("python.env.{k}"), k, Controls::None)?;
        check_text(&format!("python.env.{k}"), v.as_str(), Controls::Whitespace)?;
    }
    match p.to_spark() {
        Some(s) => {
            for (field, set) in [("cpu", p.cpu.is_some()), ("memory", p.memory.is_some())] {
                if set {
                    return Err(SpecError::bad(
                        format!("python.{field}"),
                        "set",
                        "is for a job without Spark; with `spark: true` give driver and \
                         executor resources",
                    ));
                }
            }
            super::spark::validate_spark(&s, "python")
        }
        None => {
            let spark_only = [
                ("sparkConf", !p.spark_conf.is_empty()),
                ("memoryOverheadFactor", p.memory_overhead_factor.is_some()),
                ("driver", p.driver.is_some()),
                ("executor", p.executor.is_some()),
                ("dynamicAllocation", p.dynamic_allocation.is_some()),
                ("deps", p.deps.is_some()),
            ];
            match spark_only.iter().find(|(_, set)| *set) {
                Some((field, _)) => Err(SpecError::bad(
                    format!("python.{field}"),
                    "set",
                    "needs `spark: true` (a job without Spark is one process sized by cpu \
                     and memory)",
                )),
                None => Ok(()),
            }
        }
    }
}

/// Field checks of a `dbt` job; quantities are checked by sizing.
pub(crate) fn validate_dbt(d: &DbtSpec) -> Result<(), SpecError> {
    if let Some(p) = &d.project_dir {
        check_text("dbt.projectDir", p, Controls::None)?;
    }
    absolute(
        "dbt.projectDir",
        d.project_dir.as_deref(),
        "the dbt project's directory (holding dbt_project.yml)",
    )?;
    if let Some(p) = &d.profiles_dir {
        check_text("dbt.profilesDir", p, Controls::None)?;
        absolute("dbt.profilesDir", Some(p), "where profiles.yml is")?;
    }
    if let Some(t) = &d.target {
        plain_arg("dbt.target", t)?;
    }
    for (name, list) in [("select", &d.select), ("exclude", &d.exclude)] {
        for (i, v) in list.iter().enumerate() {
            plain_arg(&format!("dbt.{name}[{i}]"), v)?;
        }
    }
    for (k, v) in &d.vars {
        check_text(&format!("dbt.vars.{k}"), k, Controls::None)?;
        check_text(&format!("dbt.vars.{k}"), v.as_str(), Controls::Whitespace)?;
    }
    for (k, v) in &d.env {
        check_text(&format!("dbt.env.{k}"), k, Controls::None)?;
        check_text(&format!("dbt.env.{k}"), v.as_str(), Controls::Whitespace)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
