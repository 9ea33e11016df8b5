//! The operating system's side of a run: `/proc`, process groups, signals and what exit codes
//! mean.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::BackendError;

/// Poll interval while waiting for a process group to end.
pub(super) const POLL: Duration = Duration::from_millis(50);

pub(super) fn signal_name(sig: i32) -> String {
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
pub(super) fn proc_stat(pid: u32) -> Option<(char, i64, i64)> {
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
pub(super) fn is_our_run(pid: u32, dir: &Path) -> bool {
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
pub(super) fn group_alive(pgid: u32) -> bool {
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
pub(super) async fn wait_group_gone(pgid: u32, limit: Duration) -> bool {
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

pub(super) fn signal_group(pgid: Pid, sig: Signal) -> Result<(), BackendError> {
    match killpg(pgid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(BackendError::Io {
            context: format!("sending {} to process group {pgid}", sig.as_str()),
            source: e.into(),
        }),
    }
}
