//! Cluster deploy mode: drivers submitted to, watched through and killed by the master's REST
//! submission server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sluice_core::job::{Demand, Role};
use sluice_core::sizing::DeployMode;
use sluice_core::spec::Job;

use super::config::{CLIENT_SPARK_VERSION, RECORD, StandaloneConfig};
use super::demand::executors_of;
use super::master::{RestResponse, driver_status};
use super::state::{RunRecord, StandaloneBackend};
use crate::fsutil::{lock, now_ms, valid_job_id};
use crate::spark_submit::{STANDALONE_OWN_CONF, dep_lists, main_file, map_local_path, spark_spec};
use crate::{BackendError, LogChunk, RunStatus, SubmitRequest, Submitted};

/// An application or dependency path as a URI the workers can fetch: `local://` and the image's
/// Spark home are mapped as for local runs; an absolute path becomes `file:PATH`.
pub(super) fn as_uri(path: &str, spark_home: Option<&Path>, image_spark_home: &str) -> String {
    let mapped = match spark_home {
        Some(h) => map_local_path(path, h, image_spark_home),
        None => path.strip_prefix("local://").unwrap_or(path).to_string(),
    };
    if mapped.starts_with('/') {
        format!("file:{mapped}")
    } else {
        mapped
    }
}

/// The body of `POST /v1/submissions/create` for a cluster-mode run (no I/O).
pub fn create_request(
    cfg: &StandaloneConfig,
    spark_home: Option<&Path>,
    job: &Job,
    demand: &Demand,
) -> Result<serde_json::Value, BackendError> {
    let spec = spark_spec(job)?;
    let (count, cores, heap) = executors_of(demand)?;
    let driver = demand.role(Role::Driver).ok_or_else(|| {
        BackendError::Rejected("the admitted demand has no driver (cluster deploy mode)".into())
    })?;
    let main_class = spec
        .main_class
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            BackendError::Rejected(format!(
                "job {} has no mainClass; cluster deploy mode needs one",
                job.name
            ))
        })?;
    let file = main_file(job, &spec)?;
    if let Some(k) = spec.secret_env.keys().next() {
        return Err(BackendError::Rejected(format!(
            "spark.secretEnv.{k}: secrets cannot be passed to a cluster-mode driver (the REST \
             submission would carry them in clear); use client deploy mode"
        )));
    }
    let uri = |p: &str| as_uri(p, spark_home, &cfg.image_spark_home);
    let resource = uri(file);
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &spec.spark_conf {
        if !STANDALONE_OWN_CONF.contains(&k.as_str()) {
            props.insert(k.clone(), v.0.clone());
        }
    }
    let mut jars = vec![resource.clone()];
    if let Some(deps) = &spec.deps {
        for dep in dep_lists(deps) {
            match dep.flag {
                "--jars" => jars.extend(dep.items.iter().map(|j| uri(j))),
                // Python applications never run in cluster mode (refused at submit).
                "--py-files" => {}
                _ => {
                    if let Some(joined) = dep.joined(&uri) {
                        props.insert(dep.conf.into(), joined);
                    }
                }
            }
        }
    }
    props
        .entry("spark.app.name".into())
        .or_insert(job.name.clone());
    props.insert("spark.jars".into(), jars.join(","));
    props.insert("spark.master".into(), cfg.master_url.clone());
    props.insert("spark.submit.deployMode".into(), "cluster".into());
    props.insert("spark.driver.memory".into(), format!("{}m", driver.mem_mib));
    props.insert(
        "spark.driver.cores".into(),
        driver.cpu_milli.div_ceil(1000).max(1).to_string(),
    );
    props.insert("spark.executor.cores".into(), cores.to_string());
    props.insert("spark.executor.memory".into(), format!("{heap}m"));
    props.insert(
        "spark.cores.max".into(),
        count.saturating_mul(cores).to_string(),
    );
    props
        .entry("spark.driver.supervise".into())
        .or_insert("false".into());
    // The shared event-log location, where the job does not say otherwise.
    if let Some(share) = &cfg.event_log {
        for (k, v) in share.conf() {
            props.entry(k).or_insert(v);
        }
    }
    Ok(serde_json::json!({
        "action": "CreateSubmissionRequest",
        "clientSparkVersion": CLIENT_SPARK_VERSION,
        "appResource": resource,
        "mainClass": main_class,
        "appArgs": spec.arguments.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
        "sparkProperties": props,
        "environmentVariables": {},
    }))
}

impl StandaloneBackend {
    pub(super) async fn submit_cluster(
        &self,
        req: &SubmitRequest,
    ) -> Result<Submitted, BackendError> {
        if !valid_job_id(&req.job_id) {
            return Err(BackendError::Rejected(format!(
                "job id {:?} cannot name a run directory",
                req.job_id
            )));
        }
        let body = create_request(&self.cfg, self.drivers.spark_home(), &req.job, &req.demand)?;
        let (count, cores, _) = executors_of(&req.demand)?;
        let main_class = body["mainClass"].as_str().map(str::to_string);
        let _guard = self.submit_lock.lock().await;
        let key = (req.job_id.clone(), req.attempt);
        if let Some(rec) = self.record(&req.job_id, req.attempt).await {
            if let Some(d) = &rec.driver_id {
                return Ok(Submitted {
                    backend_ref: d.clone(),
                    already_existed: true,
                });
            }
            // A create was sent and sluice stopped before it wrote the answer: adopt the
            // driver the master lists for this main class since then, if there is one.
            let state = self.fetch_state().await?;
            let claimed: BTreeSet<String> = lock(&self.live)
                .values()
                .filter_map(|r| r.driver_id.clone())
                .collect();
            let since = i64::try_from(rec.submitted_ms).unwrap_or(i64::MAX) - 1000;
            let adopt = state
                .activedrivers
                .iter()
                .chain(&state.completeddrivers)
                .filter(|d| Some(&d.mainclass) == rec.main_class.as_ref())
                .filter(|d| d.start_ms().is_some_and(|t| t >= since))
                .filter(|d| !claimed.contains(&d.id))
                .min_by_key(|d| d.start_ms());
            if let Some(d) = adopt {
                let mut rec = rec.clone();
                rec.driver_id = Some(d.id.clone());
                self.save_record(&rec).await?;
                lock(&self.live).insert(key, rec);
                tracing::info!(job = %req.job_id, driver = %d.id,
                    "spark-standalone: adopted the driver of an interrupted submit");
                return Ok(Submitted {
                    backend_ref: d.id.clone(),
                    already_existed: true,
                });
            }
        }
        let mut rec = RunRecord {
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            mode: DeployMode::Cluster.as_str().into(),
            submitted_ms: now_ms(),
            cores_max: count.saturating_mul(cores),
            main_class,
            driver_id: None,
            app_id: None,
        };
        self.save_record(&rec).await?;
        let url = self.rest("/v1/submissions/create")?;
        let sent = self.http.post(&url).json(&body).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if e.is_connect() {
                    // Nothing reached the master: the attempt may be submitted afresh.
                    let _ =
                        tokio::fs::remove_file(self.run_dir(&req.job_id, req.attempt).join(RECORD))
                            .await;
                }
                return Err(BackendError::Unavailable(format!("{url}: {e}")));
            }
        };
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{url}: {e}")))?;
        let answer: RestResponse = serde_json::from_str(&text).unwrap_or_default();
        let Some(driver_id) = answer
            .submission_id
            .clone()
            .filter(|_| answer.success == Some(true))
        else {
            let _ =
                tokio::fs::remove_file(self.run_dir(&req.job_id, req.attempt).join(RECORD)).await;
            let why = match answer.short_message() {
                m if m.is_empty() => format!("{status}: {}", text.lines().next().unwrap_or("")),
                m => m,
            };
            return Err(if status.is_server_error() || why.contains("ALIVE state") {
                BackendError::Unavailable(format!("the Spark master refused the driver: {why}"))
            } else {
                BackendError::Rejected(format!("the Spark master refused the driver: {why}"))
            });
        };
        rec.driver_id = Some(driver_id.clone());
        self.save_record(&rec).await?;
        lock(&self.live).insert(key, rec);
        tracing::info!(job = %req.job_id, attempt = req.attempt, driver = %driver_id,
            "spark-standalone: driver submitted");
        Ok(Submitted {
            backend_ref: driver_id,
            already_existed: false,
        })
    }

    pub(super) async fn status_cluster(&self, rec: &RunRecord) -> Result<RunStatus, BackendError> {
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(RunStatus::Lost {
                message: "no driver was recorded for this run (sluice stopped while submitting \
                          it, and the master lists no matching driver)"
                    .into(),
            });
        };
        if self.master_recently_down() {
            return Err(BackendError::Unavailable(
                "the Spark master did not answer a moment ago".into(),
            ));
        }
        let url = self.rest(&format!("/v1/submissions/status/{driver_id}"))?;
        let resp = self
            .rest_call(self.http.get(&url), "Spark master REST status")
            .await?;
        match driver_status(&resp, driver_id) {
            RunStatus::Running => Ok(self.running_or_pending(rec).await),
            RunStatus::Pending => Ok(RunStatus::Pending),
            ended => {
                self.ended(rec).await;
                Ok(ended)
            }
        }
    }

    pub(super) async fn cancel_cluster(&self, rec: &RunRecord) -> Result<(), BackendError> {
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(());
        };
        let url = self.rest(&format!("/v1/submissions/kill/{driver_id}"))?;
        let resp = self
            .rest_call(self.http.post(&url), "Spark master REST kill")
            .await?;
        if resp.success == Some(true) {
            tracing::info!(job = %rec.job_id, driver = %driver_id, "spark-standalone: kill sent");
        } else {
            let why = resp.short_message();
            if why.contains("ALIVE state") {
                return Err(BackendError::Unavailable(format!(
                    "the Spark master cannot kill {driver_id} now: {why}"
                )));
            }
            // Otherwise "has already finished or does not exist".
        }
        self.ended(rec).await;
        Ok(())
    }

    /// Cluster-mode logs: the driver's stdout and stderr from its worker's web UI. The offset
    /// packs both positions (stdout in the high 32 bits, stderr in the low 32 bits); each call
    /// returns what is new in stdout, then what is new in stderr.
    pub(super) async fn logs_cluster(
        &self,
        rec: &RunRecord,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let (out_off, err_off) = (offset >> 32, offset & 0xFFFF_FFFF);
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: true,
            });
        };
        let state = self.fetch_state().await?;
        let driver = state.driver(driver_id);
        let ended = driver.is_some_and(|d| !matches!(d.state.as_str(), "RUNNING" | "SUBMITTED"));
        let Some(webui) = driver
            .and_then(|d| d.worker.as_deref())
            .and_then(|w| state.worker(w))
            .map(|w| w.webuiaddress.clone())
        else {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: driver.is_none() || ended,
            });
        };
        let half = (max_bytes as u64 / 2).max(1);
        let out = self
            .worker_log(&webui, driver_id, "stdout", out_off, half)
            .await?;
        let err = self
            .worker_log(&webui, driver_id, "stderr", err_off, half)
            .await?;
        let next_out = out.end.max(out_off).min(0xFFFF_FFFF);
        let next_err = err.end.max(err_off).min(0xFFFF_FFFF);
        let mut data = out.data;
        data.push_str(&err.data);
        Ok(LogChunk {
            data,
            next_offset: (next_out << 32) | next_err,
            complete: ended && next_out >= out.total && next_err >= err.total,
        })
    }
}
