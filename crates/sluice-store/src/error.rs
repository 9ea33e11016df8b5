//! The one error type of the store.

use sluice_core::job::JobState;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No job has this id.
    #[error("job {0:?} not found")]
    NotFound(String),

    /// A compare-and-set transition lost: the job is no longer in the state the caller expected
    /// (another actor moved it first). Re-read the job and decide again.
    #[error(
        "job {id:?} is {actual}, not {expected}: it was changed by someone else in the meantime"
    )]
    Conflict {
        /// The job.
        id: String,
        /// The state the caller expected the job to be in.
        expected: JobState,
        /// The state the job is actually in.
        actual: JobState,
    },

    /// The life cycle does not allow this move (see [`JobState::can_move_to`]).
    #[error("job {id:?} cannot move from {from} to {to}")]
    InvalidTransition {
        /// The job.
        id: String,
        /// The state the move starts from.
        from: JobState,
        /// The state the move was to reach.
        to: JobState,
    },

    /// A job with this id already exists.
    #[error("a job with id {0:?} already exists")]
    Duplicate(String),

    /// The store URL is not one this crate can open. The string is the URL with any password
    /// removed.
    #[error(
        "unsupported store URL {0:?}: expected sqlite://PATH (the file is created if missing), \
         sqlite::memory:, postgres://USER@HOST:PORT/DATABASE or postgresql://..."
    )]
    BadUrl(String),

    /// The database could not be reached or opened. The URL has any password removed.
    #[error("cannot open the store at {url}: {source}")]
    Connect {
        /// The URL, without password.
        url: String,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },

    /// A page cursor that this store did not hand out (or that was altered).
    #[error("invalid page cursor {0:?}: pass the next_cursor of the previous page unchanged")]
    BadCursor(String),

    /// A query's parameters are out of range (for example a history step of zero). The
    /// message names the parameter and its value.
    #[error("invalid query: {0}")]
    BadQuery(String),

    /// No schedule has this namespace and name.
    #[error("schedule {namespace}/{name} not found")]
    NoSchedule {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },

    /// A schedule with this namespace and name already exists.
    #[error("a schedule {namespace}/{name} already exists (delete it first to replace it)")]
    DuplicateSchedule {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },

    /// A compare-and-set on a schedule or on a job's orchestration state lost: it changed
    /// meanwhile. The message names the object and what was expected.
    #[error("{0}: it was changed by someone else in the meantime")]
    Stale(String),

    /// The job is not in the dead-letter queue.
    #[error("job {0:?} is not in the dead-letter queue")]
    NotDeadLettered(String),

    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Bringing the schema up to date failed.
    #[error("store schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A stored row does not decode (for example an unknown state name, or JSON that does not
    /// parse). The message names the table, column, job and value.
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
}

/// `url` with the password of its user-info part (if any) replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    // The authority ends at the first '/', '?' or '#'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &url[rest_start + at..]
    )
}

#[cfg(test)]
mod tests;
