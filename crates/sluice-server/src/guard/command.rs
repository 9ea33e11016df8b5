//! Command jobs are a privilege: a job whose work is an argv run on the sluice host is refused
//! unless `[security.command_jobs]` allows its namespace, its program and its working
//! directory, and the caller is granted it ([`CommandGrant`], the hook for roles).

use std::path::{Component, Path};

use sluice_core::secretref::SecretRef;
use sluice_core::spec::{Job, JobKind};

use crate::config::SecurityConfig;

/// Whether a caller may run command jobs in a namespace, beyond what the configuration allows:
/// the hook through which authentication grants the privilege by role. Until a caller has an
/// identity, [`ConfigOnly`] grants what the configuration allows.
pub trait CommandGrant {
    /// True when the caller may submit command jobs into `namespace`.
    fn may_run_commands(&self, namespace: &str) -> bool;
}

/// The grant of a caller without an identity: the configuration alone decides.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigOnly;

impl CommandGrant for ConfigOnly {
    fn may_run_commands(&self, _namespace: &str) -> bool {
        true
    }
}

/// Why a command job was refused (a 403), naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandRefused(pub String);

/// Both checks of a new job or schedule template: [`check_command_job`] and
/// [`check_secret_refs`].
pub fn check_job(
    security: &SecurityConfig,
    job: &Job,
    grant: &dyn CommandGrant,
    what: &str,
) -> Result<(), CommandRefused> {
    check_command_job(security, job, grant, what)?;
    check_secret_refs(security, job, what)
}

/// Refuses a `secretEnv` entry that reads a file or an environment variable of the server
/// outside `[security.secrets]` (a job could otherwise read any secret of the server's user).
pub fn check_secret_refs(
    security: &SecurityConfig,
    job: &Job,
    what: &str,
) -> Result<(), CommandRefused> {
    let refs = match &job.kind {
        JobKind::Command(c) => &c.secret_env,
        JobKind::Spark { spec, .. } => &spec.secret_env,
        JobKind::SparkSql(q) => &q.secret_env,
        JobKind::Python(p) => &p.secret_env,
        JobKind::Dbt(d) => &d.secret_env,
    };
    let prefix = format!("{}.secretEnv", job.kind.section());
    let allowed = &security.secrets;
    for (k, r) in refs {
        match r {
            SecretRef::File(p)
                if !allowed
                    .files
                    .iter()
                    .any(|d| within(Path::new(p), Path::new(d))) =>
            {
                return Err(CommandRefused(format!(
                    "field `{prefix}.{k}.file` = {p:?}: {what}: the server's files may be read \
                     only under security.secrets.files ({})",
                    list(&allowed.files)
                )));
            }
            SecretRef::Env(n)
                if !allowed.env.iter().any(|e| match e.strip_suffix('*') {
                    Some(prefix) => n.starts_with(prefix),
                    None => e == n,
                }) =>
            {
                return Err(CommandRefused(format!(
                    "field `{prefix}.{k}.env` = {n:?}: {what}: the server's environment may be \
                     read only for the names in security.secrets.env ({})",
                    list(&allowed.env)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none configured".to_string()
    } else {
        items.join(", ")
    }
}

/// Refuses `job` when it runs a program on the host (a command, a `python` or a `dbt` job) that
/// the configuration (and `grant`) does not allow; a job run by Spark (`spark`, `sparkSql`)
/// passes. A `python` job's `interpreter` is its program; a `dbt` job's is the server's
/// configured dbt, and its project and profiles directories are held to the working
/// directories. `what` names the document in messages ("job ns/name").
pub fn check_command_job(
    security: &SecurityConfig,
    job: &Job,
    grant: &dyn CommandGrant,
    what: &str,
) -> Result<(), CommandRefused> {
    if !job.kind.runs_host_code() {
        return Ok(());
    }
    let section = job.kind.section();
    let ns = job.namespace.as_str();
    let Some(policy) = &security.command_jobs else {
        return Err(CommandRefused(format!(
            "field `{section}`: {what} is a {section} job (a program run on the sluice host); \
             command, python and dbt jobs are refused unless the server's configuration allows \
             them ([security.command_jobs], see docs/security.md)"
        )));
    };
    if !policy.namespaces.iter().any(|n| n == "*" || n == ns) {
        return Err(CommandRefused(format!(
            "field `{section}`: {what}: command, python and dbt jobs are not allowed in \
             namespace {ns:?} (security.command_jobs.namespaces)"
        )));
    }
    if !grant.may_run_commands(ns) {
        return Err(CommandRefused(format!(
            "field `{section}`: {what}: the caller may not run command, python or dbt jobs in \
             namespace {ns:?}"
        )));
    }
    // The program the job chooses, its environment and its directory, as the policy sees them.
    let (program, env, dirs) = match &job.kind {
        JobKind::Command(c) => (
            c.argv.first().map(|a| ("command.argv[0]", a.as_str())),
            &c.env,
            vec![("command.workingDir", c.working_dir.as_deref())],
        ),
        JobKind::Python(p) => (
            p.interpreter.as_deref().map(|i| ("python.interpreter", i)),
            &p.env,
            vec![("python.workingDir", p.working_dir.as_deref())],
        ),
        JobKind::Dbt(d) => (
            None,
            &d.env,
            vec![
                ("dbt.projectDir", d.project_dir.as_deref()),
                ("dbt.profilesDir", d.profiles_dir.as_deref()),
            ],
        ),
        _ => return Ok(()),
    };
    if let Some(allowed) = &policy.executables {
        if let Some((field, program)) = program
            && !allowed.iter().any(|e| e == program)
        {
            return Err(CommandRefused(format!(
                "field `{field}` = {program:?}: {what}: the program is not one of \
                 security.command_jobs.executables ({})",
                allowed.join(", ")
            )));
        }
        if let Some(k) = env.keys().find(|k| k.eq_ignore_ascii_case("PATH")) {
            return Err(CommandRefused(format!(
                "field `{section}.env.{k}`: {what}: a job may not set PATH when \
                 security.command_jobs.executables is set (it would choose the program)"
            )));
        }
    }
    for (field, dir) in dirs {
        if let Some(w) = dir
            && Path::new(w).is_absolute()
            && !policy
                .working_dirs
                .iter()
                .any(|d| within(Path::new(w), Path::new(d)))
        {
            return Err(CommandRefused(format!(
                "field `{field}` = {w:?}: {what}: an absolute directory must be under one of \
                 security.command_jobs.working_dirs ({}); a relative one is inside the run \
                 directory",
                if policy.working_dirs.is_empty() {
                    "none configured".to_string()
                } else {
                    policy.working_dirs.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// True when `path` is `dir` or below it, compared by components (no `..` in either: the
/// parser refuses it in a job, the configuration in its directories).
fn within(path: &Path, dir: &Path) -> bool {
    fn normal(p: &Path) -> Vec<Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    }
    let (p, d) = (normal(path), normal(dir));
    p.len() >= d.len() && p[..d.len()] == d[..]
}
