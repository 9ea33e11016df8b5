//! What a job needs from a standalone cluster, and what this backend refuses (no I/O).

use sluice_core::job::{Demand, Role};
use sluice_core::sizing::{DeployMode, job_demand, standalone_demand};
use sluice_core::spec::{Job, JobKind};

use crate::BackendError;

/// The executor part of an admitted demand: (count, cores each, heap MiB each).
pub(super) fn executors_of(demand: &Demand) -> Result<(u64, u64, u64), BackendError> {
    let e = demand
        .role(Role::Executor)
        .filter(|e| e.count > 0)
        .ok_or_else(|| {
            BackendError::Rejected(
                "the admitted demand has no executors; a Spark standalone job needs at least one"
                    .into(),
            )
        })?;
    let cores = e.cpu_milli.div_ceil(1000).max(1);
    Ok((u64::from(e.count), cores, e.mem_mib))
}

/// Where a job's fields are named in messages: `spec` for a SparkApplication, else its
/// kind's section (`spark`, `sparkSql`, `python`).
pub(super) fn prefix(job: &Job) -> &'static str {
    job.kind.section()
}

/// The memory a client-mode driver takes on this host: heap and overhead, as Spark sizes a
/// driver pod ([`job_demand`]).
pub(super) fn local_driver_mib(job: &Job) -> Result<u64, BackendError> {
    let d = job_demand(job).map_err(|e| BackendError::Rejected(e.to_string()))?;
    Ok(d.role(Role::Driver).map(|p| p.mem_mib).unwrap_or(0))
}

/// Checks that the job can run in `mode` and returns its standalone demand.
pub(super) fn standalone_job_demand(job: &Job, mode: DeployMode) -> Result<Demand, BackendError> {
    if let JobKind::Python(p) = &job.kind
        && !p.requirements.is_empty()
    {
        return Err(BackendError::Rejected(
            "it is a python job with requirements; its virtual environment would exist on the \
             sluice host only, not on the workers that run its executors (install them on the \
             workers and give `interpreter`, or run it on the local backend)"
                .into(),
        ));
    }
    let Some(spec) = job.kind.spark_spec() else {
        return Err(BackendError::Rejected(format!(
            "it is a {} job (one process on a host); the spark-standalone backend runs Spark \
             applications only (spark, sparkSql, python with spark: true)",
            job.kind.section()
        )));
    };
    if mode == DeployMode::Cluster {
        let t = spec.app_type();
        if !t.is_jvm() {
            return Err(BackendError::Rejected(format!(
                "it is a {t:?} application, and Spark cannot run Python or R applications in \
                 cluster deploy mode on a standalone cluster (spark-submit refuses it too); run \
                 it with [backend] deploy_mode = \"client\""
            )));
        }
        if spec
            .main_class
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(BackendError::Rejected(format!(
                "it has no {}.mainClass, which cluster deploy mode needs",
                prefix(job)
            )));
        }
    }
    standalone_demand(&spec, prefix(job), mode).map_err(|e| BackendError::Rejected(e.to_string()))
}
