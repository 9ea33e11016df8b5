//! The pod-level demand of a job, by Spark's own rules.
//!
//! For each role (driver, executor), Spark on Kubernetes requests:
//! - CPU: `coreRequest` (`spark.kubernetes.{driver,executor}.request.cores`) if set, else `cores`.
//! - memory: heap + overhead, where heap is `memory` (`spark.{role}.memory`, default 1g; a bare
//!   number is MiB) and overhead is `memoryOverhead` (`spark.{role}.memoryOverhead`) if given,
//!   else `max(trunc(factor x heapMiB), minOverhead)`. The factor is the first of
//!   `spark.{role}.memoryOverheadFactor`, `spark.kubernetes.memoryOverheadFactor`, the operator's
//!   `spec.memoryOverheadFactor`, then 0.1 for JVM applications (Scala and Java) and 0.4 for
//!   Python and R. `minOverhead` is `spark.{role}.minMemoryOverhead` (Spark 4), default 384 MiB.
//!   (Spark: `BasicDriverFeatureStep`, `ResourceProfile.getResourcesForClusterManager`.)
//! - executors additionally request `spark.executor.pyspark.memory` (Python applications) and,
//!   when `spark.memory.offHeap.enabled` is true, `spark.memory.offHeap.size`.
//! - executor count: `instances` (`spark.executor.instances`, Spark's default 2); with dynamic
//!   allocation the hard demand is `max(instances, initialExecutors, minExecutors)`, the number
//!   Spark asks for at start (`Utils.getDynamicAllocationInitialExecutors`).
//!
//! A Spark standalone cluster places executors (and, in cluster deploy mode, drivers) by other
//! rules: [`standalone_demand`].

use crate::job::{Demand, PodDemand, Role};
use crate::spec::{
    CommandSpec, Job, JobKind, SparkSpec, SpecError, Text, cpu_field, factor_field, mem_field,
};

/// Default heap for driver and executors, as Spark's `spark.{driver,executor}.memory`.
pub const DEFAULT_MEMORY_MIB: u64 = 1024;
/// Spark's minimum memory overhead.
pub const MIN_OVERHEAD_MIB: u64 = 384;
/// Spark's default executor count when dynamic allocation is off.
pub const DEFAULT_EXECUTORS: u64 = 2;
/// Default CPU of a command job, in millicores.
pub const DEFAULT_COMMAND_CPU_MILLI: u64 = 1000;

/// The demand of a validated job.
pub fn job_demand(job: &Job) -> Result<Demand, SpecError> {
    job_kind_demand(&job.kind)
}

/// The demand of a job's work: a Spark application (a Spark job, a `sparkSql` job, a `python`
/// job with Spark) by Spark's rules, one process (a command, a `python` job without Spark, a
/// `dbt` job) by its `cpu` and `memory`.
pub fn job_kind_demand(kind: &JobKind) -> Result<Demand, SpecError> {
    match kind {
        JobKind::Command(c) => command_demand(c),
        JobKind::Python(p) if !p.spark => {
            process_demand("python", p.cpu.as_ref(), p.memory.as_ref())
        }
        JobKind::Dbt(d) => process_demand("dbt", d.cpu.as_ref(), d.memory.as_ref()),
        other => match other.spark_spec() {
            Some(spec) => spark_demand(&spec, other.section()),
            // invariant: every kind other than the ones above is run by Spark.
            None => process_demand(other.section(), None, None),
        },
    }
}

/// The demand of a command job: one task.
pub fn command_demand(c: &CommandSpec) -> Result<Demand, SpecError> {
    process_demand("command", c.cpu.as_ref(), c.memory.as_ref())
}

/// The demand of one process (`p` is the path of its section): `cpu` (default 1 core) and
/// `memory` (default 1g) as one task.
pub fn process_demand(
    p: &str,
    cpu: Option<&Text>,
    memory: Option<&Text>,
) -> Result<Demand, SpecError> {
    let cpu_milli = match cpu {
        Some(t) => cpu_field(&format!("{p}.cpu"), t.as_str())?,
        None => DEFAULT_COMMAND_CPU_MILLI,
    };
    let mem_mib = match memory {
        Some(t) => mem_field(&format!("{p}.memory"), t.as_str())?,
        None => DEFAULT_MEMORY_MIB,
    };
    Ok(Demand {
        pods: vec![PodDemand {
            role: Role::Task,
            count: 1,
            cpu_milli,
            mem_mib,
        }],
    })
}

struct RoleInput<'a> {
    role: &'static str,
    cores: Option<i64>,
    core_request: Option<&'a Text>,
    memory: Option<&'a Text>,
    memory_overhead: Option<&'a Text>,
}

fn conf_field(p: &str, key: &str) -> String {
    format!("{p}.sparkConf[{key}]")
}

fn conf_int(s: &SparkSpec, p: &str, key: &str) -> Result<Option<i64>, SpecError> {
    s.conf(key)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| SpecError::BadValue {
                field: conf_field(p, key),
                value: v.to_string(),
                message: "is not a whole number".into(),
            })
        })
        .transpose()
}

fn conf_bool(s: &SparkSpec, key: &str) -> bool {
    s.conf(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Cores of one pod of a role: the spec, else the Spark conf, else 1; with the field it came from.
fn cores_of(s: &SparkSpec, p: &str, r: &RoleInput<'_>) -> Result<(u64, String), SpecError> {
    let key = format!("spark.{}.cores", r.role);
    let (field, v) = match r.cores {
        Some(c) => (format!("{p}.{}.cores", r.role), c),
        None => match conf_int(s, p, &key)? {
            Some(c) => (conf_field(p, &key), c),
            None => return Ok((1, format!("{p}.{}.cores", r.role))),
        },
    };
    match u64::try_from(v).ok().filter(|c| *c > 0) {
        Some(c) => Ok((c, field)),
        None => Err(SpecError::BadValue {
            field,
            value: v.to_string(),
            message: "must be greater than zero".into(),
        }),
    }
}

/// Cores of one pod of a role.
fn cores(s: &SparkSpec, p: &str, r: &RoleInput<'_>) -> Result<u64, SpecError> {
    cores_of(s, p, r).map(|(c, _)| c)
}

/// Cores of one pod of a role in millicores; a count too large to express is an error.
fn cores_milli(s: &SparkSpec, p: &str, r: &RoleInput<'_>) -> Result<u64, SpecError> {
    let (c, field) = cores_of(s, p, r)?;
    c.checked_mul(1000).ok_or_else(|| too_large(field, c))
}

/// The error for a quantity whose arithmetic would overflow.
fn too_large(field: impl Into<String>, value: impl ToString) -> SpecError {
    SpecError::BadValue {
        field: field.into(),
        value: value.to_string(),
        message: "is too large (the demand it gives cannot be represented)".into(),
    }
}

/// The heap of one JVM of a role: `memory` (spec, else `spark.{role}.memory`, else 1g).
fn heap_mib(s: &SparkSpec, p: &str, r: &RoleInput<'_>) -> Result<u64, SpecError> {
    let role = r.role;
    let mem_key = format!("spark.{role}.memory");
    match (r.memory, s.conf(&mem_key)) {
        (Some(t), _) => mem_field(&format!("{p}.{role}.memory"), t.as_str()),
        (None, Some(v)) => mem_field(&conf_field(p, &mem_key), v),
        (None, None) => Ok(DEFAULT_MEMORY_MIB),
    }
}

fn pod(s: &SparkSpec, p: &str, r: &RoleInput<'_>) -> Result<(u64, u64, u64), SpecError> {
    let role = r.role;
    let cores = cores(s, p, r)?;
    let req_key = format!("spark.kubernetes.{role}.request.cores");
    let cpu_milli = match (r.core_request, s.conf(&req_key)) {
        (Some(t), _) => cpu_field(&format!("{p}.{role}.coreRequest"), t.as_str())?,
        (None, Some(v)) => cpu_field(&conf_field(p, &req_key), v)?,
        (None, None) => cores_milli(s, p, r)?,
    };
    let heap = heap_mib(s, p, r)?;
    let ovh_key = format!("spark.{role}.memoryOverhead");
    let overhead = match (r.memory_overhead, s.conf(&ovh_key)) {
        (Some(t), _) => mem_field(&format!("{p}.{role}.memoryOverhead"), t.as_str())?,
        (None, Some(v)) => mem_field(&conf_field(p, &ovh_key), v)?,
        (None, None) => {
            let role_factor = format!("spark.{role}.memoryOverheadFactor");
            let k8s_factor = "spark.kubernetes.memoryOverheadFactor";
            let factor = if let Some(v) = s.conf(&role_factor) {
                factor_field(&conf_field(p, &role_factor), v)?
            } else if let Some(v) = s.conf(k8s_factor) {
                factor_field(&conf_field(p, k8s_factor), v)?
            } else if let Some(v) = &s.memory_overhead_factor {
                factor_field(&format!("{p}.memoryOverheadFactor"), v.as_str())?
            } else if s.app_type().is_jvm() {
                0.1
            } else {
                0.4
            };
            let min_key = format!("spark.{role}.minMemoryOverhead");
            let min = match s.conf(&min_key) {
                Some(v) => mem_field(&conf_field(p, &min_key), v)?,
                None => MIN_OVERHEAD_MIB,
            };
            // Spark: math.max((factor * memoryMiB).toInt, minOverhead)
            ((factor * heap as f64) as u64).max(min)
        }
    };
    let mem = heap.checked_add(overhead).ok_or_else(|| {
        let written = r
            .memory
            .map(|t| t.as_str().to_string())
            .or_else(|| s.conf(&format!("spark.{role}.memory")).map(str::to_string))
            .unwrap_or_else(|| heap.to_string());
        too_large(format!("{p}.{role}.memory"), written)
    })?;
    Ok((cpu_milli, mem, cores))
}

/// How many executors the job needs before it can make progress.
pub fn executor_count(s: &SparkSpec, p: &str) -> Result<u64, SpecError> {
    let instances = match s.executor.instances {
        Some(n) => Some(n),
        None => conf_int(s, p, "spark.executor.instances")?,
    };
    let da = s.dynamic_allocation.as_ref();
    let da_on = da.is_some_and(|d| d.enabled) || conf_bool(s, "spark.dynamicAllocation.enabled");
    let n = if da_on {
        let initial = match da.and_then(|d| d.initial_executors) {
            Some(n) => Some(n),
            None => conf_int(s, p, "spark.dynamicAllocation.initialExecutors")?,
        };
        let min = match da.and_then(|d| d.min_executors) {
            Some(n) => Some(n),
            None => conf_int(s, p, "spark.dynamicAllocation.minExecutors")?,
        };
        instances
            .unwrap_or(0)
            .max(initial.unwrap_or(0))
            .max(min.unwrap_or(0))
    } else {
        match instances {
            Some(n) => n,
            None => DEFAULT_EXECUTORS as i64,
        }
    };
    u64::try_from(n).map_err(|_| SpecError::BadValue {
        field: format!("{p}.executor.instances"),
        value: n.to_string(),
        message: "must not be negative".into(),
    })
}

/// Extra executor memory Spark requests beyond heap and overhead.
fn executor_extra_mib(s: &SparkSpec, p: &str) -> Result<u64, SpecError> {
    let mut extra = 0;
    if !s.app_type().is_jvm()
        && let Some(v) = s.conf("spark.executor.pyspark.memory")
    {
        let field = conf_field(p, "spark.executor.pyspark.memory");
        extra = mem_field(&field, v)?;
    }
    if conf_bool(s, "spark.memory.offHeap.enabled")
        && let Some(v) = s.conf("spark.memory.offHeap.size")
    {
        // spark.memory.offHeap.size is in bytes unless a unit is given.
        let field = conf_field(p, "spark.memory.offHeap.size");
        let t = v.trim();
        let mib = if t.bytes().all(|b| b.is_ascii_digit()) {
            let bytes: u64 = t.parse().map_err(|_| SpecError::BadValue {
                field: field.clone(),
                value: v.to_string(),
                message: "is too large".into(),
            })?;
            bytes.div_ceil(1 << 20)
        } else {
            mem_field(&field, t)?
        };
        extra = extra.checked_add(mib).ok_or_else(|| too_large(field, v))?;
    }
    Ok(extra)
}

/// The demand of a Spark application. `p` is the field prefix used in error messages
/// ("spark" for sluice's own spec, "spec" for a SparkApplication).
pub fn spark_demand(s: &SparkSpec, p: &str) -> Result<Demand, SpecError> {
    let driver = RoleInput {
        role: "driver",
        cores: s.driver.cores,
        core_request: s.driver.core_request.as_ref(),
        memory: s.driver.memory.as_ref(),
        memory_overhead: s.driver.memory_overhead.as_ref(),
    };
    let executor = RoleInput {
        role: "executor",
        cores: s.executor.cores,
        core_request: s.executor.core_request.as_ref(),
        memory: s.executor.memory.as_ref(),
        memory_overhead: s.executor.memory_overhead.as_ref(),
    };
    let (d_cpu, d_mem, _) = pod(s, p, &driver)?;
    let (e_cpu, e_mem, _) = pod(s, p, &executor)?;
    let e_mem = e_mem
        .checked_add(executor_extra_mib(s, p)?)
        .ok_or_else(|| too_large(format!("{p}.executor.memory"), e_mem))?;
    let count = executor_count(s, p)?;
    let count = u32::try_from(count).map_err(|_| SpecError::BadValue {
        field: format!("{p}.executor.instances"),
        value: count.to_string(),
        message: "is too large".into(),
    })?;
    let mut pods = vec![PodDemand {
        role: Role::Driver,
        count: 1,
        cpu_milli: d_cpu,
        mem_mib: d_mem,
    }];
    if count > 0 {
        pods.push(PodDemand {
            role: Role::Executor,
            count,
            cpu_milli: e_cpu,
            mem_mib: e_mem,
        });
    }
    checked(Demand { pods }, p, count)
}

/// The demand if its total (executor count x pod demand, summed over roles) can be
/// represented; otherwise an error naming the executor count. Callers may then add and
/// multiply a demand's resources without overflow.
fn checked(d: Demand, p: &str, count: u32) -> Result<Demand, SpecError> {
    match d.checked_total() {
        Some(_) => Ok(d),
        None => Err(too_large(format!("{p}.executor.instances"), count)),
    }
}

/// What a Spark job asks for per JVM, in Spark's own terms: the right-sizing advice
/// ([`crate::cost`]) is given in these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SparkShape {
    /// `spark.driver.memory` (MiB).
    pub driver_heap_mib: u64,
    /// `spark.executor.memory` (MiB).
    pub executor_heap_mib: u64,
    /// `spark.executor.cores`.
    pub executor_cores: u64,
    /// Executors the job needs before it can make progress ([`executor_count`]).
    pub executors: u64,
}

/// The [`SparkShape`] of a Spark spec (`p`: the field prefix of error messages).
pub fn spark_shape(s: &SparkSpec, p: &str) -> Result<SparkShape, SpecError> {
    let driver = RoleInput {
        role: "driver",
        cores: s.driver.cores,
        core_request: s.driver.core_request.as_ref(),
        memory: s.driver.memory.as_ref(),
        memory_overhead: s.driver.memory_overhead.as_ref(),
    };
    let executor = RoleInput {
        role: "executor",
        cores: s.executor.cores,
        core_request: s.executor.core_request.as_ref(),
        memory: s.executor.memory.as_ref(),
        memory_overhead: s.executor.memory_overhead.as_ref(),
    };
    Ok(SparkShape {
        driver_heap_mib: heap_mib(s, p, &driver)?,
        executor_heap_mib: heap_mib(s, p, &executor)?,
        executor_cores: cores(s, p, &executor)?,
        executors: executor_count(s, p)?,
    })
}

/// The N of `local[N]` for running the job on one machine: executors x executor cores (at least 1).
pub fn local_threads(s: &SparkSpec) -> Result<u64, SpecError> {
    let executor = RoleInput {
        role: "executor",
        cores: s.executor.cores,
        core_request: None,
        memory: None,
        memory_overhead: None,
    };
    let per = cores(s, "spark", &executor)?;
    let n = executor_count(s, "spark")?;
    n.checked_mul(per)
        .map(|t| t.max(1))
        .ok_or_else(|| too_large("spark.executor.instances", n))
}

/// The driver heap in MiB (for `spark.driver.memory` in local mode).
pub fn driver_heap_mib(s: &SparkSpec) -> Result<u64, SpecError> {
    match (&s.driver.memory, s.conf("spark.driver.memory")) {
        (Some(t), _) => mem_field("spark.driver.memory", t.as_str()),
        (None, Some(v)) => mem_field("spark.driver.memory", v),
        (None, None) => Ok(DEFAULT_MEMORY_MIB),
    }
}

/// Where the driver of a job on a Spark standalone cluster runs (`spark.submit.deployMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployMode {
    /// On the host that runs `spark-submit` (for sluice: the sluice host).
    Client,
    /// On a worker of the cluster, placed by the master (JVM applications only).
    Cluster,
}

impl DeployMode {
    /// "client" or "cluster", as Spark writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeployMode::Client => "client",
            DeployMode::Cluster => "cluster",
        }
    }
}

/// The demand of a Spark application on a Spark standalone cluster, by the standalone master's
/// own placement rules, which differ from Kubernetes' ([`spark_demand`]):
///
/// - An executor needs `spark.executor.cores` free cores and `spark.executor.memory` free
///   memory on one worker: the heap alone, with no memory overhead, PySpark or off-heap memory
///   (Spark's `Master.scala`: `canLaunchExecutor` checks `worker.memoryFree >=
///   desc.memoryPerExecutorMB` and `worker.coresFree >= desc.coresPerExecutor`, and
///   `memoryPerExecutorMB` is `spark.executor.memory`; `coreRequest` is Kubernetes-only).
///   Several executors of one application may share a worker (`scheduleExecutorsOnWorkers`
///   keeps assigning executors to a worker while it has room, with or without
///   `spark.deploy.spreadOut`).
/// - In cluster deploy mode the driver runs on a worker with `spark.driver.cores` (default 1)
///   cores and `spark.driver.memory` (default 1g), again without overhead (`canLaunchDriver`
///   checks `desc.mem` and `desc.cores` of the `DriverDescription`). In client mode the driver
///   runs where `spark-submit` runs, takes no room on the cluster and is not in the demand.
/// - The executor count is [`executor_count`] and must be at least one: the application is
///   capped with `spark.cores.max` = executors x cores, so that it cannot take more than it was
///   admitted for, and a cap of zero would leave it without executors.
///
/// Spark's default `spark.executor.cores` on standalone is "every free core of the worker, one
/// executor per worker"; sluice always sets it (default 1, as here) so that the demand is known.
pub fn standalone_demand(s: &SparkSpec, p: &str, mode: DeployMode) -> Result<Demand, SpecError> {
    let driver = RoleInput {
        role: "driver",
        cores: s.driver.cores,
        core_request: None,
        memory: s.driver.memory.as_ref(),
        memory_overhead: None,
    };
    let executor = RoleInput {
        role: "executor",
        cores: s.executor.cores,
        core_request: None,
        memory: s.executor.memory.as_ref(),
        memory_overhead: None,
    };
    let count = executor_count(s, p)?;
    if count == 0 {
        return Err(SpecError::BadValue {
            field: format!("{p}.executor.instances"),
            value: "0".into(),
            message: "a Spark standalone job needs at least one executor (set \
                      executor.instances, or dynamicAllocation.initialExecutors or \
                      minExecutors): sluice caps the application at the executors it admitted"
                .into(),
        });
    }
    let count = u32::try_from(count).map_err(|_| SpecError::BadValue {
        field: format!("{p}.executor.instances"),
        value: count.to_string(),
        message: "is too large".into(),
    })?;
    let mut pods = Vec::with_capacity(2);
    if mode == DeployMode::Cluster {
        pods.push(PodDemand {
            role: Role::Driver,
            count: 1,
            cpu_milli: cores_milli(s, p, &driver)?,
            mem_mib: heap_mib(s, p, &driver)?,
        });
    }
    pods.push(PodDemand {
        role: Role::Executor,
        count,
        cpu_milli: cores_milli(s, p, &executor)?,
        mem_mib: heap_mib(s, p, &executor)?,
    });
    checked(Demand { pods }, p, count)
}

#[cfg(test)]
mod tests;
