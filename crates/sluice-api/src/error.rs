//! The JSON body of every error.

use serde::{Deserialize, Serialize};

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}
