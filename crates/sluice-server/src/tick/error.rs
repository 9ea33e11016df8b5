//! The errors of one tick.

use sluice_backend::BackendError;
use sluice_store::StoreError;

/// Errors of one tick; logged, the loop goes on.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}
