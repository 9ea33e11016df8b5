//! How the server tells store errors apart: the database being unavailable (try again later:
//! the API answers 503, the tick ends early) from everything else.

use sluice_store::StoreError;

/// Whether `e` means the database is unavailable now, so the same operation may succeed later
/// (a refused or reset connection, a pool timeout, PostgreSQL shutting down, SQLite busy).
pub fn store_unavailable(e: &StoreError) -> bool {
    e.is_unavailable()
}

/// The error with its whole chain of causes (driver text included): for logs, never for
/// clients.
pub fn store_detail(e: &StoreError) -> String {
    e.detail()
}
