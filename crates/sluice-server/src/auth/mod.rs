//! Authentication and authorisation: who is calling ([`Caller`], made by the router's guard in
//! [`middleware`] from a bearer token), what each route needs ([`routes::ROUTES`]), the tokens
//! themselves ([`token`]) and the audit log ([`audit`]).
//!
//! The guard authenticates and checks the route's rule; handlers check the namespace of what
//! they touch with [`Caller::require`] (403: the caller named a namespace it may not act in) or
//! [`Caller::visible`] (404: the object is in a namespace the caller cannot see, as if it did
//! not exist), and narrow lists with [`Caller::namespace_in`].

pub mod jwt;
pub mod middleware;
pub mod routes;
pub mod token;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sluice_core::access::{AccessRole, Grants, Scope};
use sluice_store::AuditEntry;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The actor of requests served with authentication off.
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling: made by the guard, taken by handlers as an extractor.
#[derive(Debug, Clone)]
pub struct Caller {
    /// A token id, or [`ANONYMOUS`] (authentication off).
    pub actor: String,
    /// The token's subject.
    pub subject: String,
    /// Its roles, by namespace.
    pub grants: Grants,
    /// The peer address of the request, if known.
    pub peer: Option<String>,
}

impl Caller {
    /// The caller of every request when authentication is off: admin everywhere.
    pub fn anonymous(peer: Option<String>) -> Caller {
        Caller {
            actor: ANONYMOUS.into(),
            subject: ANONYMOUS.into(),
            grants: Grants::everything(),
            peer,
        }
    }

    /// At least `role` in `namespace`, else 403 naming the token, the role and the namespace.
    pub fn require(&self, namespace: &str, role: AccessRole) -> Result<(), ApiError> {
        if self.grants.allows(namespace, role) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "token {} ({}) needs role {role} in namespace {namespace:?}{}",
            self.actor,
            self.subject,
            match self.grants.role_in(namespace) {
                Some(r) => format!(" and has {r}"),
                None => " and has no role there".into(),
            }
        )))
    }

    /// Whether the caller may see `namespace` (any role there); when not, `missing` is the
    /// error to answer, the same as for an object that does not exist.
    pub fn visible(
        &self,
        namespace: &str,
        missing: impl FnOnce() -> ApiError,
    ) -> Result<(), ApiError> {
        if self.grants.role_in(namespace).is_some() {
            Ok(())
        } else {
            Err(missing())
        }
    }

    /// The namespaces where the caller has at least `role`, for a store filter: `None` for
    /// every namespace.
    pub fn namespace_in(&self, role: AccessRole) -> Option<Vec<String>> {
        match self.grants.scope(role) {
            Scope::All => None,
            Scope::Only(set) => Some(set.into_iter().collect()),
        }
    }

    /// Whether the caller has at least `role` in `namespace` (for filtering lists).
    pub fn sees(&self, namespace: &str) -> bool {
        self.grants.role_in(namespace).is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The guard puts it there; a handler reached without the guard serves nobody.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Unauthorized("this route is not guarded: refusing to serve it".into())
        })
    }
}

/// One audit entry: who (`caller`), what (`action`), where (`namespace`), on what (`target`),
/// and more for people (`detail`). A failure to record it is logged, not returned: the action
/// has happened.
pub async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    namespace: Option<&str>,
    target: Option<&str>,
    detail: Option<String>,
) {
    let entry = audit_entry(state, caller, action, namespace, target, detail);
    let (actor, action) = (entry.actor.clone(), entry.action.clone());
    if let Err(e) = state.audits.record(entry).await {
        tracing::error!(
            actor = %actor,
            action = %action,
            "recording the audit entry failed: {e}"
        );
    }
}

/// The entry [`audit`] appends, for a write that carries its own entry (a submit's goes in
/// the transaction of its job, see [`crate::submitq::SubmitQueue::insert`]).
pub fn audit_entry(
    state: &AppState,
    caller: &Caller,
    action: &str,
    namespace: Option<&str>,
    target: Option<&str>,
    detail: Option<String>,
) -> AuditEntry {
    AuditEntry {
        id: state.new_id(),
        at_ms: state.now_ms(),
        actor: caller.actor.clone(),
        subject: caller.subject.clone(),
        action: action.to_string(),
        namespace: namespace.map(String::from),
        target: target.map(String::from),
        detail,
        peer: caller.peer.clone(),
    }
}

/// Command jobs run an argv on the sluice host: `[security.command_jobs]` names the namespaces
/// (and programs) where they are allowed at all, and the caller needs the role that submits
/// there (`submitter`).
impl crate::guard::command::CommandGrant for Caller {
    fn may_run_commands(&self, namespace: &str) -> bool {
        self.grants.allows(namespace, AccessRole::Submitter)
    }
}
