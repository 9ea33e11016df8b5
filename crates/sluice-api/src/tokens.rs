//! The caller, API tokens and the audit log (`/v1/whoami`, `/v1/tokens`, `/v1/audit`).

use serde::{Deserialize, Serialize};

/// The caller as the server sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// The token id (`anonymous` with authentication off).
    pub actor: String,
    /// The token's subject.
    pub subject: String,
    /// Its roles: `NAMESPACE=ROLE`, `*` for every namespace.
    pub bindings: Vec<String>,
    /// Admin on `*` (tokens, the audit log).
    pub admin: bool,
    /// Whether the server checks tokens (false: authentication off, loopback only).
    pub auth_enabled: bool,
}

/// A token as listed: never its secret, nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// Who or what it is for.
    pub subject: String,
    /// `NAMESPACE=ROLE`, `*` for every namespace.
    pub bindings: Vec<String>,
    /// Made at (RFC 3339).
    pub created_at: String,
    /// The token that made it.
    pub created_by: Option<String>,
    /// Stops working at (RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// Revoked at (RFC 3339), if it was.
    pub revoked_at: Option<String>,
    /// Neither revoked nor expired now.
    pub active: bool,
}

/// A new token: its secret is shown here only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewTokenView {
    /// The token to send as `Authorization: Bearer TOKEN`. Not stored: keep it now.
    pub token: String,
    /// What is stored of it.
    pub info: TokenView,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AuditView {
    /// Its id.
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who: a token id, or `anonymous`.
    pub actor: String,
    /// The actor's subject.
    pub subject: String,
    /// What.
    pub action: String,
    /// The namespace acted in.
    pub namespace: Option<String>,
    /// The job, schedule or token acted on.
    pub target: Option<String>,
    /// More, for people.
    pub detail: Option<String>,
    /// From where (the peer address).
    pub peer: Option<String>,
}
