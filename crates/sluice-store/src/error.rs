//! The one error type of the store, and how a driver error is classified: the database being
//! unavailable (try again later) or anything else.
//!
//! Messages are safe to show to a client: the [`Display`](std::fmt::Display) of
//! [`StoreError::Unavailable`] and [`StoreError::Database`] carries no database or driver text
//! (that is in [`std::error::Error::source`], and in [`StoreError::detail`] for logs).

use std::borrow::Cow;

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

    /// No workflow has this namespace and name.
    #[error("no workflow {namespace}/{name}")]
    NoWorkflow {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },

    /// No workflow run has this id.
    #[error("no workflow run with id {0:?}")]
    NoWorkflowRun(String),

    /// A compare-and-set on a schedule or on a job's orchestration state lost: it changed
    /// meanwhile. The message names the object and what was expected.
    #[error("{0}: it was changed by someone else in the meantime")]
    Stale(String),

    /// No API token has this id.
    #[error("token {0:?} not found")]
    NoToken(String),

    /// An API token with this id (or the same secret) already exists.
    #[error("a token with id {0:?} (or the same secret) already exists")]
    DuplicateToken(String),

    /// The job is not in the dead-letter queue.
    #[error("job {0:?} is not in the dead-letter queue")]
    NotDeadLettered(String),

    /// A write through a fenced store ([`crate::Store::fenced`]) found that its lease has
    /// another holder or epoch now: this replica is no longer the leader, and nothing was
    /// written.
    #[error(
        "lease {name:?} epoch {epoch} of {holder:?} was taken over: this replica is no longer the leader; nothing written"
    )]
    Fenced {
        /// The lease.
        name: String,
        /// The holder the write was made for.
        holder: String,
        /// The epoch the write was made for.
        epoch: i64,
    },

    /// The database cannot be reached or cannot serve now: connection refused or reset, I/O
    /// error, no answer in time, no pool connection free in time, pool closed, PostgreSQL
    /// shutting down or refusing connections (SQLSTATE class 08, 57P0x, 53300) or read only (a
    /// standby after a failover, 25006), SQLite busy or locked past its busy timeout. Worth retrying later (an API answers 503). The Display has no driver text; the
    /// driver's error is the [`source`](std::error::Error::source).
    #[error("the database is unavailable, try again later")]
    Unavailable(#[source] sqlx::Error),

    /// The database reported any other error. The Display has no driver text (it is safe to
    /// show to a client); the driver's error is the [`source`](std::error::Error::source).
    #[error("database error")]
    Database(#[source] sqlx::Error),

    /// A value the store must keep or match exactly (an id, a name, a label, a filter) contains
    /// a NUL character, which PostgreSQL cannot store in text (and SQLite refuses the same
    /// way, for one behaviour on both). Nothing was written. `field` names the value.
    #[error(
        "invalid {field} {value:?}: it contains a NUL character (U+0000), which cannot be stored"
    )]
    InvalidInput {
        /// Which value: `id`, `namespace`, `name`, `level`, `labels`, `labels.KEY`, ...
        field: String,
        /// The value as given (its Display escapes the NUL).
        value: String,
    },

    /// Bringing the schema up to date failed.
    #[error("store schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A stored row does not decode (for example an unknown state name, or JSON that does not
    /// parse). The message names the table, column, job and value.
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    /// [`StoreError::Unavailable`] if [`is_unavailable_error`] says so, else
    /// [`StoreError::Database`].
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable_error(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// True when the database is unavailable ([`StoreError::Unavailable`], or a
    /// [`StoreError::Connect`] whose cause is unavailability, such as a refused connection):
    /// the operation may succeed if tried again later. False for every other error (bad
    /// input, conflicts, corrupt rows, other database errors).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Connect { source, .. } => is_unavailable_error(source),
            _ => false,
        }
    }

    /// The message with its whole chain of causes, driver text included: for logs, not for
    /// clients (use the Display for them).
    pub fn detail(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            // Some variants already embed their source in their message.
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = c.source();
        }
        out
    }
}

/// Whether a driver error means the database is unavailable (see [`StoreError::Unavailable`]).
pub(crate) fn is_unavailable_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let driver = if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                Driver::Postgres
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                Driver::Sqlite
            } else {
                Driver::Other
            };
            let code = db.code().unwrap_or(Cow::Borrowed(""));
            code_is_unavailable(driver, &code)
        }
        _ => false,
    }
}

/// Which driver a database error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// PostgreSQL: the code is a SQLSTATE.
    Postgres,
    /// SQLite: the code is an extended result code, in decimal.
    Sqlite,
    /// Another driver: never unavailable by its code.
    Other,
}

/// Whether a database error code means unavailability: on PostgreSQL, SQLSTATE class 08
/// (connection exception), 57P01 to 57P05 (admin or crash shutdown, cannot connect now,
/// database dropped, idle session timeout), 53300 (too many connections) and 25006 (a write in a
/// read-only transaction: the server is a standby now, after a failover); on SQLite,
/// `SQLITE_BUSY` and `SQLITE_LOCKED` (with any extended code: the busy timeout has passed by
/// the time they are returned) and `SQLITE_IOERR`.
pub(crate) fn code_is_unavailable(driver: Driver, code: &str) -> bool {
    match driver {
        Driver::Postgres => {
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "25006"
        }
        Driver::Sqlite => {
            /// Primary result codes (the low byte of an extended code).
            const SQLITE_BUSY: i64 = 5;
            const SQLITE_LOCKED: i64 = 6;
            const SQLITE_IOERR: i64 = 10;
            code.parse::<i64>()
                .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR))
        }
        Driver::Other => false,
    }
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

impl From<sluice_core::record::CorruptRecord> for StoreError {
    fn from(e: sluice_core::record::CorruptRecord) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
