//! The `spark-submit` command lines of local runs (no I/O).

use std::path::Path;

use sluice_core::sizing::{driver_heap_mib, local_threads};
use sluice_core::spec::{Job, JobKind, SparkSpec};

use crate::BackendError;

/// Maps an application or dependency path for a local run: a `local://` prefix is stripped and a
/// path under `image_spark_home` is moved under `spark_home`; other paths and URLs are kept.
pub fn map_local_path(path: &str, spark_home: &Path, image_spark_home: &str) -> String {
    let stripped = path.strip_prefix("local://").unwrap_or(path);
    if stripped.contains("://") {
        return path.to_string();
    }
    let image = Path::new(image_spark_home);
    if !image_spark_home.is_empty()
        && image.is_absolute()
        && let Ok(rest) = Path::new(stripped).strip_prefix(image)
    {
        return spark_home.join(rest).to_string_lossy().into_owned();
    }
    stripped.to_string()
}

/// Conf keys sluice sets itself in local mode; the job's values for them are not passed on.
/// (`spark.driver.memory` is read by [`driver_heap_mib`] and passed as computed; the master and
/// deploy mode are fixed to `local[N]` and client.)
pub(super) const OWN_CONF: [&str; 3] = [
    "spark.driver.memory",
    "spark.master",
    "spark.submit.deployMode",
];

/// Conf set for local runs unless the job sets it.
pub(super) const LOCAL_CONF_DEFAULTS: [(&str, &str); 3] = [
    ("spark.driver.host", "127.0.0.1"),
    ("spark.driver.bindAddress", "127.0.0.1"),
    ("spark.ui.enabled", "false"),
];

/// The `spark-submit` command line for running a Spark job in local mode (no I/O).
///
/// `spark-submit --master local[N] --name <name> --conf spark.driver.memory=<heap>m`, every
/// `sparkConf` entry (except the master, the deploy mode and the driver memory, which are set
/// here), loopback driver host and bind address and a disabled UI unless the job sets them,
/// `--class`, the dependencies, the application file and its arguments. N is
/// [`local_threads`]. Application and dependency paths go through [`map_local_path`].
pub fn spark_submit_argv(
    spark_home: &Path,
    image_spark_home: &str,
    job: &Job,
) -> Result<Vec<String>, BackendError> {
    let spec = spark_spec(job)?;
    let threads = local_threads(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
    let heap = driver_heap_mib(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
    spark_submit_command(
        spark_home,
        image_spark_home,
        job,
        &SubmitArgs {
            master: format!("local[{threads}]"),
            set_conf: vec![("spark.driver.memory".into(), format!("{heap}m"))],
            own_conf: &OWN_CONF,
            defaults: LOCAL_CONF_DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        },
    )
}

/// The Spark spec of a job, or `Rejected` for a command job.
pub(crate) fn spark_spec(job: &Job) -> Result<&SparkSpec, BackendError> {
    match &job.kind {
        JobKind::Spark { spec, .. } => Ok(spec.as_ref()),
        JobKind::Command(_) => Err(BackendError::Rejected(format!(
            "job {} is not a Spark application",
            job.name
        ))),
    }
}

/// What varies between `spark-submit` command lines: see [`spark_submit_command`].
pub(crate) struct SubmitArgs<'a> {
    /// `--master`.
    pub(crate) master: String,
    /// Conf set by sluice, passed first, in this order.
    pub(crate) set_conf: Vec<(String, String)>,
    /// Conf keys of the job that are not passed on (sluice sets them, or they must not change).
    pub(crate) own_conf: &'a [&'a str],
    /// Conf passed after the job's own when the job does not set the key.
    pub(crate) defaults: Vec<(String, String)>,
}

/// `spark-submit --master <master> --name <job name>`, the `set_conf` entries, every `sparkConf`
/// entry of the job not in `own_conf`, the `defaults` the job does not set, `--class`, the
/// dependencies, the application file (through [`map_local_path`]) and its arguments (no I/O).
pub(crate) fn spark_submit_command(
    spark_home: &Path,
    image_spark_home: &str,
    job: &Job,
    args: &SubmitArgs<'_>,
) -> Result<Vec<String>, BackendError> {
    let spec = spark_spec(job)?;
    let submit = spark_home.join("bin").join("spark-submit");
    let submit = submit.to_str().ok_or_else(|| {
        BackendError::Config(format!(
            "the Spark home {} is not valid UTF-8",
            spark_home.display()
        ))
    })?;
    let map = |p: &str| map_local_path(p, spark_home, image_spark_home);
    let mut argv = vec![
        submit.to_string(),
        "--master".into(),
        args.master.clone(),
        "--name".into(),
        job.name.clone(),
    ];
    for (k, v) in &args.set_conf {
        argv.push("--conf".into());
        argv.push(format!("{k}={v}"));
    }
    for (k, v) in &spec.spark_conf {
        if !args.own_conf.contains(&k.as_str()) {
            argv.push("--conf".into());
            argv.push(format!("{k}={v}"));
        }
    }
    for (k, v) in &args.defaults {
        if spec.conf(k).is_none() {
            argv.push("--conf".into());
            argv.push(format!("{k}={v}"));
        }
    }
    if let Some(class) = spec.main_class.as_deref().filter(|c| !c.trim().is_empty()) {
        argv.push("--class".into());
        argv.push(class.to_string());
    }
    push_deps(&mut argv, spec, &map);
    let file = spec
        .main_application_file
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| {
            BackendError::Rejected(format!("job {} has no mainApplicationFile", job.name))
        })?;
    argv.push(map(file));
    argv.extend(spec.arguments.iter().map(|a| a.0.clone()));
    Ok(argv)
}

pub(super) fn push_deps(argv: &mut Vec<String>, spec: &SparkSpec, map: &dyn Fn(&str) -> String) {
    let Some(deps) = &spec.deps else { return };
    let lists: [(&str, &[String], bool); 7] = [
        ("--jars", &deps.jars, true),
        ("--py-files", &deps.py_files, true),
        ("--files", &deps.files, true),
        ("--archives", &deps.archives, true),
        ("--packages", &deps.packages, false),
        ("--exclude-packages", &deps.exclude_packages, false),
        ("--repositories", &deps.repositories, false),
    ];
    for (flag, items, paths) in lists {
        if items.is_empty() {
            continue;
        }
        let joined: Vec<String> = items
            .iter()
            .map(|i| if paths { map(i) } else { i.clone() })
            .collect();
        argv.push(flag.to_string());
        argv.push(joined.join(","));
    }
}
