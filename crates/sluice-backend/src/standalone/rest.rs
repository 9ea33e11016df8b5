//! Talking to the master and its workers over HTTP: `/json/` (cached), the REST submission
//! server, workers' `/log/` pages, and the application ids read from drivers' logs.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::config::{APP_ID_GRACE, APP_ID_SCAN_BYTES, APP_ID_SCAN_REMOTE_BYTES, STATE_MAX_AGE};
use super::master::{MasterState, RestResponse, WorkerLogPiece, app_id_in_log, parse_worker_log};
use super::state::{RunRecord, StandaloneBackend};
use crate::fsutil::{lock, now_ms};
use crate::{BackendError, RunNote, RunStatus};

impl StandaloneBackend {
    pub(super) fn web(&self, path: &str) -> String {
        format!("{}{}", self.cfg.web_url.trim_end_matches('/'), path)
    }

    pub(super) fn rest(&self, path: &str) -> Result<String, BackendError> {
        let base = self.cfg.rest_url.as_deref().ok_or_else(|| {
            BackendError::Config(
                "rest_url is not configured (the master's REST submission server)".into(),
            )
        })?;
        Ok(format!("{}{}", base.trim_end_matches('/'), path))
    }

    /// Reads `/json/` afresh and caches the outcome.
    pub(super) async fn fetch_state(&self) -> Result<Arc<MasterState>, BackendError> {
        let r = self.read_state().await;
        let before = lock(&self.state)
            .replace((Instant::now(), r.as_ref().ok().cloned()))
            .and_then(|(_, s)| s);
        if let (Some(before), Ok(now)) = (before, &r) {
            self.note_losses(&before, now);
        }
        r
    }

    /// Records, for the timelines of running jobs, workers lost and cores taken from their
    /// applications between two reads of the master.
    pub(super) fn note_losses(&self, before: &MasterState, now: &MasterState) {
        let runs: Vec<(String, u32, String)> = lock(&self.live)
            .values()
            .filter_map(|r| Some((r.job_id.clone(), r.attempt, r.app_id.clone()?)))
            .collect();
        if runs.is_empty() {
            return;
        }
        let apps: Vec<&str> = runs.iter().map(|(_, _, a)| a.as_str()).collect();
        let found = now.losses_since(before, &apps);
        let mut notes = lock(&self.notes);
        for (app, message) in found {
            for (job_id, attempt, _) in runs.iter().filter(|(_, _, a)| *a == app) {
                tracing::warn!(job = %job_id, "spark-standalone: {message}");
                notes.push(RunNote {
                    job_id: job_id.clone(),
                    attempt: *attempt,
                    message: message.clone(),
                });
            }
        }
    }

    pub(super) async fn read_state(&self) -> Result<Arc<MasterState>, BackendError> {
        let url = self.web("/json/");
        let text = async {
            let resp = self.http.get(&url).send().await?.error_for_status()?;
            resp.text().await
        }
        .await
        .map_err(|e| BackendError::Unavailable(format!("Spark master at {url}: {e}")))?;
        let state = MasterState::parse(&text).map_err(|e| {
            BackendError::Unavailable(format!("Spark master at {url}: unreadable /json/: {e}"))
        })?;
        Ok(Arc::new(state))
    }

    /// The cached `/json/` if recent, else a fresh one; `None` when the master cannot be read
    /// (a recent failure is not retried, so that a master that does not answer slows a cycle
    /// down once, not once per job).
    pub(super) async fn recent_state(&self) -> Option<Arc<MasterState>> {
        if let Some((at, s)) = lock(&self.state).as_ref()
            && at.elapsed() < STATE_MAX_AGE
        {
            return s.clone();
        }
        self.fetch_state().await.ok()
    }

    /// True when the last read of the master, a moment ago, failed.
    pub(super) fn master_recently_down(&self) -> bool {
        matches!(lock(&self.state).as_ref(), Some((at, None)) if at.elapsed() < STATE_MAX_AGE)
    }

    pub(super) fn note_reachable(&self, ok: bool, why: &str) {
        let was = self.reachable.swap(ok, Ordering::Relaxed);
        match (was, ok) {
            (true, false) => tracing::warn!(
                "spark-standalone: master unavailable, admitting nothing until it is back: {why}"
            ),
            (false, true) => tracing::info!("spark-standalone: master available again"),
            _ => {}
        }
    }

    pub(super) async fn rest_call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<RestResponse, BackendError> {
        let resp = req
            .send()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{what}: {e}")))?;
        let parsed: Option<RestResponse> = serde_json::from_str(&text).ok();
        match parsed {
            Some(r) if status.is_success() => Ok(r),
            other => {
                let why = other
                    .map(|r| r.short_message())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
                let msg = format!("{what}: {status}: {why}");
                Err(if status.is_server_error() || status.is_success() {
                    BackendError::Unavailable(msg)
                } else {
                    BackendError::Rejected(msg)
                })
            }
        }
    }

    /// The run's application id: recorded, or found now in the driver's log (and recorded).
    pub(super) async fn discover_app_id(
        &self,
        rec: &RunRecord,
        state: Option<&MasterState>,
    ) -> Option<String> {
        if let Some(id) = &rec.app_id {
            return Some(id.clone());
        }
        let found = if rec.is_cluster() {
            let driver_id = rec.driver_id.as_deref()?;
            let state = state?;
            let worker = state.driver(driver_id)?.worker.as_deref()?;
            let webui = state.worker(worker)?.webuiaddress.clone();
            let piece = self
                .worker_log(&webui, driver_id, "stderr", 0, APP_ID_SCAN_REMOTE_BYTES)
                .await
                .ok()?;
            app_id_in_log(&piece.data)
        } else {
            let log = self.run_dir(&rec.job_id, rec.attempt).join("output.log");
            let bytes = read_head(&log, APP_ID_SCAN_BYTES).await?;
            app_id_in_log(&String::from_utf8_lossy(&bytes))
        }?;
        let mut updated = rec.clone();
        updated.app_id = Some(found.clone());
        if let Err(e) = self.save_record(&updated).await {
            tracing::warn!(job = %rec.job_id, "spark-standalone: recording the app id: {e}");
        }
        let key = (rec.job_id.clone(), rec.attempt);
        if let Some(r) = lock(&self.live).get_mut(&key) {
            r.app_id = Some(found.clone());
        }
        tracing::info!(job = %rec.job_id, attempt = rec.attempt, app_id = %found,
            "spark-standalone: application registered");
        Some(found)
    }

    pub(super) async fn worker_log(
        &self,
        webui: &str,
        driver_id: &str,
        log_type: &str,
        offset: u64,
        len: u64,
    ) -> Result<WorkerLogPiece, BackendError> {
        let url = format!("{}/log/", webui.trim_end_matches('/'));
        let text = async {
            self.http
                .get(&url)
                .query(&[
                    ("driverId", driver_id),
                    ("logType", log_type),
                    ("offset", &offset.to_string()),
                    ("byteLength", &len.to_string()),
                ])
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        }
        .await
        .map_err(|e| BackendError::Unavailable(format!("worker log at {url}: {e}")))?;
        parse_worker_log(&text).ok_or_else(|| {
            BackendError::Unavailable(format!(
                "worker log at {url}: unexpected answer {:?}",
                text.lines().next().unwrap_or("")
            ))
        })
    }

    /// Job ids of live runs whose application holds all the room it was admitted for.
    pub(super) async fn visible(&self, state: &MasterState) -> BTreeSet<String> {
        let records: Vec<RunRecord> = lock(&self.live).values().cloned().collect();
        let mut visible = BTreeSet::new();
        for rec in records {
            if rec.is_cluster() {
                let driver_running = rec
                    .driver_id
                    .as_deref()
                    .and_then(|d| state.driver(d))
                    .is_some_and(|d| d.state == "RUNNING");
                if !driver_running {
                    continue;
                }
            }
            if let Some(app) = self.discover_app_id(&rec, Some(state)).await
                && state.app_holds(&app, rec.cores_max)
            {
                visible.insert(rec.job_id.clone());
            }
        }
        visible
    }

    /// The status of a run whose driver is alive: running once its application is registered
    /// and not WAITING for executors; pending before that (for at most [`APP_ID_GRACE`] after
    /// the submit, in case the driver's log never names its application).
    pub(super) async fn running_or_pending(&self, rec: &RunRecord) -> RunStatus {
        let state = self.recent_state().await;
        match self.discover_app_id(rec, state.as_deref()).await {
            Some(app) => match state.as_deref().and_then(|s| s.active_app(&app)) {
                Some(a) if a.state == "WAITING" => RunStatus::Pending,
                _ => RunStatus::Running,
            },
            None => {
                let age = now_ms().saturating_sub(rec.submitted_ms);
                if u128::from(age) < APP_ID_GRACE.as_millis() {
                    RunStatus::Pending
                } else {
                    RunStatus::Running
                }
            }
        }
    }
}

pub(super) async fn read_head(path: &Path, max: u64) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).await.ok()?;
    Some(buf)
}
