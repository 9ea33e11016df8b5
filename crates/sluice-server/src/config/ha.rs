//! `[ha]`: the leader's lease and how the replicas reach each other (see ARCHITECTURE.md,
//! "Several replicas").

use serde::{Deserialize, Serialize};

use super::duration;

/// `[ha]`: several replicas on one PostgreSQL database elect one leader, which alone runs the
/// scheduler loop (see ARCHITECTURE.md). Ignored on SQLite, whose database has one server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HaConfig {
    /// How long the leader's lease lasts without a renewal: a crashed leader is replaced after
    /// at most this long. Milliseconds or a duration text ("5s").
    #[serde(deserialize_with = "duration::ms")]
    pub lease_ttl_ms: u64,
    /// How often the leader renews its lease and a follower tries to take it; under a third
    /// of the TTL. Milliseconds or a duration text ("1s").
    #[serde(deserialize_with = "duration::ms")]
    pub renew_interval_ms: u64,
    /// This replica's name in the lease (on Kubernetes, the pod name); empty: the host name,
    /// the process id and a random suffix.
    pub identity: String,
    /// The URL the other replicas reach this one's API at (on Kubernetes,
    /// `http://$(POD_IP):7467`), kept in the lease while it leads: a follower asks the leader
    /// there why a queued job waits. Empty: `http(s)://LISTEN` when `listen` is a specific
    /// address, none when it is 0.0.0.0 or [::].
    pub advertise_url: String,
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            lease_ttl_ms: 5_000,
            renew_interval_ms: 1_000,
            identity: String::new(),
            advertise_url: String::new(),
        }
    }
}
