//! How the server tells store errors apart: the database being unavailable (try again later:
//! the API answers 503, the tick ends early) from everything else.

use sluice_store::StoreError;

/// Whether `e` means the database is unavailable now, so the same operation may succeed later.
pub fn store_unavailable(e: &StoreError) -> bool {
    // PLUG (store branch): `StoreError::is_unavailable` tells a refused or reset connection, a
    // pool timeout and PostgreSQL shutting down from other errors; replace this body with
    // `e.is_unavailable()` once it is on this branch.
    matches!(e, StoreError::Connect { .. })
}

/// The error with its whole chain of causes (driver text included): for logs, never for
/// clients.
pub fn store_detail(e: &StoreError) -> String {
    // PLUG (store branch): `StoreError::detail` does the same.
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
