//! [`Dialect`]: which SQL database a store talks to, and so which of the few non-portable
//! pieces of SQL (DDL, how a write transaction starts, index hints) it uses. A leaf: it imports
//! nothing of this crate.

/// Which database a [`crate::SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file, or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
