//! Who runs the scheduler loop: leader election among replicas sharing one PostgreSQL
//! database, with fencing.
//!
//! One lease row ([`LEASE_NAME`]) in the store names the leader, expires on the database's
//! clock after `ha.lease_ttl_ms` unless renewed, and carries an **epoch** that grows at every
//! acquisition ([`sluice_store::Lease`]). The elector ([`run_elector`]) renews it every
//! `ha.renew_interval_ms` while this replica leads and tries to take it as often while it
//! follows. Three guards keep a leader that lost its lease (a pause, a partition) from acting:
//! - **fenced writes**: the loop writes through [`sluice_store::Store::fenced`], so every write
//!   checks the holder and epoch in its own transaction and fails after a takeover;
//! - **a local deadline**: [`Leadership::holds`] turns false when the monotonic clock passes
//!   the last successful renewal's start plus the TTL (less a margin), before the database's
//!   expiry, whether or not the elector has run since; the submit step checks it before every
//!   backend call, and the tick at its start;
//! - **idempotent submits**: a run is named by (job id, attempt), so the rare submit that
//!   slips between the check and the call finds the new leader's run (or makes the one the new
//!   leader finds).
//!
//! With SQLite ([`Leadership::single`]) there is one server per database file (the file lock
//! in [`crate::instance`]) and it always leads.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_store::{Lease, Store};
use tokio::sync::watch;

/// The lease the scheduler loop runs under.
pub const LEASE_NAME: &str = "scheduler";

/// What this replica is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Serves the API; another replica (or none yet) runs the loop.
    Follower,
    /// Runs the loop; under this lease (none: the only server, SQLite).
    Leader(Option<Lease>),
}

#[derive(Debug)]
struct Term {
    lease: Lease,
    /// The monotonic time after which this replica must act as if it had lost the lease.
    valid_until: Instant,
}

/// This replica's part in the election. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Leadership {
    /// False: the only server (SQLite), always the leader.
    elected: bool,
    /// This replica's name in the lease.
    identity: String,
    /// The URL the other replicas reach this one at, if known.
    address: Option<String>,
    term: Mutex<Option<Term>>,
    role: watch::Sender<Role>,
}

impl Leadership {
    /// The only server of its database: always the leader, no lease.
    pub fn single() -> Self {
        Leadership {
            elected: false,
            identity: String::new(),
            address: None,
            term: Mutex::new(None),
            role: watch::channel(Role::Leader(None)).0,
        }
    }

    /// One of several replicas, reachable at `address` by the others: a follower until the
    /// elector takes the lease.
    pub fn elected(identity: String, address: Option<String>) -> Self {
        Leadership {
            elected: true,
            identity,
            address,
            term: Mutex::new(None),
            role: watch::channel(Role::Follower).0,
        }
    }

    /// Whether this replica takes part in an election (PostgreSQL).
    pub fn is_elected(&self) -> bool {
        self.elected
    }

    /// This replica's name in the lease (empty for the only server).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The lease's holder for this replica: its identity, then its address after a space
    /// (identities and addresses have no spaces; see [`holder_address`]).
    pub fn holder(&self) -> String {
        match &self.address {
            Some(a) => format!("{} {a}", self.identity),
            None => self.identity.clone(),
        }
    }

    fn term(&self) -> std::sync::MutexGuard<'_, Option<Term>> {
        match self.term.lock() {
            Ok(g) => g,
            // Every change replaces the term whole; a panic elsewhere cannot leave it half set.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether this replica may act as the leader now: always for the only server; else while
    /// it holds a lease whose local deadline has not passed.
    pub fn holds(&self) -> bool {
        if !self.elected {
            return true;
        }
        self.term()
            .as_ref()
            .is_some_and(|t| Instant::now() < t.valid_until)
    }

    /// The local deadline of the current term, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.term().as_ref().map(|t| t.valid_until)
    }

    /// The lease held now, if any (for the only server: none).
    pub fn lease(&self) -> Option<Lease> {
        self.term().as_ref().map(|t| t.lease.clone())
    }

    /// Follows this replica's role.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// This replica's role now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Records a lease just acquired (a new term) or renewed, valid locally until
    /// `valid_until`. True when it began a new term.
    pub fn hold(&self, lease: Lease, valid_until: Instant) -> bool {
        let mut term = self.term();
        let new_term = term.as_ref().is_none_or(|t| t.lease.epoch != lease.epoch);
        *term = Some(Term {
            lease: lease.clone(),
            valid_until,
        });
        drop(term);
        if new_term {
            self.role.send_replace(Role::Leader(Some(lease)));
        }
        new_term
    }

    /// Gives up the current term (lost, released, or fenced). True if there was one.
    pub fn step_down(&self) -> bool {
        let had = self.term().take().is_some();
        if had {
            self.role.send_replace(Role::Follower);
        }
        had
    }
}

/// The address a lease's holder is reachable at, if it gave one (see [`Leadership::holder`]).
pub fn holder_address(holder: &str) -> Option<&str> {
    holder
        .split_once(' ')
        .map(|(_, a)| a)
        .filter(|a| !a.is_empty())
}

/// This replica's default name: `HOSTNAME` (a pod's name on Kubernetes) or the kernel's host
/// name, the process id, and a random suffix (a restarted process is a new holder).
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "sluice".into());
    let suffix = ulid::Ulid::generate().to_string().to_ascii_lowercase();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &suffix[suffix.len().saturating_sub(6)..]
    )
}

/// The local deadline of a lease renewed by a call that started at `started`: the TTL less a
/// tenth (clocks may run at slightly different rates).
fn deadline(started: Instant, ttl: Duration) -> Instant {
    started + ttl.saturating_sub(ttl / 10)
}

/// What one round of the elector did, for the caller's logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Took the lease: a new term with this epoch.
    Acquired(i64),
    /// Renewed the lease.
    Renewed,
    /// Another replica holds the lease, which expires in this long (by the database's clock)
    /// unless renewed: the next try is best made then.
    Follows(Option<Duration>),
    /// Lost the lease (taken over, or not renewed before its deadline).
    Lost(String),
    /// The store failed; the current state stands.
    Failed(String),
}

/// One round: renew the lease if this replica holds one, else try to take it. A renewal may
/// take until the term's local deadline, an acquisition half the TTL: a silent database
/// cannot hold a leader past its deadline.
pub async fn round(leader: &Leadership, store: &dyn Store, ttl: Duration) -> Round {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let bound = ttl / 2;
    let started = Instant::now();
    match leader.lease() {
        Some(lease) => {
            // Keep trying until the local deadline: a slow store must not cost the lease early.
            let left = leader
                .deadline()
                .map_or(bound, |d| d.saturating_duration_since(started).max(bound));
            let renewed = tokio::time::timeout(left, store.renew_lease(&lease, ttl_ms)).await;
            match renewed {
                Ok(Ok(Some(l))) => {
                    leader.hold(l, deadline(started, ttl));
                    Round::Renewed
                }
                Ok(Ok(None)) => {
                    leader.step_down();
                    Round::Lost(format!(
                        "the lease (epoch {}) was taken over by another replica",
                        lease.epoch
                    ))
                }
                Ok(Err(e)) if !leader.holds() => {
                    leader.step_down();
                    Round::Lost(format!("could not renew the lease in time: {e}"))
                }
                Err(_) if !leader.holds() => {
                    leader.step_down();
                    Round::Lost(
                        "could not renew the lease in time: the store did not answer".into(),
                    )
                }
                Ok(Err(e)) => Round::Failed(format!("renewing the lease: {e}")),
                Err(_) => Round::Failed("renewing the lease: the store did not answer".into()),
            }
        }
        None => {
            let acquired = tokio::time::timeout(
                bound,
                store.acquire_lease(LEASE_NAME, &leader.holder(), ttl_ms),
            )
            .await;
            match acquired {
                Ok(Ok(Some(l))) => {
                    let epoch = l.epoch;
                    leader.hold(l, deadline(started, ttl));
                    Round::Acquired(epoch)
                }
                Ok(Ok(None)) => {
                    let left = match store.get_lease(LEASE_NAME).await {
                        Ok(Some(l)) => Some(Duration::from_millis(
                            u64::try_from(l.expires_at_ms.saturating_sub(l.db_now_ms)).unwrap_or(0),
                        )),
                        _ => None,
                    };
                    Round::Follows(left)
                }
                Ok(Err(e)) => Round::Failed(format!("taking the lease: {e}")),
                Err(_) => Round::Failed("taking the lease: the store did not answer".into()),
            }
        }
    }
}

/// Releases the lease if this replica holds one (a graceful stop), so another replica takes
/// over at once instead of after the TTL.
pub async fn release(leader: &Leadership, store: &dyn Store) {
    let Some(lease) = leader.lease() else {
        return;
    };
    leader.step_down();
    match tokio::time::timeout(Duration::from_secs(2), store.release_lease(&lease)).await {
        Ok(Ok(())) => tracing::info!(epoch = lease.epoch, "released the leader's lease"),
        Ok(Err(e)) => tracing::warn!("releasing the leader's lease: {e}"),
        Err(_) => tracing::warn!("releasing the leader's lease: the store did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(epoch: i64) -> Lease {
        Lease {
            name: LEASE_NAME.into(),
            holder: "me".into(),
            epoch,
            expires_at_ms: 10_000,
            acquired_at_ms: 0,
            db_now_ms: 0,
        }
    }

    #[test]
    fn the_only_server_always_leads() {
        let l = Leadership::single();
        assert!(l.holds());
        assert!(!l.is_elected());
        assert_eq!(l.role(), Role::Leader(None));
        assert!(!l.step_down());
        assert!(l.holds());
    }

    #[test]
    fn an_elected_replica_leads_only_within_its_deadline() {
        let l = Leadership::elected("me".into(), Some("http://10.0.0.5:7467".into()));
        assert_eq!(l.holder(), "me http://10.0.0.5:7467");
        assert_eq!(holder_address(&l.holder()), Some("http://10.0.0.5:7467"));
        assert_eq!(holder_address("me"), None);
        assert!(!l.holds());
        assert_eq!(l.role(), Role::Follower);
        let mut rx = l.subscribe();
        assert!(l.hold(lease(1), Instant::now() + Duration::from_secs(60)));
        assert!(l.holds());
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), Role::Leader(Some(lease(1))));
        // A renewal is not a new term.
        assert!(!l.hold(lease(1), Instant::now() + Duration::from_secs(60)));
        assert!(!rx.has_changed().unwrap());
        // Past the local deadline it no longer holds, before any step-down.
        l.hold(lease(1), Instant::now());
        assert!(!l.holds());
        assert!(l.step_down());
        assert_eq!(l.role(), Role::Follower);
        assert_eq!(l.lease(), None);
    }

    #[test]
    fn identities_differ_between_processes_and_starts() {
        let (a, b) = (default_identity(), default_identity());
        assert_ne!(a, b);
        assert!(a.contains(&std::process::id().to_string()), "{a}");
    }
}
