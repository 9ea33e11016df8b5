//! The simulator's errors: each names where the bad input is (a trace line and field, a cluster
//! key) and the value.

/// What went wrong reading a trace, a cluster file or generator settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// A trace line has a bad field.
    #[error("trace line {line}: field `{field}` = {value:?}: {message}")]
    Trace {
        /// 1-based line number in the trace file (the CSV header is line 1).
        line: u64,
        /// The field (column or JSON key).
        field: String,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A trace line that cannot be read as a record at all (malformed CSV or JSON).
    #[error("trace line {line}: {message}")]
    TraceLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A bad key in the cluster file.
    #[error("cluster key `{key}` = {value:?}: {message}")]
    Cluster {
        /// The key, dotted (`nodes[0].cpu`, `namespaces.etl.weight`).
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The cluster file is not valid TOML or has an unknown key or a wrong type.
    #[error("cluster file: {0}")]
    ClusterFile(String),
    /// A bad generator setting.
    #[error("generator setting `{key}` = {value:?}: {message}")]
    Generator {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A policy name that is not known.
    #[error(
        "unknown policy {0:?} (expected one of no-admission, strict, best-effort, backfill, \
         strict+aging, backfill+aging, configured)"
    )]
    UnknownPolicy(String),
}

pub(crate) fn trace_err(
    line: u64,
    field: &str,
    value: impl ToString,
    message: impl Into<String>,
) -> SimError {
    SimError::Trace {
        line,
        field: field.to_string(),
        value: value.to_string(),
        message: message.into(),
    }
}

pub(crate) fn cluster_err(
    key: impl Into<String>,
    value: impl ToString,
    message: impl Into<String>,
) -> SimError {
    SimError::Cluster {
        key: key.into(),
        value: value.to_string(),
        message: message.into(),
    }
}
