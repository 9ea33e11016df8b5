//! The one `spark-submit` command-line builder, shared by the local backend (`--master
//! local[N]`) and the Spark standalone backend in client mode (`--master spark://...`), and the
//! dependency lists they and the standalone REST submission both pass on (no I/O).
//!
//! A command line is [`spark_submit_command`] with the [`SubmitArgs`] of a mode:
//! [`SubmitArgs::local`] or [`SubmitArgs::standalone_client`]. Each mode names the conf keys it
//! sets itself ([`LOCAL_OWN_CONF`], [`STANDALONE_OWN_CONF`]); the job's values for those are
//! not passed on.

use std::borrow::Cow;
use std::path::Path;

use sluice_core::sizing::{driver_heap_mib, local_threads};
use sluice_core::spec::{Deps, Job, SparkSpec};

use crate::BackendError;

/// Conf keys sluice sets itself in local mode; the job's values for them are not passed on.
/// (`spark.driver.memory` is read by [`driver_heap_mib`] and passed as computed; the master and
/// deploy mode are fixed to `local[N]` and client.)
pub(crate) const LOCAL_OWN_CONF: [&str; 3] = [
    "spark.driver.memory",
    "spark.master",
    "spark.submit.deployMode",
];

/// Conf set for local runs unless the job sets it.
const LOCAL_CONF_DEFAULTS: [(&str, &str); 3] = [
    ("spark.driver.host", "127.0.0.1"),
    ("spark.driver.bindAddress", "127.0.0.1"),
    ("spark.ui.enabled", "false"),
];

/// Conf keys sluice sets itself on a standalone cluster (client and cluster mode); the job's
/// values for them are not passed on.
pub(crate) const STANDALONE_OWN_CONF: [&str; 7] = [
    "spark.master",
    "spark.submit.deployMode",
    "spark.driver.memory",
    "spark.driver.cores",
    "spark.executor.cores",
    "spark.executor.memory",
    "spark.cores.max",
];

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

/// The Spark application a job runs as ([`sluice_core::spec::JobKind::spark_spec`]: a Spark
/// job, a `sparkSql` job's runner, a `python` job with Spark), or `Rejected` for a job Spark
/// does not run.
pub(crate) fn spark_spec(job: &Job) -> Result<Cow<'_, SparkSpec>, BackendError> {
    job.kind.spark_spec().ok_or_else(|| {
        BackendError::Rejected(format!(
            "job {} is a {} job, not run by Spark",
            job.name,
            job.kind.section()
        ))
    })
}

/// What varies between `spark-submit` command lines: see [`spark_submit_command`].
pub(crate) struct SubmitArgs {
    /// `--master`.
    pub(crate) master: String,
    /// Conf set by sluice, passed first, in this order.
    pub(crate) set_conf: Vec<(String, String)>,
    /// Conf keys of the job that are not passed on (sluice sets them, or they must not change).
    pub(crate) own_conf: &'static [&'static str],
    /// Conf passed after the job's own when the job does not set the key.
    pub(crate) defaults: Vec<(String, String)>,
    /// Where Spark writes the run's event log (see [`SubmitArgs::with_event_log`]).
    pub(crate) event_log: Option<String>,
}

/// Conf keys sluice sets itself when it keeps a run's event log; the job's values for them are
/// not passed on.
pub(crate) const EVENT_LOG_OWN_CONF: [&str; 2] = ["spark.eventLog.enabled", "spark.eventLog.dir"];

/// Conf set with an event log unless the job sets it: the process tree's memory (RSS) and the
/// per-stage peaks of every executor go into the log, and executors sample their memory every
/// half second (Spark's default samples only at heartbeats, every 10 s, which a short run may
/// never reach: its log then has no memory peaks at all).
pub(crate) const EVENT_LOG_DEFAULTS: [(&str, &str); 3] = [
    ("spark.executor.processTreeMetrics.enabled", "true"),
    ("spark.eventLog.logStageExecutorMetrics", "true"),
    ("spark.executor.metrics.pollingInterval", "500ms"),
];

impl SubmitArgs {
    /// The same, with Spark's event log on and written into `dir` (which must exist):
    /// `spark.eventLog.enabled=true`, `spark.eventLog.dir=file://<dir>` (the job's values for
    /// these are dropped), and process-tree and stage executor metrics unless the job sets
    /// them. sluice reads the log when the run ends (what the run used).
    pub(crate) fn with_event_log(mut self, dir: &Path) -> Result<SubmitArgs, BackendError> {
        let dir = dir.to_str().ok_or_else(|| {
            BackendError::Config(format!(
                "the event log directory {} is not valid UTF-8",
                dir.display()
            ))
        })?;
        self.event_log = Some(format!("file://{dir}"));
        self.defaults.extend(
            EVENT_LOG_DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        Ok(self)
    }

    /// Local mode: `--master local[N]` (N = [`local_threads`]), the driver heap, loopback driver
    /// host and bind address and a disabled UI unless the job sets them.
    pub(crate) fn local(spec: &SparkSpec) -> Result<SubmitArgs, BackendError> {
        let threads = local_threads(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
        let heap = driver_heap_mib(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
        Ok(SubmitArgs {
            master: format!("local[{threads}]"),
            set_conf: vec![("spark.driver.memory".into(), format!("{heap}m"))],
            own_conf: &LOCAL_OWN_CONF,
            defaults: LOCAL_CONF_DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            event_log: None,
        })
    }

    /// A client-mode driver on a standalone cluster: `--master <master_url>`, client deploy
    /// mode, the driver heap, `executors` x `cores` executors of `heap_mib` each (and
    /// `spark.cores.max` = their product), and `driver_host` as the driver's host and bind
    /// address unless the job sets them.
    pub(crate) fn standalone_client(
        spec: &SparkSpec,
        master_url: &str,
        driver_host: Option<&str>,
        (executors, cores, heap_mib): (u64, u64, u64),
    ) -> Result<SubmitArgs, BackendError> {
        let driver_heap =
            driver_heap_mib(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
        let mut defaults = Vec::new();
        if let Some(h) = driver_host {
            defaults.push(("spark.driver.host".to_string(), h.to_string()));
            defaults.push(("spark.driver.bindAddress".to_string(), h.to_string()));
        }
        Ok(SubmitArgs {
            master: master_url.to_string(),
            set_conf: vec![
                ("spark.submit.deployMode".into(), "client".into()),
                ("spark.driver.memory".into(), format!("{driver_heap}m")),
                ("spark.executor.cores".into(), cores.to_string()),
                ("spark.executor.memory".into(), format!("{heap_mib}m")),
                (
                    "spark.cores.max".into(),
                    executors.saturating_mul(cores).to_string(),
                ),
            ],
            own_conf: &STANDALONE_OWN_CONF,
            defaults,
            event_log: None,
        })
    }
}

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
    let args = SubmitArgs::local(&spec)?;
    spark_submit_command(spark_home, image_spark_home, job, &args)
}

/// [`spark_submit_argv`] with the event log written into `event_log_dir`
/// ([`SubmitArgs::with_event_log`]).
pub fn spark_submit_argv_logged(
    spark_home: &Path,
    image_spark_home: &str,
    job: &Job,
    event_log_dir: &Path,
) -> Result<Vec<String>, BackendError> {
    let spec = spark_spec(job)?;
    let args = SubmitArgs::local(&spec)?.with_event_log(event_log_dir)?;
    spark_submit_command(spark_home, image_spark_home, job, &args)
}

/// `spark-submit --master <master> --name <job name>`, the `set_conf` entries, every `sparkConf`
/// entry of the job not in `own_conf`, the `defaults` the job does not set, `--class`, the
/// dependencies, the application file (through [`map_local_path`]) and its arguments (no I/O).
pub(crate) fn spark_submit_command(
    spark_home: &Path,
    image_spark_home: &str,
    job: &Job,
    args: &SubmitArgs,
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
    if let Some(dir) = &args.event_log {
        argv.push("--conf".into());
        argv.push("spark.eventLog.enabled=true".into());
        argv.push("--conf".into());
        argv.push(format!("spark.eventLog.dir={dir}"));
    }
    for (k, v) in &spec.spark_conf {
        let logged = args.event_log.is_some() && EVENT_LOG_OWN_CONF.contains(&k.as_str());
        if !args.own_conf.contains(&k.as_str()) && !logged {
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
    if let Some(deps) = &spec.deps {
        for dep in dep_lists(deps) {
            if let Some(joined) = dep.joined(&map) {
                argv.push(dep.flag.to_string());
                argv.push(joined);
            }
        }
    }
    let file = main_file(job, &spec)?;
    argv.push(map(file));
    argv.extend(spec.arguments.iter().map(|a| a.0.clone()));
    Ok(argv)
}

/// The job's `mainApplicationFile`, or `Rejected` when it has none.
pub(crate) fn main_file<'a>(job: &Job, spec: &'a SparkSpec) -> Result<&'a str, BackendError> {
    spec.main_application_file
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| {
            BackendError::Rejected(format!("job {} has no mainApplicationFile", job.name))
        })
}

/// One list of a job's dependencies, as `spark-submit` and Spark's conf name it.
pub(crate) struct DepList<'a> {
    /// The `spark-submit` flag (`--jars`).
    pub(crate) flag: &'static str,
    /// The conf key the flag sets (`spark.jars`), for submissions without `spark-submit`.
    pub(crate) conf: &'static str,
    /// The items.
    pub(crate) items: &'a [String],
    /// True when the items are paths (mapped like the application file), false for
    /// coordinates and URLs.
    pub(crate) paths: bool,
}

impl DepList<'_> {
    /// The items joined with commas (paths through `map`), `None` when there are none.
    pub(crate) fn joined(&self, map: &dyn Fn(&str) -> String) -> Option<String> {
        if self.items.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .items
            .iter()
            .map(|i| if self.paths { map(i) } else { i.clone() })
            .collect();
        Some(items.join(","))
    }
}

/// Every dependency list of a job, in `spark-submit`'s order.
pub(crate) fn dep_lists(deps: &Deps) -> [DepList<'_>; 7] {
    let l = |flag, conf, items, paths| DepList {
        flag,
        conf,
        items,
        paths,
    };
    [
        l("--jars", "spark.jars", &deps.jars, true),
        l("--py-files", "spark.submit.pyFiles", &deps.py_files, true),
        l("--files", "spark.files", &deps.files, true),
        l("--archives", "spark.archives", &deps.archives, true),
        l("--packages", "spark.jars.packages", &deps.packages, false),
        l(
            "--exclude-packages",
            "spark.jars.excludes",
            &deps.exclude_packages,
            false,
        ),
        l(
            "--repositories",
            "spark.jars.repositories",
            &deps.repositories,
            false,
        ),
    ]
}

#[cfg(test)]
mod tests;
