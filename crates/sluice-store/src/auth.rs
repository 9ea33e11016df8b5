//! The types of the store's authentication and audit methods: API tokens (only a hash of each
//! secret is kept) and audit log entries.

use sluice_core::access::Binding;

/// An API token to insert ([`crate::Store::create_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Its id (shown in lists, used to revoke it; not secret).
    pub id: String,
    /// Who or what it is for (a person, a team, "prometheus").
    pub subject: String,
    /// The lowercase hex SHA-256 of the token string; never the secret itself.
    pub secret_hash: String,
    /// The namespaces it may act in, with its role there.
    pub bindings: Vec<Binding>,
    /// When it was made.
    pub created_at_ms: i64,
    /// The id of the token that made it (none for the bootstrap token).
    pub created_by: Option<String>,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
}

/// A stored API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id.
    pub id: String,
    /// Who or what it is for.
    pub subject: String,
    /// The lowercase hex SHA-256 of the token string.
    pub secret_hash: String,
    /// The namespaces it may act in, with its role there.
    pub bindings: Vec<Binding>,
    /// When it was made.
    pub created_at_ms: i64,
    /// The id of the token that made it.
    pub created_by: Option<String>,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

impl TokenRecord {
    /// Neither revoked nor expired at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|e| now_ms < e)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id (a ULID: ordered by time).
    pub id: String,
    /// When.
    pub at_ms: i64,
    /// Who: a token id, `oidc:ISSUER#SUBJECT`, or `anonymous` (authentication off).
    pub actor: String,
    /// The actor's subject (a token's subject, a JWT's `sub`).
    pub subject: String,
    /// What: `job.submit`, `job.cancel`, `dlq.requeue`, `dlq.purge`, `queue.purge`,
    /// `schedule.create`, `schedule.delete`, `schedule.suspend`, `schedule.resume`,
    /// `schedule.trigger`, `token.create`, `token.revoke`.
    pub action: String,
    /// The namespace acted in, if one.
    pub namespace: Option<String>,
    /// The job id, schedule name or token id acted on.
    pub target: Option<String>,
    /// More about it, for people (a filter, how many jobs).
    pub detail: Option<String>,
    /// From where: the peer address of the request.
    pub peer: Option<String>,
}

/// Which entries [`crate::Store::audit_log`] returns. Every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries at or after this time.
    pub since_ms: Option<i64>,
    /// Only entries before this time (exclusive).
    pub until_ms: Option<i64>,
}
