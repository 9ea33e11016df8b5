//! What the job kinds beyond Spark and command need on a host (the local backend and the
//! standalone backend's client-mode drivers): the files a run's directory gets (sluice's SQL
//! runner and a `sparkSql` job's statements; the Python environment bootstrap), the command
//! lines of `python` jobs with requirements and of `dbt` jobs, and a run's result (dbt's
//! `run_results.json`).

use std::path::{Path, PathBuf};

use sluice_core::run_result::{RunResult, parse_dbt_run_results};
use sluice_core::spec::{
    DBT_TARGET_DIR, DbtSpec, Job, JobKind, PythonSpec, SQL_RUNNER_FILE, SQL_STATEMENTS_FILE,
    SparkSqlSpec, split_statements,
};

use crate::BackendError;

/// sluice's Spark SQL runner (a PySpark script), written into each `sparkSql` run's directory.
pub const SQL_RUNNER: &str = include_str!("kinds/sql_runner.py");
/// The Python environment bootstrap, written into each run of a `python` job with
/// requirements.
pub const PYENV: &str = include_str!("kinds/pyenv.py");
/// Its file name in the run's directory.
pub const PYENV_FILE: &str = "sluice_pyenv.py";
/// Where the virtual environments of `python` jobs are kept, under the backend's data dir.
pub const VENVS_DIR: &str = "venvs";

/// A file a run's directory gets before the run starts: its name in the directory and text.
pub type RunFile = (&'static str, Vec<u8>);

/// The statements of a `sparkSql` job: its `sql` text, or its `file` read now, split.
pub fn sql_statements(q: &SparkSqlSpec) -> Result<Vec<String>, BackendError> {
    let (field, text) = match (&q.sql, &q.file) {
        (Some(sql), _) => ("sparkSql.sql", sql.clone()),
        (None, Some(file)) => (
            "sparkSql.file",
            std::fs::read_to_string(file).map_err(|e| {
                BackendError::Rejected(format!("sparkSql.file {file:?} cannot be read: {e}"))
            })?,
        ),
        (None, None) => {
            return Err(BackendError::Rejected(
                "the sparkSql job has neither sql nor file".into(),
            ));
        }
    };
    let statements =
        split_statements(&text).map_err(|e| BackendError::Rejected(format!("{field}: {e}")))?;
    if statements.is_empty() {
        return Err(BackendError::Rejected(format!(
            "{field} has no statement (only white space and comments)"
        )));
    }
    Ok(statements)
}

/// The files of a run's directory for a job: for `sparkSql`, the runner and the statements
/// (as JSON); for a `python` job with requirements, the environment bootstrap.
pub fn run_files(job: &Job) -> Result<Vec<RunFile>, BackendError> {
    match &job.kind {
        JobKind::SparkSql(q) => {
            let statements = sql_statements(q)?;
            let json = serde_json::to_vec(&statements).map_err(|e| BackendError::Io {
                context: "encoding the statements".into(),
                source: e.into(),
            })?;
            Ok(vec![
                (SQL_RUNNER_FILE, SQL_RUNNER.as_bytes().to_vec()),
                (SQL_STATEMENTS_FILE, json),
            ])
        }
        JobKind::Python(p) if !p.requirements.is_empty() => {
            Ok(vec![(PYENV_FILE, PYENV.as_bytes().to_vec())])
        }
        _ => Ok(Vec::new()),
    }
}

/// Writes a run's files into its directory (which must exist).
pub async fn write_run_files(dir: &Path, files: &[RunFile]) -> Result<(), BackendError> {
    for (name, text) in files {
        crate::fsutil::write_atomic(&dir.join(name), text).await?;
    }
    Ok(())
}

/// `command` run through the Python environment bootstrap when the job has requirements:
/// `<python> <dir>/sluice_pyenv.py --cache <venvs> --requirement R... -- command...`, where
/// `@python` in `command` becomes the environment's python. Without requirements, `command`
/// with `@python` replaced by `python`.
pub fn with_python_env(
    p: &PythonSpec,
    python: &str,
    dir: &Path,
    venvs: &Path,
    command: Vec<String>,
) -> Result<Vec<String>, BackendError> {
    if p.requirements.is_empty() {
        return Ok(command
            .into_iter()
            .map(|a| {
                if a == "@python" {
                    python.to_string()
                } else {
                    a
                }
            })
            .collect());
    }
    let mut argv = vec![
        python.to_string(),
        utf8(&dir.join(PYENV_FILE))?,
        "--cache".into(),
        utf8(venvs)?,
    ];
    for r in &p.requirements {
        argv.push("--requirement".into());
        argv.push(r.clone());
    }
    argv.push("--".into());
    argv.extend(command);
    Ok(argv)
}

/// The `python` job's command without Spark: `@python <file> <args>`.
pub fn python_command(p: &PythonSpec) -> Vec<String> {
    let mut argv = vec!["@python".to_string(), p.file.clone().unwrap_or_default()];
    argv.extend(p.args.iter().map(|a| a.0.clone()));
    argv
}

/// The `dbt` job's command line: the executable, then [`DbtSpec::args`] with dbt's artifacts
/// (`run_results.json`) written into the run's directory ([`DBT_TARGET_DIR`]).
pub fn dbt_argv(d: &DbtSpec, dbt: &str, dir: &Path) -> Result<Vec<String>, BackendError> {
    let mut argv = vec![dbt.to_string()];
    argv.extend(d.args(&utf8(&dir.join(DBT_TARGET_DIR))?));
    Ok(argv)
}

/// The result a run left in its directory: dbt's `run_results.json`, if any.
pub async fn read_result(dir: &Path) -> Result<Option<RunResult>, BackendError> {
    let path = dir.join(DBT_TARGET_DIR).join("run_results.json");
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => parse_dbt_run_results(&text)
            .map(|r| Some(RunResult::Dbt(r)))
            .map_err(|e| BackendError::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::other(e.to_string()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackendError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        }),
    }
}

fn utf8(p: &Path) -> Result<String, BackendError> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| BackendError::Config(format!("the path {} is not valid UTF-8", p.display())))
}

/// The venvs directory under a data directory.
pub fn venvs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(VENVS_DIR)
}
