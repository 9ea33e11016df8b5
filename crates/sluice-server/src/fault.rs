//! How the server tells store errors apart: the database being unavailable (try again later:
//! the API answers 503, the tick ends early) from everything else.

use sluice_store::StoreError;

/// Whether `e` means the database is unavailable now, so the same operation may succeed later
/// (a refused or reset connection, a pool timeout, PostgreSQL shutting down, SQLite busy), or
/// that this replica lost the leader's lease ([`StoreError::Fenced`]): either way the tick
/// stops at once instead of going on job by job.
pub fn store_unavailable(e: &StoreError) -> bool {
    e.is_unavailable() || matches!(e, StoreError::Fenced { .. })
}

/// The error with its whole chain of causes (driver text included): for logs, never for
/// clients.
pub fn store_detail(e: &StoreError) -> String {
    e.detail()
}
