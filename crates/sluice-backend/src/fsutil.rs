//! Small helpers the backends share: job ids as directory names, atomic file writes, I/O error
//! context, poison-tolerant locks and the wall-clock time of run records.

use std::path::{Component, Path};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::BackendError;
use crate::clock::system_now_ms;

/// The longest file name most file systems take (`NAME_MAX`).
const MAX_ID_BYTES: usize = 255;

/// True when `job_id` can name a run directory: one normal path component (not empty, `.` or
/// `..`, no `/`), no control character (NUL included), at most 255 bytes.
pub(crate) fn valid_job_id(job_id: &str) -> bool {
    let mut comps = Path::new(job_id).components();
    matches!(comps.next(), Some(Component::Normal(_)))
        && comps.next().is_none()
        && job_id.len() <= MAX_ID_BYTES
        && !job_id.chars().any(|c| c == '/' || c.is_control())
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |source| BackendError::Io { context, source }
}

/// Writes a file through a temporary name and a rename, so that readers see the old content or
/// the new, never a part.
pub(crate) async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BackendError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, data)
        .await
        .map_err(io_err(format!("writing {}", path.display())))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io_err(format!("writing {}", path.display())))
}

/// Locks a mutex, taking the data even if a panic poisoned it. Every critical section in the
/// backends is a single read, insert or remove, so a panic cannot leave the data inconsistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch from the system clock ([`system_now_ms`]), for the times
/// written in run records (0 before the epoch).
pub(crate) fn now_ms() -> u64 {
    u64::try_from(system_now_ms()).unwrap_or(0)
}

#[cfg(test)]
mod tests;
