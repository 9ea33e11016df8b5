//! References to secrets, so that a job names where a secret is instead of holding it:
//! `secretEnv: {DB_PASSWORD: {file: /run/secrets/db}}`. Resolved only when the job is handed to
//! its backend (a file or an environment variable of the sluice server, read then; a Kubernetes
//! Secret, rendered as `valueFrom.secretKeyRef` for the Spark Operator), so the value is never in
//! the store, an answer or a log.

use serde::{Deserialize, Serialize};

/// Where the value of a secret environment variable comes from (exactly one key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum SecretRef {
    /// A file on the sluice server (absolute path), read when the run starts; a final line
    /// break is dropped. Allowed only under `security.secrets.files`.
    File(String),
    /// An environment variable of the sluice server. Allowed only if named in
    /// `security.secrets.env`.
    Env(String),
    /// A key of a Kubernetes Secret in the job's namespace (Kubernetes backend only).
    SecretKeyRef {
        /// The Secret's name.
        name: String,
        /// The key within it.
        key: String,
    },
}

impl SecretRef {
    /// "file", "env" or "secretKeyRef".
    pub fn kind(&self) -> &'static str {
        match self {
            SecretRef::File(_) => "file",
            SecretRef::Env(_) => "env",
            SecretRef::SecretKeyRef { .. } => "secretKeyRef",
        }
    }
}
