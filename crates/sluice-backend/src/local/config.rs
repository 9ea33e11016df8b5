//! The local backend's configuration: its budget (detected or given) and where Spark is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BackendError;

/// The name of the single node the local backend reports.
pub const NODE_NAME: &str = "local";
/// Where Spark lives in the Spark images (`local:///opt/spark/...` in `SparkApplication`s).
pub const DEFAULT_IMAGE_SPARK_HOME: &str = "/opt/spark";
/// How long a cancelled run gets between SIGTERM and SIGKILL by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

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
    /// The `dbt` executable of `dbt` jobs. `None`: `dbt` next to the python of Spark's venv
    /// when there is one, else `dbt` on the `PATH`.
    pub dbt: Option<PathBuf>,
    /// Spark's home inside the Spark images: an application path under it (like
    /// `local:///opt/spark/examples/src/main/python/pi.py`) is mapped to the local Spark home.
    pub image_spark_home: String,
    /// A cancel sends SIGTERM to the run's process group, then SIGKILL after this long.
    pub kill_grace: Duration,
    /// The user runs run as (see [`RunAs::lookup`]); `None`: the server's own user.
    pub run_as: Option<RunAs>,
}

/// A dedicated, unprivileged user for runs: each run's process group gets its user and group
/// ids (and no supplementary groups), its run directory is given to that user, and `HOME`
/// points at the run directory. The server must run as root to switch users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Looks up user `name` on this host; fails with [`BackendError::Config`] naming `key` if
    /// there is no such user, or if this process cannot switch to it (not root, and not that
    /// user already).
    pub fn lookup(key: &str, name: &str) -> Result<RunAs, BackendError> {
        let user = nix::unistd::User::from_name(name)
            .map_err(|e| BackendError::Config(format!("{key} = {name:?}: looking it up: {e}")))?
            .ok_or_else(|| {
                BackendError::Config(format!("{key} = {name:?}: no such user on this host"))
            })?;
        let me = nix::unistd::geteuid();
        if !me.is_root() && me != user.uid {
            return Err(BackendError::Config(format!(
                "{key} = {name:?}: the server runs as user id {me}, not root, and cannot \
                 start runs as another user"
            )));
        }
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }
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
            dbt: None,
            image_spark_home: DEFAULT_IMAGE_SPARK_HOME.to_string(),
            kill_grace: DEFAULT_KILL_GRACE,
            run_as: None,
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
pub(super) fn as_spark_home(dir: &Path) -> Option<PathBuf> {
    if let Some(pkg) = pyspark_in_venv(dir) {
        return Some(pkg);
    }
    dir.join("bin")
        .join("spark-submit")
        .is_file()
        .then(|| dir.to_path_buf())
}

/// `<venv>/lib/python3*/site-packages/pyspark` when it holds `bin/spark-submit`.
pub(super) fn pyspark_in_venv(venv: &Path) -> Option<PathBuf> {
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
pub(super) fn venv_python(spark_home: &Path) -> Option<PathBuf> {
    let site = spark_home.parent()?;
    let lib = site.parent()?.parent()?;
    if site.file_name()? != "site-packages" || lib.file_name()? != "lib" {
        return None;
    }
    let python = lib.parent()?.join("bin").join("python");
    python.is_file().then_some(python)
}
