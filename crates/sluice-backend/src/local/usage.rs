//! What an ended local run used: its Spark event log (in the run directory's `eventlog/`) and
//! its process tree's resource usage (`rusage.json`, written when sluice reaped it).

use std::path::{Path, PathBuf};

use sluice_core::cost::{Measured, ProcessUsage};

use super::rundir::{EVENT_LOG, RUSAGE};
use super::state::LocalBackend;
use crate::BackendError;
use crate::eventlog;

impl LocalBackend {
    /// What run `(job_id, attempt)` used; `end_ms` closes what its log leaves open.
    pub(crate) async fn run_usage(
        &self,
        job_id: &str,
        attempt: u32,
        end_ms: i64,
    ) -> Result<Option<Measured>, BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        // Our own child's usage is written by its waiter just after it ends.
        self.wait_for_waiter(&(job_id.to_string(), attempt)).await;
        let process: Option<ProcessUsage> = tokio::fs::read(dir.join(RUSAGE))
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let logs = dir.join(EVENT_LOG);
        let parsed = tokio::task::spawn_blocking(move || read_log_dir(&logs, end_ms))
            .await
            .map_err(|e| BackendError::Io {
                context: "reading an event log".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let logged = match parsed {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(job_id, attempt, "event log: {e}");
                None
            }
        };
        Ok(match (logged, process) {
            (Some(m), Some(p)) => Some(m.with_process(p)),
            (Some(m), None) => Some(m),
            (None, Some(p)) => Some(Measured::from_process(p)),
            (None, None) => None,
        })
    }
}

/// The figures of the one application log in `dir` (a file, or a rolling log's directory);
/// none when Spark wrote none (a run that failed before its context started). With several,
/// the largest.
fn read_log_dir(dir: &Path, end_ms: i64) -> Result<Option<Measured>, eventlog::EventLogError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut logs: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.metadata().map(|m| m.len()).unwrap_or(0), e.path()))
        .collect();
    logs.sort();
    let Some((_, path)) = logs.pop() else {
        return Ok(None);
    };
    let usage = eventlog::read(&path)?;
    Ok(Some(Measured::from_event_log(&usage, end_ms)))
}
