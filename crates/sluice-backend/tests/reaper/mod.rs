//! Kills what a test started, and only that. A run's process group is named by its wrapper's
//! pid, and pids are reused (`pid_max` is 32768 here and Spark's JVMs use many), so killing a
//! group by number after the run ended could kill another test's run that got the same pid.
//! The reaper kills only processes of the held groups whose environment names a run directory
//! under the test's own temporary directory.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills, when dropped, the processes of the groups it holds that belong to this test.
pub struct Reaper {
    /// The test's temporary directory: run directories are under it.
    root: PathBuf,
    /// Process groups (the wrappers' pids, the local backend's `backend_ref`).
    groups: Vec<i64>,
}

impl Reaper {
    pub fn new(root: &Path) -> Self {
        Reaper {
            root: root.to_path_buf(),
            groups: Vec::new(),
        }
    }

    /// Holds the group of a run started by the local backend (its `backend_ref` is the pid).
    pub fn hold(&mut self, backend_ref: &str) {
        if let Ok(pid) = backend_ref.parse::<i64>() {
            self.groups.push(pid);
        }
    }
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
fn pgrp(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// True when the environment of `pid` has `SLUICE_RUN_DIR` under one of `roots`.
fn runs_under(pid: i32, roots: &[Vec<u8>]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    env.split(|b| *b == 0).any(|v| {
        v.strip_prefix(b"SLUICE_RUN_DIR=")
            .is_some_and(|dir| roots.iter().any(|r| dir.starts_with(r)))
    })
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        let mut roots = vec![self.root.as_os_str().as_encoded_bytes().to_vec()];
        if let Ok(c) = self.root.canonicalize() {
            roots.push(c.as_os_str().as_encoded_bytes().to_vec());
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for pid in entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        {
            if pgrp(pid).is_some_and(|g| self.groups.contains(&g)) && runs_under(pid, &roots) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}
