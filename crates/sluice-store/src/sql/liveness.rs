//! Store failover on PostgreSQL: how the pool notices connections that went silent (the
//! database host rebooted or the network dropped the flows: old connections get no answer, new
//! ones work) and replaces them within seconds instead of hanging.
//!
//! What bounds each wait, client side:
//!
//! - taking a connection from the pool: [`ACQUIRE_TIMEOUT`]; an idle connection is pinged
//!   first, for at most [`PING_TIMEOUT`] (instead of sqlx's unbounded `test_before_acquire`);
//! - a whole store call: [`CALL_TIMEOUT`] ([`super::bounded`]).
//!
//! When a ping or a call times out, every connection opened before that moment is suspect
//! ([`Liveness::suspect_all`]): the pool closes it instead of handing it out again or taking it
//! back, so the next calls open fresh connections at once rather than each finding its own dead
//! one. A connection whose call timed out is closed without the unbounded ping sqlx does when a
//! connection comes back to the pool: that ping would hang on a silent connection and hold a pool
//! slot for as long as the kernel keeps the socket. While callers abandon calls (their own
//! deadlines, a client that went away), connections coming back are pinged first, bounded.
//!
//! A write refused as read only (the server is a standby now) also makes every connection opened
//! before suspect: they all point to the old primary.
//!
//! Server side, every connection starts with [`SERVER_SETTINGS`] (a `statement_timeout`, an
//! `idle_in_transaction_session_timeout`, and TCP keepalive and user timeout for the server's
//! end), unless the URL already sets that parameter through `options`.
//!
//! Not available: client-side TCP keepalive. sqlx 0.9 opens the socket itself and exposes no
//! socket option; libpq's URL parameters `keepalives`, `keepalives_idle`, `tcp_user_timeout` are
//! ignored by sqlx (with a warning). The timeouts above do the job keepalive would, and also
//! catch the case keepalive cannot: a peer whose kernel still answers but whose database does not.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::any::AnyPoolOptions;

use crate::error::StoreError;

/// How long an operation waits for a pool connection (PostgreSQL), pings included.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a ping of an idle PostgreSQL connection may take before the connection is dropped.
pub(super) const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a store call on PostgreSQL may take, from taking a connection to the last answer.
/// Above the server's `statement_timeout`, so a slow statement is cancelled by the server (an
/// ordinary error) before the client gives up on the connection.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// A call cancelled by its caller after running this long makes the pool suspect its
/// connections, as a timed-out call does (the caller's own deadline fired first).
pub(super) const SUSPECT_AFTER: Duration = PING_TIMEOUT;
/// For this long after a call was abandoned by its caller, connections given back to the pool
/// are pinged (bounded) before sqlx's own ping.
pub(super) const ABANDONED_RECENTLY: Duration = Duration::from_secs(5);
/// A PostgreSQL connection is replaced after this long, whatever its health.
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// An idle PostgreSQL connection is closed after this long.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Session settings every PostgreSQL connection starts with (startup `options`), unless the URL
/// names the parameter already.
///
/// - `statement_timeout`: no statement runs longer than 10 s (below [`CALL_TIMEOUT`]).
/// - `idle_in_transaction_session_timeout`: a transaction whose client stopped talking for 2 s
///   is ended, releasing its row locks (sluice never waits inside a transaction): a process
///   that stopped answering (paused, partitioned) cannot hold up the other replicas for long,
///   the leader's lease row among those locks.
/// - `tcp_keepalives_*`, `tcp_user_timeout`: the server notices a vanished client within about
///   20 s and frees its backend.
pub(super) const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("statement_timeout", "10s"),
    ("idle_in_transaction_session_timeout", "2s"),
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "2"),
    ("tcp_user_timeout", "20000"),
];

/// `url` with each of [`SERVER_SETTINGS`] the URL does not mention added as an
/// `options[NAME]=VALUE` query parameter (which sqlx sends as `-c NAME=VALUE` at startup).
pub(super) fn with_server_settings(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut out = url.to_string();
    for (name, value) in SERVER_SETTINGS {
        if query.contains(name) {
            continue;
        }
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&format!("options[{name}]={value}"));
    }
    out
}

/// The error a store call reports when the database did not answer in time: an I/O timeout,
/// so [`crate::StoreError::is_unavailable`] holds and the API answers 503.
pub(super) fn timed_out(what: &str, after: Duration) -> sqlx::Error {
    sqlx::Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what}: no answer from the database within {after:?}"),
    ))
}

/// Whether `e` means the connection it came from talks to the wrong server: a write refused as
/// read only (SQLSTATE 25006), as on a primary that came back as a standby after a failover.
/// Every connection opened before is then replaced (new ones find the new primary).
pub(super) fn is_stale_server(e: &StoreError) -> bool {
    match e {
        StoreError::Unavailable(sqlx::Error::Database(db)) => db.code().as_deref() == Some("25006"),
        _ => false,
    }
}

/// Which pool connections are suspect: those opened before the last time a ping or a call
/// timed out. Shared by the pool's hooks and the store's call bound.
#[derive(Debug)]
pub(super) struct Liveness {
    /// The reference point of the times below.
    base: Instant,
    /// Nanoseconds after `base` of the last timeout; connections opened before it are
    /// suspect. 0: none.
    suspect_before: AtomicU64,
    /// Nanoseconds after `base` of the last call abandoned by its caller. 0: none.
    abandoned_at: AtomicU64,
}

impl Liveness {
    pub(super) fn new() -> Arc<Liveness> {
        Arc::new(Liveness {
            base: Instant::now(),
            suspect_before: AtomicU64::new(0),
            abandoned_at: AtomicU64::new(0),
        })
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Marks every connection opened until now as suspect; `why` is logged.
    pub(super) fn suspect_all(&self, why: &str) {
        // At least 1: 0 means "none".
        let now = self.nanos(Instant::now()).max(1);
        let before = self.suspect_before.fetch_max(now, Ordering::AcqRel);
        if before < now {
            tracing::warn!("{why}: replacing the store's connections to the database");
        }
    }

    /// Notes that a call was abandoned by its caller before it ended: the connection it held
    /// comes back to the pool in an unknown state, maybe silent.
    pub(super) fn note_abandoned(&self) {
        let now = self.nanos(Instant::now()).max(1);
        self.abandoned_at.fetch_max(now, Ordering::AcqRel);
    }

    /// Whether a call was abandoned in the last [`ABANDONED_RECENTLY`].
    pub(super) fn abandoned_recently(&self) -> bool {
        let mark = self.abandoned_at.load(Ordering::Acquire);
        mark != 0
            && self.nanos(Instant::now()).saturating_sub(mark)
                <= u64::try_from(ABANDONED_RECENTLY.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a connection of this age is suspect (opened before the last timeout).
    pub(super) fn is_suspect(&self, age: Duration) -> bool {
        let mark = self.suspect_before.load(Ordering::Acquire);
        if mark == 0 {
            return false;
        }
        let opened = Instant::now().checked_sub(age).unwrap_or(self.base);
        self.nanos(opened) < mark
    }
}

/// The pool options for PostgreSQL: bounded acquire, a bounded ping of idle connections before
/// use, suspect connections closed instead of used or taken back, lifetime limits.
pub(super) fn postgres_pool_options(liveness: &Arc<Liveness>, max: u32) -> AnyPoolOptions {
    let on_acquire = liveness.clone();
    let on_release = liveness.clone();
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
        .idle_timeout(IDLE_TIMEOUT)
        // Replaced by the bounded ping below: sqlx's own waits as long as the acquire timeout.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let liveness = on_acquire.clone();
            Box::pin(async move {
                if liveness.is_suspect(meta.age) {
                    // Closed (politely: it may be fine) and replaced.
                    return Ok(false);
                }
                match tokio::time::timeout(PING_TIMEOUT, conn.ping()).await {
                    Ok(result) => result.map(|()| true),
                    Err(_) => {
                        liveness.suspect_all("an idle connection did not answer a ping");
                        Err(timed_out("ping of an idle connection", PING_TIMEOUT))
                    }
                }
            })
        })
        .after_release(move |conn, meta| {
            let liveness = on_release.clone();
            Box::pin(async move {
                if liveness.is_suspect(meta.age) {
                    // An error makes sqlx drop the connection without its (unbounded) ping.
                    return Err(timed_out(
                        "connection opened before a timeout",
                        CALL_TIMEOUT,
                    ));
                }
                // sqlx pings a connection coming back, without a time limit. The connection of
                // a call its caller abandoned may be silent: that ping would hold its pool slot
                // until the kernel gives up on the socket (minutes; never if the peer's kernel
                // still answers). Ping first, bounded, while calls are being abandoned (not
                // always: it costs a round trip).
                if !liveness.abandoned_recently() {
                    return Ok(true);
                }
                match tokio::time::timeout(PING_TIMEOUT, conn.ping()).await {
                    Ok(result) => result.map(|()| true),
                    Err(_) => {
                        liveness.suspect_all("a connection given back did not answer a ping");
                        Err(timed_out("ping of a returned connection", PING_TIMEOUT))
                    }
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_settings_are_added_unless_named() {
        let url = with_server_settings("postgres://u@h/db");
        assert!(url.starts_with("postgres://u@h/db?options[statement_timeout]=10s&"));
        for (name, value) in SERVER_SETTINGS {
            assert!(url.contains(&format!("options[{name}]={value}")), "{url}");
        }
        let url = with_server_settings(
            "postgres://u@h/db?sslmode=disable&options[statement_timeout]=1min",
        );
        assert_eq!(url.matches("statement_timeout").count(), 1, "{url}");
        assert!(url.contains("statement_timeout]=1min"), "{url}");
        assert!(url.contains("&options[idle_in_transaction_session_timeout]=2s"));
    }

    #[test]
    fn connections_opened_before_a_timeout_are_suspect() {
        let liveness = Liveness::new();
        assert!(!liveness.is_suspect(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(5));
        liveness.suspect_all("test");
        // Opened 1 s ago (before the mark) vs. opened just now, after it.
        assert!(liveness.is_suspect(Duration::from_secs(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!liveness.is_suspect(Duration::from_millis(1)));
    }

    #[test]
    fn a_timeout_is_unavailable() {
        let err = crate::error::StoreError::from(timed_out("x", CALL_TIMEOUT));
        assert!(err.is_unavailable(), "{err:?}");
    }
}
