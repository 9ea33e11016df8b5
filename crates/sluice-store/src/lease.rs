//! Leases for leader election among replicas sharing one database, and the change feed that
//! tells the leader what other replicas wrote. Types only; the statements are in `sql/lease.rs`.
//!
//! A [`Lease`] row has a holder, an expiry and an **epoch** that grows by one at every
//! acquisition. Times are the database's own clock, so replicas whose clocks disagree still
//! agree on who holds it. The epoch is the fencing token: a store made with
//! [`Store::fenced`](crate::Store::fenced) checks, inside every write transaction, that the
//! row still names its holder and epoch, so a leader that was paused past its expiry and
//! replaced cannot write anything afterwards ([`StoreError::Fenced`](crate::StoreError::Fenced)).

/// A lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name ("scheduler").
    pub name: String,
    /// Who holds it (a replica's identity).
    pub holder: String,
    /// Grows by one at every acquisition.
    pub epoch: i64,
    /// When it expires, on the database's clock (ms since the Unix epoch); 0 once released.
    pub expires_at_ms: i64,
    /// When its holder acquired it, on the database's clock.
    pub acquired_at_ms: i64,
    /// The database's clock when this was read.
    pub db_now_ms: i64,
}

impl Lease {
    /// Whether it had expired (or was released) when it was read.
    pub fn expired(&self) -> bool {
        self.expires_at_ms <= self.db_now_ms
    }
}

/// What another process sharing the database did, from [`Store::changes`](crate::Store::changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// These jobs were written (inserted, moved, retried, requeued, deleted) by another
    /// process: read them again.
    Jobs(Vec<String>),
    /// Another process asks the leader to stop the run of this job (a user's cancel made on a
    /// replica that does not run the scheduler).
    StopRequested(String),
    /// The feed was interrupted and is back: changes may have been missed, read everything
    /// again.
    Resync,
}
