//! Run directories: the files a run leaves in `data_dir/runs/<job id>/<attempt>/`, and how a
//! run's end is read from them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_core::job::Demand;

use super::os::{exit_message, is_our_run, signal_name};
use crate::RunStatus;

/// File names inside a run directory.
pub(super) const META: &str = "meta.json";
pub(super) const PID: &str = "pid";
pub(super) const LOG: &str = "output.log";
pub(super) const EXIT_CODE: &str = "exit_code";
pub(super) const KILLED_BY: &str = "killed_by";
/// What the run's process tree used (peak RSS, CPU time), written when sluice reaps it.
pub(super) const RUSAGE: &str = "rusage.json";
/// Spark's event log of the run (a directory).
pub(crate) const EVENT_LOG: &str = "eventlog";

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunMeta {
    pub(super) job_id: String,
    pub(super) attempt: u32,
    pub(super) demand: Demand,
    pub(super) argv: Vec<String>,
    pub(super) started_ms: u64,
}

pub(super) async fn read_pid(dir: &Path) -> Option<u32> {
    tokio::fs::read_to_string(dir.join(PID))
        .await
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A run's meta and pid when it has not recorded an end and its process is alive and ours.
pub(super) async fn alive_unfinished(dir: &Path) -> Option<(RunMeta, u32)> {
    let meta: RunMeta =
        serde_json::from_slice(&tokio::fs::read(dir.join(META)).await.ok()?).ok()?;
    if ended_status(dir).await.is_some() {
        return None;
    }
    let pid = read_pid(dir).await?;
    is_our_run(pid, dir).then_some((meta, pid))
}

/// How a run ended, from the files it left; `None` while no end is recorded. A failed run that
/// left a result naming what failed (a dbt run's failed nodes) says so in its message.
pub(super) async fn ended_status(dir: &Path) -> Option<RunStatus> {
    match ended_status_of_process(dir).await? {
        RunStatus::Failed { exit_code, message } => {
            let failed = match crate::kinds::read_result(dir).await {
                Ok(Some(r)) => r.failure_summary(),
                _ => None,
            };
            Some(RunStatus::Failed {
                exit_code,
                message: match failed {
                    Some(f) => format!("{message}; {f}"),
                    None => message,
                },
            })
        }
        other => Some(other),
    }
}

/// How a run's process ended, from its exit code or signal files.
async fn ended_status_of_process(dir: &Path) -> Option<RunStatus> {
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

/// How many leading bytes of `buf` to keep so that it does not end inside a UTF-8 character.
pub(super) fn utf8_keep(buf: &[u8]) -> usize {
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
