//! What a job may not ask of the host that runs it, whatever the server's configuration: the
//! checks that keep a user's strings from becoming options of `spark-submit`, from climbing out
//! of the run directory, and from changing how the processes sluice starts are loaded.
//!
//! - A command's environment may not set the dynamic loader's or the shell's variables
//!   ([`refused_env`]), nor a name that is not a plain variable name.
//! - A command's `workingDir` may not be `/` nor climb with `..`; a relative one is inside the
//!   run directory.
//! - A Spark application's file, class and dependencies may not begin with `-` (they would be
//!   read as options of `spark-submit`), dependency items may not hold `,` (they are joined with
//!   commas), relative paths may not climb with `..`, and conf keys may not hold `=`, white
//!   space or begin with `-` (`--conf KEY=VALUE` is split at the first `=`).
//!
//! Which namespaces may run command jobs at all, which programs and which absolute working
//! directories, is the server's configuration (`[security.command_jobs]`), not checked here.

use std::collections::BTreeMap;

use crate::secretref::SecretRef;
use crate::spec::{CommandSpec, PythonSpec, SparkSpec, SpecError, Text};

/// Environment variables a job may never set: the dynamic loader's (`LD_*`, `DYLD_*`: a
/// library preloaded into every process the run starts), the shell's start-up and parsing
/// variables, glibc's variables that load code or data from a path, and sluice's own
/// (`SLUICE_*`).
pub fn refused_env(name: &str) -> Option<&'static str> {
    const EXACT: [&str; 17] = [
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
    ];
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("LD_") || upper.starts_with("DYLD_") {
        Some("would change how the dynamic loader loads every program of the run")
    } else if upper.starts_with("BASH_FUNC_") || EXACT.contains(&upper.as_str()) {
        Some("would change how a shell or the C library of the run behaves")
    } else if upper.starts_with("MALLOC_") {
        Some("would change the C library's allocator of the run")
    } else if upper.starts_with("SLUICE_") {
        Some("is reserved for sluice (SLUICE_RUN_DIR, SLUICE_JOB_ID, SLUICE_ATTEMPT)")
    } else {
        None
    }
}

/// True for a portable environment variable name: a letter or `_`, then letters, digits, `_`.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An environment variable name a job may set, else an error naming `field`.
pub fn check_env_name(field: &str, name: &str) -> Result<(), SpecError> {
    if !is_env_name(name) {
        return Err(SpecError::bad(
            field,
            name,
            "is not an environment variable name (a letter or '_', then letters, digits or '_')",
        ));
    }
    if let Some(why) = refused_env(name) {
        return Err(SpecError::bad(
            field,
            name,
            format!("may not be set by a job: it {why}"),
        ));
    }
    Ok(())
}

/// True when a path has a `..` component (`..`, `a/../b`, `../x`; a URL's path counts too).
fn climbs(path: &str) -> bool {
    path.split(['/', '\\']).any(|c| c == "..")
}

/// Checks the secret references of `secretEnv` at `prefix` (`command.secretEnv`): names as for
/// `env` and not also in `env`, an absolute file without `..`, a variable name, a Kubernetes
/// Secret's name and key (only where `kube_refs`).
pub fn check_secret_env(
    prefix: &str,
    refs: &BTreeMap<String, SecretRef>,
    env: &[&String],
    kube_refs: bool,
) -> Result<(), SpecError> {
    for (k, r) in refs {
        let field = format!("{prefix}.{k}");
        check_env_name(&field, k)?;
        if env.contains(&k) {
            return Err(SpecError::bad(field, k, "is set in env too; give it once"));
        }
        match r {
            SecretRef::File(p) => {
                if !p.starts_with('/') || climbs(p) {
                    return Err(SpecError::bad(
                        format!("{field}.file"),
                        p,
                        "must be an absolute path without `..`",
                    ));
                }
            }
            SecretRef::Env(n) => {
                if !is_env_name(n) {
                    return Err(SpecError::bad(
                        format!("{field}.env"),
                        n,
                        "is not an environment variable name",
                    ));
                }
            }
            SecretRef::SecretKeyRef { name, key } => {
                if !kube_refs {
                    return Err(SpecError::bad(
                        format!("{field}.secretKeyRef"),
                        name,
                        "a Kubernetes Secret can be given to Spark jobs only (on the Kubernetes backend)",
                    ));
                }
                let dns = !name.is_empty()
                    && name.len() <= 253
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !dns {
                    return Err(SpecError::bad(
                        format!("{field}.secretKeyRef.name"),
                        name,
                        "is not a Secret name (lowercase letters, digits, '-' and '.')",
                    ));
                }
                let key_ok = !key.is_empty()
                    && key.len() <= 253
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !key_ok {
                    return Err(SpecError::bad(
                        format!("{field}.secretKeyRef.key"),
                        key,
                        "is not a Secret key (letters, digits, '-', '_' and '.')",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The safety checks of a command job (see the module's documentation).
pub fn check_command(c: &CommandSpec) -> Result<(), SpecError> {
    check_process("command", &c.env, &c.secret_env, c.working_dir.as_deref())
}

/// The safety checks of a process a job starts on the host (a command, a `python` job, a
/// `dbt` job; `p` is its section): its environment's names, its secret references and its
/// working directory.
pub fn check_process(
    p: &str,
    env: &BTreeMap<String, Text>,
    secret_env: &BTreeMap<String, SecretRef>,
    working_dir: Option<&str>,
) -> Result<(), SpecError> {
    for k in env.keys() {
        check_env_name(&format!("{p}.env.{k}"), k)?;
    }
    let names: Vec<&String> = env.keys().collect();
    check_secret_env(&format!("{p}.secretEnv"), secret_env, &names, false)?;
    if let Some(w) = working_dir {
        let field = format!("{p}.workingDir");
        if w.trim().is_empty() {
            return Err(SpecError::bad(field, w, "is empty"));
        }
        if w.trim_end_matches('/').is_empty() {
            return Err(SpecError::bad(
                field,
                w,
                "is the root directory; give a directory inside the run directory (relative) \
                 or one the server allows",
            ));
        }
        if climbs(w) {
            return Err(SpecError::bad(
                field,
                w,
                "may not contain `..` (a relative working directory is inside the run directory)",
            ));
        }
    }
    Ok(())
}

/// The safety checks of a `python` job: those of a process, no `..` in its file, and those of
/// a Spark application when it runs with Spark.
pub fn check_python(py: &PythonSpec) -> Result<(), SpecError> {
    check_process("python", &py.env, &py.secret_env, py.working_dir.as_deref())?;
    if let Some(f) = &py.file {
        check_path("python.file", f)?;
    }
    if let Some(s) = py.to_spark() {
        check_spark(&s, "python")?;
    }
    Ok(())
}

/// Refuses a value that `spark-submit` would read as one of its own options.
fn not_an_option(field: &str, v: &str) -> Result<(), SpecError> {
    if v.trim_start().starts_with('-') {
        return Err(SpecError::bad(
            field,
            v,
            "may not begin with '-' (spark-submit would read it as one of its options)",
        ));
    }
    Ok(())
}

/// A path (or URL) of the application or a dependency.
fn check_path(field: &str, v: &str) -> Result<(), SpecError> {
    not_an_option(field, v)?;
    if climbs(v) {
        return Err(SpecError::bad(
            field,
            v,
            "may not contain `..` (relative paths are inside the run directory)",
        ));
    }
    Ok(())
}

/// The Spark conf keys that set environment variables of a driver or executor process.
const ENV_CONF_PREFIXES: [&str; 4] = [
    "spark.executorEnv.",
    "spark.yarn.appMasterEnv.",
    "spark.kubernetes.driverEnv.",
    "spark.mesos.driverEnv.",
];

/// The safety checks of a Spark application at `p` (`spark` or `spec`; see the module's
/// documentation).
pub fn check_spark(s: &SparkSpec, p: &str) -> Result<(), SpecError> {
    check_secret_env(&format!("{p}.secretEnv"), &s.secret_env, &[], true)?;
    if let Some(f) = &s.main_application_file {
        check_path(&format!("{p}.mainApplicationFile"), f)?;
    }
    if let Some(c) = &s.main_class {
        let field = format!("{p}.mainClass");
        not_an_option(&field, c)?;
        let ok = c
            .chars()
            .all(|ch| ch.is_alphanumeric() || matches!(ch, '.' | '_' | '$'));
        if !ok {
            return Err(SpecError::bad(
                field,
                c,
                "is not a class name (letters, digits, '.', '_' and '$')",
            ));
        }
    }
    for k in s.spark_conf.keys() {
        let field = format!("{p}.sparkConf.{k}");
        if k.is_empty() || k.starts_with('-') || k.contains('=') || k.contains(char::is_whitespace)
        {
            return Err(SpecError::bad(
                field,
                k,
                "is not a Spark conf key (no '=', no white space, not beginning with '-')",
            ));
        }
        for prefix in ENV_CONF_PREFIXES {
            if let Some(name) = k.strip_prefix(prefix) {
                check_env_name(&field, name)?;
            }
        }
    }
    if let Some(d) = &s.deps {
        for (name, list, paths) in [
            ("jars", &d.jars, true),
            ("files", &d.files, true),
            ("pyFiles", &d.py_files, true),
            ("archives", &d.archives, true),
            ("packages", &d.packages, false),
            ("excludePackages", &d.exclude_packages, false),
            ("repositories", &d.repositories, false),
        ] {
            for (i, v) in list.iter().enumerate() {
                let field = format!("{p}.deps.{name}[{i}]");
                if paths {
                    check_path(&field, v)?;
                } else {
                    not_an_option(&field, v)?;
                }
                if v.contains(',') {
                    return Err(SpecError::bad(
                        field,
                        v,
                        "may not contain ',' (give each item on its own)",
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
