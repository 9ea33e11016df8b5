//! A shared event-log location for runs whose driver is not on the sluice host (Kubernetes,
//! standalone cluster mode): Spark writes each application's log into one directory
//! (`spark.eventLog.dir`, a URI the drivers can reach), and sluice reads the same directory
//! where it is mounted on its own host (`event_log_mount`), by application id.

use std::path::{Path, PathBuf};

use sluice_core::cost::Measured;

use super::{EventLogError, read};
use crate::spark_submit::EVENT_LOG_DEFAULTS;

/// Where drivers write their event logs and where sluice reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEventLog {
    /// `spark.eventLog.dir` for the runs: `file:///...`, `hdfs://...`, `s3a://...`.
    pub dir: String,
    /// The same directory as sluice sees it (an absolute path on its host).
    pub mount: PathBuf,
}

/// A bad `event_log_dir` / `event_log_mount` setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value:?}: {message}")]
pub struct SharedLogError {
    /// The configuration key (`event_log_dir` or `event_log_mount`).
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why a run's log in the shared directory was not read.
#[derive(Debug, thiserror::Error)]
pub enum SharedReadError {
    /// The application id is not a plain file name (it comes from the cluster).
    #[error("application id {0:?} is not a plain file name; its event log is not looked for")]
    BadAppId(String),
    /// No log of the application in the directory.
    #[error(
        "no event log of application {app_id} in {mount} (looked for {app_id}, {app_id}.zstd, eventlog_v2_{app_id}, ... and their .inprogress)"
    )]
    Missing {
        /// The application id.
        app_id: String,
        /// The directory searched.
        mount: PathBuf,
    },
    /// The log is there but could not be read.
    #[error(transparent)]
    Read(#[from] EventLogError),
}

/// The path inside a `file:` URI (`file:///x`, `file:/x`); `None` for other schemes.
fn file_path(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("file:")?;
    let rest = match rest.strip_prefix("//") {
        // file:///x (empty authority) or file://localhost/x.
        Some(r) => r.strip_prefix("localhost").unwrap_or(r),
        None => rest,
    };
    rest.starts_with('/').then_some(rest)
}

impl SharedEventLog {
    /// Checks the two settings: `dir` is an absolute path or a URI (`scheme://...` or
    /// `file:/...`), without whitespace; `mount` is an absolute path, and may be left out only
    /// for a `file:` directory (then sluice reads the same path).
    pub fn new(dir: &str, mount: Option<&Path>) -> Result<SharedEventLog, SharedLogError> {
        let bad_dir = |message: &str| SharedLogError {
            key: "event_log_dir",
            value: dir.to_string(),
            message: message.to_string(),
        };
        if dir.trim().is_empty() || dir.contains(char::is_whitespace) {
            return Err(bad_dir(
                "must be a directory URI without spaces, like file:///data/spark-events or \
                 s3a://bucket/spark-events",
            ));
        }
        let uri = if dir.starts_with('/') {
            format!("file://{dir}")
        } else {
            dir.to_string()
        };
        let scheme_ok = match uri.split_once(':') {
            Some((scheme, rest)) => {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                    && rest.starts_with('/')
            }
            None => false,
        };
        if !scheme_ok || (uri.starts_with("file:") && file_path(&uri).is_none()) {
            return Err(bad_dir(
                "must be an absolute path or a URI, like file:///data/spark-events or \
                 s3a://bucket/spark-events",
            ));
        }
        let mount = match (mount, file_path(&uri)) {
            (Some(m), _) => {
                if !m.is_absolute() {
                    return Err(SharedLogError {
                        key: "event_log_mount",
                        value: m.display().to_string(),
                        message: "must be an absolute path (where sluice reads the event-log \
                                  directory)"
                            .into(),
                    });
                }
                m.to_path_buf()
            }
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => {
                return Err(SharedLogError {
                    key: "event_log_mount",
                    value: String::new(),
                    message: format!(
                        "is required when event_log_dir ({dir}) is not a file: URI: the path \
                         where sluice reads that directory (a shared volume mounted on its host \
                         or in its pod)"
                    ),
                });
            }
        };
        Ok(SharedEventLog { dir: uri, mount })
    }

    /// The Spark conf that makes a run log into this directory: `spark.eventLog.enabled`,
    /// `spark.eventLog.dir` and the memory-metrics settings of a local run. The caller sets
    /// each only when the job does not set it.
    pub fn conf(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("spark.eventLog.enabled".to_string(), "true".to_string()),
            ("spark.eventLog.dir".to_string(), self.dir.clone()),
        ];
        out.extend(
            EVENT_LOG_DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        out
    }

    /// The log of application `app_id` under the mount: a rolling log's
    /// `eventlog_v2_<id>` directory, else a single file `<id>` with or without a codec suffix,
    /// a finished one before an `.inprogress` one.
    pub fn log_path(&self, app_id: &str) -> Result<PathBuf, SharedReadError> {
        let plain = !app_id.is_empty()
            && !app_id.starts_with('.')
            && app_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return Err(SharedReadError::BadAppId(app_id.to_string()));
        }
        let rolling = self.mount.join(format!("eventlog_v2_{app_id}"));
        if rolling.is_dir() {
            return Ok(rolling);
        }
        for progress in ["", ".inprogress"] {
            for codec in ["", ".zstd", ".zst", ".lz4", ".lzf", ".snappy"] {
                let p = self.mount.join(format!("{app_id}{codec}{progress}"));
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(SharedReadError::Missing {
            app_id: app_id.to_string(),
            mount: self.mount.clone(),
        })
    }

    /// What application `app_id` used, from its log under the mount (blocking: call it on a
    /// blocking thread). `end_ms` closes what the log leaves open.
    pub fn measure(&self, app_id: &str, end_ms: i64) -> Result<Measured, SharedReadError> {
        let path = self.log_path(app_id)?;
        let usage = read(&path)?;
        Ok(Measured::from_event_log(&usage, end_ms))
    }

    /// [`SharedEventLog::measure`] on a blocking thread, its failure as the reason nothing was
    /// measured.
    pub async fn measure_async(
        &self,
        app_id: &str,
        end_ms: i64,
    ) -> Result<Measured, crate::BackendError> {
        let me = self.clone();
        let id = app_id.to_string();
        tokio::task::spawn_blocking(move || me.measure(&id, end_ms))
            .await
            .map_err(|e| crate::BackendError::Unmeasured(format!("reading an event log: {e}")))?
            .map_err(|e| crate::BackendError::Unmeasured(e.to_string()))
    }
}
