//! The local backend: runs jobs as processes on this machine.
//!
//! The machine is one node, named [`NODE_NAME`], with a CPU and memory budget
//! ([`LocalConfig::cores_milli`], [`LocalConfig::memory_mib`]). A run reserves its job's whole
//! demand ([`Demand::total`]) for as long as it lives, and the backend refuses to start a run it
//! has no room for. A Spark job runs as `spark-submit --master local[N]` (one JVM), yet reserves
//! its driver and every executor, so that a job admitted here would also fit a cluster of that
//! size.
//!
//! Every run lives in `data_dir/runs/<job id>/<attempt>/`:
//! - `meta.json`: job id, attempt, demand, argv and start time; its presence marks the attempt as
//!   started (a repeated submit of the same attempt starts nothing);
//! - `pid`: the pid of the run's process, which leads its own process group;
//! - `output.log`: stdout and stderr, appended to by the process itself (files, not pipes, so
//!   the run outlives the server);
//! - `exit_code`: written by a small `sh` wrapper around the command when it ends, even if sluice
//!   is not running then;
//! - `killed_by`: the signal that killed the wrapper itself, written by sluice when it sees that.
//!
//! The wrapper's command line carries the run directory, which is how a restarted server
//! recognises the runs still alive ([`LocalBackend::new`] re-attaches them) and tells them apart
//! from unrelated processes that reuse a pid.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use sluice_core::job::{Demand, Resources};
use sluice_core::sizing::{driver_heap_mib, local_threads};
use sluice_core::spec::{Job, JobKind, SparkSpec};
use sluice_core::{NodeCapacity, Snapshot};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::{
    Backend, BackendError, CapacityReport, LogChunk, RunRef, RunStatus, SubmitRequest, Submitted,
};

/// The name of the single node the local backend reports.
pub const NODE_NAME: &str = "local";
/// Where Spark lives in the Spark images (`local:///opt/spark/...` in `SparkApplication`s).
pub const DEFAULT_IMAGE_SPARK_HOME: &str = "/opt/spark";
/// How long a cancelled run gets between SIGTERM and SIGKILL by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// File names inside a run directory.
const META: &str = "meta.json";
const PID: &str = "pid";
const LOG: &str = "output.log";
const EXIT_CODE: &str = "exit_code";
const KILLED_BY: &str = "killed_by";

/// The wrapper run by `/bin/sh -c SCRIPT <run dir> <argv...>`. It records the command's exit code
/// in the run directory whatever happens to sluice. `trap : TERM` makes the shell wait for the
/// command on SIGTERM (sent to the whole group by a cancel) and still record its code; a handled
/// (not ignored) signal is reset to its default in the command, so the command itself stops.
const WRAPPER: &str = r#"trap : TERM
"$@"
code=$?
printf '%s\n' "$code" > "$SLUICE_RUN_DIR/exit_code.tmp" && mv -f "$SLUICE_RUN_DIR/exit_code.tmp" "$SLUICE_RUN_DIR/exit_code"
exit $code"#;

/// How long to wait for the waiter task to record the end of a child that is seen dead.
const WAITER_WAIT: Duration = Duration::from_secs(5);
/// How long a cancel waits for the process group to disappear after SIGKILL.
const AFTER_KILL_WAIT: Duration = Duration::from_secs(5);
/// Poll interval while waiting for a process group to end.
const POLL: Duration = Duration::from_millis(50);

/// Configuration of the local backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// CPU budget in millicores.
    pub cores_milli: u64,
    /// Memory budget in MiB.
    pub memory_mib: u64,
    /// Runs live under `data_dir/runs/<job id>/<attempt>/`.
    pub data_dir: PathBuf,
    /// Spark's home (the directory holding `bin/spark-submit`; for pip's pyspark, the package
    /// directory). `None`: found by [`find_spark_home`].
    pub spark_home: Option<PathBuf>,
    /// `PYSPARK_PYTHON` for Python applications. `None`: the venv's python when Spark comes from
    /// pyspark installed in a venv, else Spark's default.
    pub python: Option<PathBuf>,
    /// Spark's home inside the Spark images: an application path under it (like
    /// `local:///opt/spark/examples/src/main/python/pi.py`) is mapped to the local Spark home.
    pub image_spark_home: String,
    /// A cancel sends SIGTERM to the run's process group, then SIGKILL after this long.
    pub kill_grace: Duration,
}

impl LocalConfig {
    /// A configuration with the detected budget ([`detect_budget`]) and defaults for the rest.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let (cores_milli, memory_mib) = detect_budget();
        Self {
            cores_milli,
            memory_mib,
            data_dir: data_dir.into(),
            spark_home: None,
            python: None,
            image_spark_home: DEFAULT_IMAGE_SPARK_HOME.to_string(),
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}

/// The default budget: the machine's cores and memory minus a reserve for everything else.
///
/// Cores come from [`std::thread::available_parallelism`] (which honours CPU quotas and
/// affinity); memory is `MemAvailable` from `/proc/meminfo` when the server starts (else
/// `MemTotal`), capped by a cgroup memory limit. Memory keeps a reserve for everything else
/// (1 GiB or 10%, whichever is larger); CPU does not, because CPU is compressible: a machine
/// whose cores are all promised runs jobs slower, while promised-away memory kills them.
/// See [`budget_after_reserve`].
pub fn detect_budget() -> (u64, u64) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib / 1024)
        })
    };
    let mut mem_mib = field("MemAvailable")
        .or_else(|| field("MemTotal"))
        .unwrap_or(2048);
    for limit_file in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Some(bytes) = std::fs::read_to_string(limit_file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            mem_mib = mem_mib.min(bytes / (1 << 20));
        }
    }
    budget_after_reserve(cores.saturating_mul(1000), mem_mib)
}

/// Takes the reserve off detected room: all cores (at least 1) and the memory less 1 GiB or
/// 10%, whichever is larger, leaving at least 512 MiB.
pub fn budget_after_reserve(cpu_milli: u64, mem_mib: u64) -> (u64, u64) {
    let mem_reserve = (mem_mib / 10).max(1024);
    (
        cpu_milli.max(1000),
        mem_mib.saturating_sub(mem_reserve).max(512),
    )
}

/// Finds Spark's home: `explicit` if given, else `$SPARK_HOME`, else the home of `spark-submit`
/// on `PATH`, else the `.venv` made by `scripts/ensure-pyspark.sh` in the current directory or one
/// of its parents. A candidate must hold `bin/spark-submit`.
///
/// A venv (a directory with `bin/spark-submit` and `lib/python3*/site-packages/pyspark/`) stands
/// for its pyspark package directory, which is the real Spark home (the venv's `bin/spark-submit`
/// is a wrapper that looks for it). When `explicit` is given and is not a Spark home, the answer
/// is `None` (no fallback).
pub fn find_spark_home(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return as_spark_home(dir);
    }
    if let Some(dir) = std::env::var_os("SPARK_HOME").filter(|v| !v.is_empty())
        && let Some(home) = as_spark_home(Path::new(&dir))
    {
        return Some(home);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let submit = dir.join("spark-submit");
            if !submit.is_file() {
                continue;
            }
            // pip's venv/bin/spark-submit: the venv stands for its pyspark package.
            if let Some(venv) = dir.parent()
                && let Some(pkg) = pyspark_in_venv(venv)
            {
                return Some(pkg);
            }
            // A Spark distribution: <home>/bin/spark-submit, possibly through a symlink.
            let real = std::fs::canonicalize(&submit).unwrap_or(submit);
            if let Some(home) = real.parent().and_then(Path::parent)
                && let Some(home) = as_spark_home(home)
            {
                return Some(home);
            }
        }
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find_map(|d| pyspark_in_venv(&d.join(".venv")))
}

/// `dir` as a Spark home: a venv is replaced by its pyspark package; otherwise `dir` if it holds
/// `bin/spark-submit`.
fn as_spark_home(dir: &Path) -> Option<PathBuf> {
    if let Some(pkg) = pyspark_in_venv(dir) {
        return Some(pkg);
    }
    dir.join("bin")
        .join("spark-submit")
        .is_file()
        .then(|| dir.to_path_buf())
}

/// `<venv>/lib/python3*/site-packages/pyspark` when it holds `bin/spark-submit`.
fn pyspark_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages").join("pyspark"))
        .filter(|p| p.join("bin").join("spark-submit").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The venv's python when `spark_home` is `<venv>/lib/python3*/site-packages/pyspark`.
fn venv_python(spark_home: &Path) -> Option<PathBuf> {
    let site = spark_home.parent()?;
    let lib = site.parent()?.parent()?;
    if site.file_name()? != "site-packages" || lib.file_name()? != "lib" {
        return None;
    }
    let python = lib.parent()?.join("bin").join("python");
    python.is_file().then_some(python)
}

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
const OWN_CONF: [&str; 3] = [
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

fn push_deps(argv: &mut Vec<String>, spec: &SparkSpec, map: &dyn Fn(&str) -> String) {
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

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunMeta {
    job_id: String,
    attempt: u32,
    demand: Demand,
    argv: Vec<String>,
    started_ms: u64,
}

type RunKey = (String, u32);

/// A run this backend counts as live.
struct LiveRun {
    pid: u32,
    demand: Demand,
    dir: PathBuf,
    /// Set to true by the waiter task once the child has ended and its end is recorded;
    /// `None` for a run re-attached after a restart (no child handle; liveness is polled).
    ended: Option<watch::Receiver<bool>>,
    /// The waiter task, aborted when the backend is dropped.
    waiter: Option<AbortHandle>,
}

struct Shared {
    cfg: LocalConfig,
    runs_dir: PathBuf,
    spark_home: Option<PathBuf>,
    python: Option<PathBuf>,
    budget: Resources,
    live: Mutex<BTreeMap<RunKey, LiveRun>>,
    /// Serialises submits (the room check and the start of a run are one step).
    submit_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, BTreeMap<RunKey, LiveRun>> {
        // A panic while holding the lock leaves the map itself consistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, key: &RunKey) {
        self.live().remove(key);
    }

    /// Drops re-attached runs whose process is gone. Runs with a child handle leave through
    /// their waiter task.
    fn prune(&self) {
        self.live()
            .retain(|_, r| r.ended.is_some() || is_our_run(r.pid, &r.dir));
    }
}

/// Runs jobs as processes on this machine. See the [module documentation](self).
pub struct LocalBackend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("cfg", &self.shared.cfg)
            .field("spark_home", &self.shared.spark_home)
            .finish_non_exhaustive()
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        // The runs keep going (own process groups, output to files); only the tasks that wait
        // for them stop, as if the server had died.
        for run in self.shared.live().values() {
            if let Some(w) = &run.waiter {
                w.abort();
            }
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |source| BackendError::Io { context, source }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A job id usable as a directory name.
fn valid_job_id(job_id: &str) -> bool {
    let mut comps = Path::new(job_id).components();
    matches!(comps.next(), Some(Component::Normal(_)))
        && comps.next().is_none()
        && !job_id.contains(['/', '\0'])
}

impl LocalBackend {
    /// Opens the backend on `cfg.data_dir` (created if missing) and re-attaches the runs of an
    /// earlier server that are still alive: they count against the budget and are tracked
    /// until they end.
    ///
    /// Fails with [`BackendError::Config`] when `cfg.spark_home` is given but holds no
    /// `bin/spark-submit`. Without an explicit Spark home and none found, the backend still
    /// runs command jobs and refuses Spark jobs with a hint.
    pub async fn new(cfg: LocalConfig) -> Result<Self, BackendError> {
        let spark_home = match &cfg.spark_home {
            Some(dir) => Some(find_spark_home(Some(dir)).ok_or_else(|| {
                BackendError::Config(format!(
                    "spark_home {} has no bin/spark-submit (nor is it a venv with pyspark); run \
                     scripts/ensure-pyspark.sh or fix [backend] spark_home",
                    dir.display()
                ))
            })?),
            None => find_spark_home(None),
        };
        let python = cfg
            .python
            .clone()
            .or_else(|| spark_home.as_deref().and_then(venv_python));
        match &spark_home {
            Some(h) => tracing::info!(spark_home = %h.display(), "local backend: Spark found"),
            None => tracing::warn!(
                "local backend: spark-submit not found; Spark jobs will be refused until \
                 scripts/ensure-pyspark.sh is run or [backend] spark_home is set"
            ),
        }
        let runs = cfg.data_dir.join("runs");
        tokio::fs::create_dir_all(&runs)
            .await
            .map_err(io_err(format!("creating {}", runs.display())))?;
        // Absolute, so that the run directory in a process's command line is the same whatever
        // the server's current directory.
        let runs_dir = tokio::fs::canonicalize(&runs)
            .await
            .map_err(io_err(format!("resolving {}", runs.display())))?;
        let budget = Resources::new(cfg.cores_milli, cfg.memory_mib);
        let shared = Arc::new(Shared {
            cfg,
            runs_dir,
            spark_home,
            python,
            budget,
            live: Mutex::new(BTreeMap::new()),
            submit_lock: tokio::sync::Mutex::new(()),
        });
        let backend = LocalBackend { shared };
        backend.reattach().await?;
        Ok(backend)
    }

    /// The Spark home in use, if any.
    pub fn spark_home(&self) -> Option<&Path> {
        self.shared.spark_home.as_deref()
    }

    /// `PYSPARK_PYTHON` for Python applications, if any (configured, or the venv's python).
    pub fn python(&self) -> Option<&Path> {
        self.shared.python.as_deref()
    }

    /// The budget (allocatable CPU and memory).
    pub fn budget(&self) -> Resources {
        self.shared.budget
    }

    /// The live runs as (job id, attempt), re-attached ones included.
    pub fn live_runs(&self) -> Vec<(String, u32)> {
        self.shared.prune();
        self.shared.live().keys().cloned().collect()
    }

    /// The directory of a run (whether or not it exists).
    pub fn run_dir(&self, job_id: &str, attempt: u32) -> PathBuf {
        self.shared.runs_dir.join(job_id).join(attempt.to_string())
    }

    async fn reattach(&self) -> Result<(), BackendError> {
        let runs_dir = &self.shared.runs_dir;
        let mut jobs = tokio::fs::read_dir(runs_dir)
            .await
            .map_err(io_err(format!("reading {}", runs_dir.display())))?;
        while let Some(job) = jobs
            .next_entry()
            .await
            .map_err(io_err(format!("reading {}", runs_dir.display())))?
        {
            let Ok(mut attempts) = tokio::fs::read_dir(job.path()).await else {
                continue;
            };
            while let Ok(Some(att)) = attempts.next_entry().await {
                let dir = att.path();
                if let Some((meta, pid)) = alive_unfinished(&dir).await {
                    tracing::info!(
                        job_id = %meta.job_id, attempt = meta.attempt, pid,
                        "local backend: re-attached a run still alive"
                    );
                    self.shared.live().insert(
                        (meta.job_id, meta.attempt),
                        LiveRun {
                            pid,
                            demand: meta.demand,
                            dir,
                            ended: None,
                            waiter: None,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// The run directory of an existing run, or `NotFound`.
    async fn existing_run_dir(&self, job_id: &str, attempt: u32) -> Result<PathBuf, BackendError> {
        let not_found = || BackendError::NotFound {
            job_id: job_id.to_string(),
            attempt,
        };
        if !valid_job_id(job_id) {
            return Err(not_found());
        }
        let dir = self.run_dir(job_id, attempt);
        if tokio::fs::try_exists(dir.join(META)).await.unwrap_or(false) {
            Ok(dir)
        } else {
            Err(not_found())
        }
    }

    /// Builds the program, arguments, environment and working directory of a run.
    fn command_for(&self, req: &SubmitRequest, dir: &Path) -> Result<Launch, BackendError> {
        match &req.job.kind {
            JobKind::Spark { .. } => {
                let home = self.shared.spark_home.as_deref().ok_or_else(|| {
                    BackendError::Config(
                        "spark-submit not found: run scripts/ensure-pyspark.sh (it installs \
                         pyspark into .venv) or set [backend] spark_home (or $SPARK_HOME)"
                            .into(),
                    )
                })?;
                let argv = spark_submit_argv(home, &self.shared.cfg.image_spark_home, &req.job)?;
                let mut env = vec![
                    (
                        "SPARK_HOME".to_string(),
                        home.to_string_lossy().into_owned(),
                    ),
                    ("SPARK_LOCAL_IP".to_string(), "127.0.0.1".to_string()),
                ];
                if let Some(py) = &self.shared.python {
                    env.push((
                        "PYSPARK_PYTHON".to_string(),
                        py.to_string_lossy().into_owned(),
                    ));
                }
                Ok(Launch {
                    argv,
                    env,
                    cwd: dir.to_path_buf(),
                })
            }
            JobKind::Command(c) => {
                let argv: Vec<String> = c.argv.iter().map(|a| a.0.clone()).collect();
                if argv.is_empty() {
                    return Err(BackendError::Rejected(format!(
                        "job {} has an empty command.argv",
                        req.job.name
                    )));
                }
                let cwd = match &c.working_dir {
                    Some(w) => {
                        let w = PathBuf::from(w);
                        if !w.is_dir() {
                            return Err(BackendError::Rejected(format!(
                                "command.workingDir {} is not a directory",
                                w.display()
                            )));
                        }
                        w
                    }
                    None => dir.to_path_buf(),
                };
                Ok(Launch {
                    argv,
                    env: c
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect(),
                    cwd,
                })
            }
        }
    }

    async fn start(
        &self,
        req: &SubmitRequest,
        dir: &Path,
        launch: Launch,
    ) -> Result<u32, BackendError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_err(format!("creating {}", dir.display())))?;
        let log_path = dir.join(LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg(dir)
            .args(&launch.argv)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .env("SLUICE_RUN_DIR", dir)
            .env("SLUICE_JOB_ID", &req.job_id)
            .env("SLUICE_ATTEMPT", req.attempt.to_string())
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0);
        // meta.json marks the attempt as started: written last before the spawn, and removed
        // again if the spawn fails, so that a failed start can be submitted again.
        let meta = RunMeta {
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            demand: req.demand.clone(),
            argv: launch.argv.clone(),
            started_ms: now_ms(),
        };
        let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| BackendError::Io {
            context: "encoding meta.json".into(),
            source: e.into(),
        })?;
        write_atomic(&dir.join(META), &meta_json).await?;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                // Nothing runs: forget the attempt so that it can be submitted again.
                let _ = tokio::fs::remove_file(dir.join(META)).await;
                return Err(BackendError::Io {
                    context: format!("starting {}", launch.argv.join(" ")),
                    source: e,
                });
            }
        };
        let Some(pid) = child.id() else {
            // invariant: a child not yet waited for has an id; if not, reap it and report.
            let _ = child.wait().await;
            return Err(BackendError::Io {
                context: "starting the run".into(),
                source: std::io::Error::other("the process ended before its pid was known"),
            });
        };
        if let Err(e) = write_atomic(&dir.join(PID), format!("{pid}\n").as_bytes()).await {
            // Without its pid file the run could not be found again: stop it and undo.
            if let Ok(raw) = i32::try_from(pid) {
                let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            let _ = tokio::fs::remove_file(dir.join(META)).await;
            return Err(e);
        }
        let key = (req.job_id.clone(), req.attempt);
        let (tx, rx) = watch::channel(false);
        // Hold the map lock while spawning so the waiter cannot remove the entry before it is in.
        let mut live = self.shared.live();
        let waiter = tokio::spawn(wait_child(
            Arc::clone(&self.shared),
            key.clone(),
            dir.to_path_buf(),
            child,
            tx,
        ));
        live.insert(
            key,
            LiveRun {
                pid,
                demand: req.demand.clone(),
                dir: dir.to_path_buf(),
                ended: Some(rx),
                waiter: Some(waiter.abort_handle()),
            },
        );
        Ok(pid)
    }

    async fn status_of(&self, job_id: &str, attempt: u32) -> Result<RunStatus, BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        let key = (job_id.to_string(), attempt);
        if let Some(s) = ended_status(&dir).await {
            self.shared.forget(&key);
            return Ok(s);
        }
        let pid = match read_pid(&dir).await {
            Some(pid) => pid,
            None => {
                // A submit may be between meta.json and the pid file: let it finish.
                drop(self.shared.submit_lock.lock().await);
                match read_pid(&dir).await {
                    Some(pid) => pid,
                    None => {
                        return Ok(ended_status(&dir).await.unwrap_or(RunStatus::Lost {
                            message: "no process was recorded for this run (sluice stopped \
                                      while starting it?)"
                                .into(),
                        }));
                    }
                }
            }
        };
        if is_our_run(pid, &dir) {
            return Ok(RunStatus::Running);
        }
        self.wait_for_waiter(&key).await;
        self.shared.forget(&key);
        Ok(ended_status(&dir).await.unwrap_or_else(|| RunStatus::Lost {
            message: "the process is gone and left no exit code (it was killed while sluice \
                      was down?)"
                .into(),
        }))
    }

    /// When we hold the child of a run, waits (bounded) until its waiter has recorded its end.
    async fn wait_for_waiter(&self, key: &RunKey) {
        let rx = self.shared.live().get(key).and_then(|r| r.ended.clone());
        if let Some(mut rx) = rx {
            let _ = tokio::time::timeout(WAITER_WAIT, rx.wait_for(|done| *done)).await;
        }
    }

    async fn cancel_run(&self, job_id: &str, attempt: u32) -> Result<(), BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        let key = (job_id.to_string(), attempt);
        let pid = match read_pid(&dir).await {
            Some(pid) if ended_status(&dir).await.is_none() && is_our_run(pid, &dir) => pid,
            _ => {
                self.shared.forget(&key);
                return Ok(());
            }
        };
        let Ok(raw) = i32::try_from(pid) else {
            return Ok(());
        };
        let pgid = Pid::from_raw(raw);
        tracing::info!(job_id, attempt, pid, "local backend: cancelling (SIGTERM)");
        signal_group(pgid, Signal::SIGTERM)?;
        if !wait_group_gone(pid, self.shared.cfg.kill_grace).await {
            tracing::info!(job_id, attempt, pid, "local backend: still alive, SIGKILL");
            signal_group(pgid, Signal::SIGKILL)?;
            if !wait_group_gone(pid, AFTER_KILL_WAIT).await {
                tracing::warn!(
                    job_id,
                    attempt,
                    pid,
                    "local backend: process group still present after SIGKILL"
                );
            }
        }
        self.wait_for_waiter(&key).await;
        self.shared.forget(&key);
        Ok(())
    }

    async fn read_log(
        &self,
        job_id: &str,
        attempt: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        // Whether the run has ended is decided before reading, so that its last output is in.
        let ended = !matches!(
            self.status_of(job_id, attempt).await?,
            RunStatus::Running | RunStatus::Pending
        );
        let path = dir.join(LOG);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(LogChunk {
                    data: String::new(),
                    next_offset: offset,
                    complete: ended,
                });
            }
            Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
        };
        let len = file
            .metadata()
            .await
            .map_err(io_err(format!("reading {}", path.display())))?
            .len();
        if offset >= len {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: ended,
            });
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        let mut buf = Vec::with_capacity(max_bytes.min(1 << 20));
        file.take(max_bytes as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        let read_to = offset + buf.len() as u64;
        if read_to < len {
            // Do not split a UTF-8 character across chunks.
            let keep = utf8_keep(&buf);
            if keep > 0 {
                buf.truncate(keep);
            }
        }
        let next_offset = offset + buf.len() as u64;
        Ok(LogChunk {
            data: String::from_utf8_lossy(&buf).into_owned(),
            next_offset,
            complete: ended && next_offset >= len,
        })
    }
}

/// What to run: program and arguments, extra environment and working directory.
pub(crate) struct Launch {
    /// Program and arguments.
    pub(crate) argv: Vec<String>,
    /// Extra environment.
    pub(crate) env: Vec<(String, String)>,
    /// Working directory.
    pub(crate) cwd: PathBuf,
}

/// Reaps the child, records how it ended when the wrapper could not, and drops the run from
/// the live set.
async fn wait_child(
    shared: Arc<Shared>,
    key: RunKey,
    dir: PathBuf,
    mut child: tokio::process::Child,
    tx: watch::Sender<bool>,
) {
    match child.wait().await {
        Ok(status) => {
            let has_code = tokio::fs::try_exists(dir.join(EXIT_CODE))
                .await
                .unwrap_or(false);
            if !has_code {
                let (file, text) = match (status.signal(), status.code()) {
                    (Some(sig), _) => (KILLED_BY, format!("{sig}\n")),
                    (None, Some(code)) => (EXIT_CODE, format!("{code}\n")),
                    (None, None) => (KILLED_BY, "0\n".to_string()),
                };
                if let Err(e) = write_atomic(&dir.join(file), text.as_bytes()).await {
                    tracing::warn!(error = %e, "local backend: could not record a run's end");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "local backend: waiting for a run failed"),
    }
    let _ = tx.send(true);
    shared.forget(&key);
}

/// Writes a file through a temporary name and a rename.
async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BackendError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, data)
        .await
        .map_err(io_err(format!("writing {}", path.display())))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io_err(format!("writing {}", path.display())))
}

async fn read_pid(dir: &Path) -> Option<u32> {
    tokio::fs::read_to_string(dir.join(PID))
        .await
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A run's meta and pid when it has not recorded an end and its process is alive and ours.
async fn alive_unfinished(dir: &Path) -> Option<(RunMeta, u32)> {
    let meta: RunMeta =
        serde_json::from_slice(&tokio::fs::read(dir.join(META)).await.ok()?).ok()?;
    if ended_status(dir).await.is_some() {
        return None;
    }
    let pid = read_pid(dir).await?;
    is_our_run(pid, dir).then_some((meta, pid))
}

/// How a run ended, from the files it left; `None` while no end is recorded.
async fn ended_status(dir: &Path) -> Option<RunStatus> {
    if let Ok(text) = tokio::fs::read_to_string(dir.join(EXIT_CODE)).await {
        return Some(match text.trim().parse::<i32>() {
            Ok(0) => RunStatus::Succeeded,
            Ok(code) => RunStatus::Failed {
                exit_code: Some(code),
                message: exit_message(code),
            },
            Err(_) => RunStatus::Failed {
                exit_code: None,
                message: format!("unreadable exit code file: {:?}", text.trim()),
            },
        });
    }
    if let Ok(text) = tokio::fs::read_to_string(dir.join(KILLED_BY)).await {
        let message = match text.trim().parse::<i32>() {
            Ok(sig) => format!("killed by {}", signal_name(sig)),
            Err(_) => "killed by a signal".to_string(),
        };
        return Some(RunStatus::Failed {
            exit_code: None,
            message,
        });
    }
    None
}

fn signal_name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(Signal::SIGKILL) => {
            "SIGKILL (signal 9: out of memory, or killed after the cancel grace period)".into()
        }
        Ok(s) => format!("{} (signal {sig})", s.as_str()),
        Err(_) => format!("signal {sig}"),
    }
}

/// "exit code N", with what the usual codes mean.
pub fn exit_message(code: i32) -> String {
    match code {
        137 => "exit code 137: killed by SIGKILL (out of memory, or killed after the cancel grace \
                period)"
            .into(),
        143 => "exit code 143: terminated by SIGTERM (cancelled?)".into(),
        126 => "exit code 126: the command could not be executed (not executable?)".into(),
        127 => "exit code 127: command not found".into(),
        c if c > 128 && c < 128 + 64 => {
            format!("exit code {c}: killed by {}", signal_name(c - 128))
        }
        c => format!("exit code {c}"),
    }
}

/// Fields of `/proc/<pid>/stat` after the command name: (state, ppid, pgrp).
fn proc_stat(pid: u32) -> Option<(char, i64, i64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// True when `pid` is alive (not a zombie) and is the wrapper of the run in `dir` (its command
/// line or environment names the run directory).
fn is_our_run(pid: u32, dir: &Path) -> bool {
    match proc_stat(pid) {
        Some((state, _, _)) if state != 'Z' && state != 'X' => {}
        _ => return false,
    }
    let dir = dir.as_os_str().as_encoded_bytes();
    if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline"))
        && cmdline.split(|b| *b == 0).any(|arg| arg == dir)
    {
        return true;
    }
    let mut want = b"SLUICE_RUN_DIR=".to_vec();
    want.extend_from_slice(dir);
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_slice()))
}

/// True when some live (non-zombie) process is in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // No /proc: fall back to the signal check (zombies count as alive there).
        return i32::try_from(pgid).is_ok_and(|p| killpg(Pid::from_raw(p), None::<Signal>).is_ok());
    };
    entries.filter_map(Result::ok).any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(proc_stat)
            .is_some_and(|(state, _, pgrp)| pgrp == i64::from(pgid) && state != 'Z' && state != 'X')
    })
}

/// Polls until process group `pgid` has no live process, at most `limit`. True if it is gone.
async fn wait_group_gone(pgid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn signal_group(pgid: Pid, sig: Signal) -> Result<(), BackendError> {
    match killpg(pgid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(BackendError::Io {
            context: format!("sending {} to process group {pgid}", sig.as_str()),
            source: e.into(),
        }),
    }
}

/// How many leading bytes of `buf` to keep so that it does not end inside a UTF-8 character.
fn utf8_keep(buf: &[u8]) -> usize {
    let len = buf.len();
    for back in 1..=len.min(4) {
        let b = buf[len - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead byte
        }
        let need = match b {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if need > back { len - back } else { len };
    }
    len
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        self.shared.prune();
        let live = self.shared.live();
        let used = live
            .values()
            .fold(Resources::default(), |acc, r| acc.plus(&r.demand.total()));
        let budget = self.shared.budget;
        let free = budget.minus(&used);
        let visible: BTreeSet<String> = live.keys().map(|(job, _)| job.clone()).collect();
        Ok(CapacityReport {
            snapshot: Snapshot {
                available: true,
                nodes: vec![NodeCapacity::new(
                    NODE_NAME,
                    free.cpu_milli,
                    free.mem_mib,
                    None,
                )],
                allocatable: vec![NodeCapacity::new(
                    NODE_NAME,
                    budget.cpu_milli,
                    budget.mem_mib,
                    None,
                )],
            },
            visible,
        })
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        self.submit_with(req, |dir| self.command_for(req, dir))
            .await
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        self.status_of(&run.job_id, run.attempt).await
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        self.cancel_run(&run.job_id, run.attempt).await
    }

    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        self.read_log(&run.job_id, run.attempt, offset, max_bytes)
            .await
    }
}

impl LocalBackend {
    /// [`Backend::submit`] with the command built by `launch` (given the run directory, called
    /// after the room check). The Spark standalone backend starts its client-mode drivers
    /// through this, so that they get the same run directories, process groups, budget and
    /// re-attachment as local runs.
    pub(crate) async fn submit_with(
        &self,
        req: &SubmitRequest,
        launch: impl FnOnce(&Path) -> Result<Launch, BackendError> + Send,
    ) -> Result<Submitted, BackendError> {
        if !valid_job_id(&req.job_id) {
            return Err(BackendError::Rejected(format!(
                "job id {:?} cannot name a run directory",
                req.job_id
            )));
        }
        let dir = self.run_dir(&req.job_id, req.attempt);
        let _guard = self.shared.submit_lock.lock().await;
        if tokio::fs::try_exists(dir.join(META)).await.unwrap_or(false) {
            let backend_ref = read_pid(&dir).await.map(|p| p.to_string());
            return Ok(Submitted {
                backend_ref: backend_ref.unwrap_or_default(),
                already_existed: true,
            });
        }
        self.shared.prune();
        let need = req.demand.total();
        let (used, budget) = {
            let live = self.shared.live();
            let used = live
                .values()
                .fold(Resources::default(), |acc, r| acc.plus(&r.demand.total()));
            (used, self.shared.budget)
        };
        let free = budget.minus(&used);
        if !free.covers(&need) {
            let what = if budget.covers(&need) {
                format!("{free} free now")
            } else {
                format!("it can never fit the local budget of {budget}")
            };
            return Err(BackendError::NoRoom(format!(
                "job {} attempt {} needs {need}; {what}",
                req.job_id, req.attempt
            )));
        }
        let launch = launch(&dir)?;
        let pid = self.start(req, &dir, launch).await?;
        tracing::info!(
            job_id = %req.job_id, attempt = req.attempt, pid,
            "local backend: started"
        );
        Ok(Submitted {
            backend_ref: pid.to_string(),
            already_existed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::document::parse_job;
    use sluice_core::spec::{Deps, Levels, ParseOptions, Text};

    fn parse(text: &str) -> Job {
        let levels = Levels::default();
        parse_job(
            text,
            ParseOptions {
                priority: None,
                levels: &levels,
            },
        )
        .expect("valid job")
    }

    fn spark_job(spec: SparkSpec) -> Job {
        Job {
            namespace: "default".into(),
            name: "app".into(),
            level: "normal".into(),
            labels: BTreeMap::new(),
            max_runtime_secs: None,
            kind: JobKind::Spark {
                spec: Box::new(spec),
                application: None,
                source: None,
            },
        }
    }

    fn pairs(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    #[test]
    fn python_spark_application_from_the_operator_example() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/spark-operator/spark-pi-python.yaml");
        let text = std::fs::read_to_string(&path).expect("example present");
        let job = parse(&text);
        let home = Path::new("/home/u/.venv/lib/python3.11/site-packages/pyspark");
        let argv = spark_submit_argv(home, DEFAULT_IMAGE_SPARK_HOME, &job).expect("argv");
        assert_eq!(
            argv[0],
            "/home/u/.venv/lib/python3.11/site-packages/pyspark/bin/spark-submit"
        );
        // 1 executor x 1 core.
        assert_eq!(pairs(&argv, "--master"), ["local[1]"]);
        assert_eq!(pairs(&argv, "--name"), ["spark-pi-python"]);
        let confs = pairs(&argv, "--conf");
        assert!(confs.contains(&"spark.driver.memory=512m".to_string()));
        assert!(confs.contains(&"spark.driver.host=127.0.0.1".to_string()));
        assert!(confs.contains(&"spark.driver.bindAddress=127.0.0.1".to_string()));
        assert!(confs.contains(&"spark.ui.enabled=false".to_string()));
        assert!(pairs(&argv, "--class").is_empty());
        assert_eq!(
            argv.last().map(String::as_str),
            Some(
                "/home/u/.venv/lib/python3.11/site-packages/pyspark/examples/src/main/python/pi.py"
            )
        );
    }

    #[test]
    fn local_paths_are_mapped() {
        let home = Path::new("/sh");
        let m = |p: &str| map_local_path(p, home, "/opt/spark");
        assert_eq!(
            m("local:///opt/spark/examples/jars/x.jar"),
            "/sh/examples/jars/x.jar"
        );
        assert_eq!(m("/opt/spark/examples/pi.py"), "/sh/examples/pi.py");
        assert_eq!(m("local:///data/app.py"), "/data/app.py");
        assert_eq!(m("/opt/sparkling/app.py"), "/opt/sparkling/app.py");
        assert_eq!(m("s3a://bucket/app.py"), "s3a://bucket/app.py");
        assert_eq!(m("https://h/opt/spark/a.jar"), "https://h/opt/spark/a.jar");
        assert_eq!(m("app.py"), "app.py");
        assert_eq!(
            map_local_path("/opt/spark/a.py", home, ""),
            "/opt/spark/a.py"
        );
    }

    #[test]
    fn conf_passthrough_main_class_and_deps() {
        let mut spec = SparkSpec {
            main_application_file: Some(
                "local:///opt/spark/examples/jars/spark-examples.jar".into(),
            ),
            main_class: Some("org.apache.spark.examples.SparkPi".into()),
            arguments: vec![Text("100".into()), Text("x y".into())],
            ..Default::default()
        };
        spec.executor.instances = Some(3);
        spec.executor.cores = Some(2);
        spec.driver.memory = Some(Text("2g".into()));
        for (k, v) in [
            ("spark.sql.shuffle.partitions", "8"),
            ("spark.ui.enabled", "true"),
            ("spark.driver.host", "localhost"),
            ("spark.master", "k8s://https://x"),
            ("spark.submit.deployMode", "cluster"),
        ] {
            spec.spark_conf.insert(k.into(), Text(v.into()));
        }
        spec.deps = Some(Deps {
            jars: vec!["local:///opt/spark/jars/a.jar".into(), "/x/b.jar".into()],
            files: vec!["/f/one".into()],
            py_files: vec!["dep.zip".into()],
            packages: vec!["g:a:1".into(), "g:b:2".into()],
            exclude_packages: vec!["g:c".into()],
            repositories: vec!["https://repo".into()],
            archives: vec!["env.tar.gz#env".into()],
        });
        let argv = spark_submit_argv(Path::new("/sh"), "/opt/spark", &spark_job(spec)).unwrap();
        assert_eq!(pairs(&argv, "--master"), ["local[6]"]);
        let confs = pairs(&argv, "--conf");
        assert!(confs.contains(&"spark.driver.memory=2048m".to_string()));
        assert!(confs.contains(&"spark.sql.shuffle.partitions=8".to_string()));
        // The user's own values are kept, and the defaults are not added next to them.
        assert!(confs.contains(&"spark.ui.enabled=true".to_string()));
        assert!(!confs.contains(&"spark.ui.enabled=false".to_string()));
        assert!(confs.contains(&"spark.driver.host=localhost".to_string()));
        assert!(!confs.contains(&"spark.driver.host=127.0.0.1".to_string()));
        assert!(confs.contains(&"spark.driver.bindAddress=127.0.0.1".to_string()));
        assert!(!confs.iter().any(|c| c.starts_with("spark.master=")));
        assert!(
            !confs
                .iter()
                .any(|c| c.starts_with("spark.submit.deployMode="))
        );
        assert_eq!(
            pairs(&argv, "--class"),
            ["org.apache.spark.examples.SparkPi"]
        );
        assert_eq!(pairs(&argv, "--jars"), ["/sh/jars/a.jar,/x/b.jar"]);
        assert_eq!(pairs(&argv, "--files"), ["/f/one"]);
        assert_eq!(pairs(&argv, "--py-files"), ["dep.zip"]);
        assert_eq!(pairs(&argv, "--packages"), ["g:a:1,g:b:2"]);
        assert_eq!(pairs(&argv, "--exclude-packages"), ["g:c"]);
        assert_eq!(pairs(&argv, "--repositories"), ["https://repo"]);
        assert_eq!(pairs(&argv, "--archives"), ["env.tar.gz#env"]);
        let tail = &argv[argv.len() - 3..];
        assert_eq!(tail, ["/sh/examples/jars/spark-examples.jar", "100", "x y"]);
    }

    #[test]
    fn command_jobs_have_no_spark_submit_argv() {
        let job = parse("name: c\ncommand:\n  argv: [true]\n");
        assert!(matches!(
            spark_submit_argv(Path::new("/sh"), "/opt/spark", &job),
            Err(BackendError::Rejected(_))
        ));
    }

    #[test]
    fn reserve() {
        // 2 cores, 24 GiB: every core, 90% of the memory.
        assert_eq!(budget_after_reserve(2000, 24 * 1024), (2000, 22119));
        // 4 GiB: the 1 GiB floor of the reserve is more than 10%.
        assert_eq!(budget_after_reserve(32_000, 4096), (32_000, 3072));
        // Tiny machine: floors.
        assert_eq!(budget_after_reserve(1000, 1024), (1000, 512));
        let (cpu, mem) = detect_budget();
        assert!(cpu >= 1000 && mem >= 512);
    }

    #[test]
    fn job_ids_as_directory_names() {
        assert!(valid_job_id("01JABC"));
        assert!(valid_job_id("a-b.c"));
        for bad in ["", ".", "..", "a/b", "/abs", "a\0b"] {
            assert!(!valid_job_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn utf8_cut() {
        let s = "aé€😀".as_bytes();
        assert_eq!(utf8_keep(s), s.len());
        assert_eq!(utf8_keep(&s[..2]), 1); // inside é
        assert_eq!(utf8_keep(&s[..5]), 3); // inside €
        assert_eq!(utf8_keep(&s[..8]), 6); // inside 😀
        assert_eq!(utf8_keep(b"abc"), 3);
        assert_eq!(utf8_keep(&[0x80, 0x80, 0x80, 0x80, 0x80]), 5); // garbage: keep
    }

    #[test]
    fn exit_messages() {
        assert_eq!(exit_message(3), "exit code 3");
        assert!(exit_message(137).contains("SIGKILL"));
        assert!(exit_message(143).contains("SIGTERM"));
        assert!(exit_message(130).contains("SIGINT"));
    }

    #[test]
    fn venv_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let venv = tmp.path().join(".venv");
        let pkg = venv.join("lib/python3.11/site-packages/pyspark");
        std::fs::create_dir_all(pkg.join("bin")).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(pkg.join("bin/spark-submit"), "").unwrap();
        std::fs::write(venv.join("bin/spark-submit"), "").unwrap();
        std::fs::write(venv.join("bin/python"), "").unwrap();
        assert_eq!(find_spark_home(Some(&venv)), Some(pkg.clone()));
        assert_eq!(find_spark_home(Some(&pkg)), Some(pkg.clone()));
        assert_eq!(find_spark_home(Some(tmp.path())), None);
        assert_eq!(venv_python(&pkg), Some(venv.join("bin/python")));
        assert_eq!(venv_python(Path::new("/opt/spark")), None);
    }
}
