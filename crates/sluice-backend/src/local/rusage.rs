//! What a run's process tree used, from the kernel: the wrapper's resource usage once it has
//! ended, which includes every descendant it (and they) waited for: peak RSS of the largest
//! process and the CPU time of all of them.

use sluice_core::cost::ProcessUsage;

/// Blocks until the child `pid` has ended and returns its resource usage and its children's,
/// leaving it a zombie for the caller to reap (`waitid` with `WNOWAIT`). None when it cannot
/// tell (not our child, not Linux).
#[cfg(target_os = "linux")]
pub(super) fn wait_usage(pid: u32) -> Option<ProcessUsage> {
    let id = libc::id_t::try_from(pid).ok()?;
    // SAFETY: both structures are plain C data, zeroed, and live for the whole call; the raw
    // syscall is used because only it returns the rusage (glibc's waitid does not take one).
    // WNOWAIT leaves the child waitable, so tokio still reaps it as before.
    let (rc, ru) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let mut ru: libc::rusage = std::mem::zeroed();
        let rc = libc::syscall(
            libc::SYS_waitid,
            libc::P_PID,
            id,
            &mut info as *mut libc::siginfo_t,
            libc::WEXITED | libc::WNOWAIT,
            &mut ru as *mut libc::rusage,
        );
        (rc, ru)
    };
    if rc != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(ProcessUsage {
        // ru_maxrss is in KiB on Linux.
        peak_rss_bytes: u64::try_from(ru.ru_maxrss)
            .unwrap_or(0)
            .saturating_mul(1024),
        cpu_seconds: secs(ru.ru_utime) + secs(ru.ru_stime),
    })
}

/// Not on Linux: unknown.
#[cfg(not(target_os = "linux"))]
pub(super) fn wait_usage(_pid: u32) -> Option<ProcessUsage> {
    None
}
