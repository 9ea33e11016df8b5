//! Who may do what, in which namespace: the four roles and the bindings of a token (or of an
//! identity provider's claims) to namespaces. Pure: the server asks these questions of the
//! caller it authenticated.
//!
//! Roles are ordered, each allowing what the one below it does:
//!
//! | role | may |
//! | --- | --- |
//! | `viewer` | read jobs, logs, queues, history, schedules, dead letters, metrics of its namespaces |
//! | `submitter` | + submit and cancel jobs, create, change and delete schedules |
//! | `operator` | + requeue and purge (the dead-letter queue, queued jobs) |
//! | `admin` | everything in its namespaces; bound to `*`: also tokens, the audit log, config views |
//!
//! A binding names one namespace or `*` (every namespace, present and future). A caller's role
//! in a namespace is the highest of its bindings to that namespace and to `*`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The namespace of a binding that covers every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// A role, from least to most allowed (`Ord` follows that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessRole {
    /// Reads.
    Viewer,
    /// Reads, submits and cancels jobs, manages schedules.
    Submitter,
    /// Also requeues and purges.
    Operator,
    /// Everything; on `*`, also tokens and the audit log.
    Admin,
}

impl AccessRole {
    /// Every role, least allowed first.
    pub const ALL: [AccessRole; 4] = [
        AccessRole::Viewer,
        AccessRole::Submitter,
        AccessRole::Operator,
        AccessRole::Admin,
    ];

    /// The lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessRole::Viewer => "viewer",
            AccessRole::Submitter => "submitter",
            AccessRole::Operator => "operator",
            AccessRole::Admin => "admin",
        }
    }
}

impl fmt::Display for AccessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of role and binding text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Not one of the role names.
    #[error("role {0:?} is not one of viewer, submitter, operator, admin")]
    BadRole(String),
    /// A binding's namespace is neither `*` nor a valid namespace name.
    #[error(
        "namespace {0:?} of a binding must be `*` or 1-63 lowercase letters, digits, '-' or '.', \
         starting and ending with a letter or digit"
    )]
    BadNamespace(String),
    /// A binding is not `NAMESPACE=ROLE`.
    #[error("binding {0:?} is not NAMESPACE=ROLE (for example analytics=submitter or *=viewer)")]
    BadBinding(String),
}

impl FromStr for AccessRole {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccessRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AccessError::BadRole(s.to_string()))
    }
}

/// A role in one namespace, or in every namespace (`*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Binding {
    /// A namespace, or `*`.
    pub namespace: String,
    /// The role there.
    pub role: AccessRole,
}

impl Binding {
    /// A binding, its namespace checked (`*` or a namespace name).
    pub fn new(namespace: &str, role: AccessRole) -> Result<Binding, AccessError> {
        if namespace != ALL_NAMESPACES && !valid_namespace(namespace) {
            return Err(AccessError::BadNamespace(namespace.to_string()));
        }
        Ok(Binding {
            namespace: namespace.to_string(),
            role,
        })
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.namespace, self.role)
    }
}

impl FromStr for Binding {
    type Err = AccessError;

    /// `NAMESPACE=ROLE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ns, role) = s
            .split_once('=')
            .ok_or_else(|| AccessError::BadBinding(s.to_string()))?;
        Binding::new(ns.trim(), role.trim().parse()?)
    }
}

/// Namespace names as jobs have them (Kubernetes' DNS label rules, at most 63 bytes).
pub fn valid_namespace(ns: &str) -> bool {
    let ok_chars = ns
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ok_ends = ns
        .bytes()
        .next()
        .zip(ns.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    !ns.is_empty() && ns.len() <= 63 && ok_chars && ok_ends
}

/// Which namespaces a caller may see or act in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace.
    All,
    /// Only these (possibly none).
    Only(BTreeSet<String>),
}

impl Scope {
    /// Whether `namespace` is in the scope.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(set) => set.contains(namespace),
        }
    }
}

/// The bindings of one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    bindings: Vec<Binding>,
}

impl Grants {
    /// Grants from bindings (duplicates are harmless).
    pub fn new(bindings: Vec<Binding>) -> Grants {
        Grants { bindings }
    }

    /// Every namespace as admin (authentication turned off, on loopback only).
    pub fn everything() -> Grants {
        Grants::new(vec![Binding {
            namespace: ALL_NAMESPACES.into(),
            role: AccessRole::Admin,
        }])
    }

    /// The bindings.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The caller's role in `namespace`: the highest of its bindings to it and to `*`.
    pub fn role_in(&self, namespace: &str) -> Option<AccessRole> {
        self.bindings
            .iter()
            .filter(|b| b.namespace == ALL_NAMESPACES || b.namespace == namespace)
            .map(|b| b.role)
            .max()
    }

    /// Whether the caller has at least `role` in `namespace`.
    pub fn allows(&self, namespace: &str, role: AccessRole) -> bool {
        self.role_in(namespace).is_some_and(|r| r >= role)
    }

    /// The caller's role on `*` (every namespace), if any.
    pub fn global_role(&self) -> Option<AccessRole> {
        self.bindings
            .iter()
            .filter(|b| b.namespace == ALL_NAMESPACES)
            .map(|b| b.role)
            .max()
    }

    /// Whether the caller has at least `role` on `*`.
    pub fn allows_everywhere(&self, role: AccessRole) -> bool {
        self.global_role().is_some_and(|r| r >= role)
    }

    /// Admin on `*`: tokens, the audit log, config views.
    pub fn is_admin(&self) -> bool {
        self.allows_everywhere(AccessRole::Admin)
    }

    /// The highest role the caller has anywhere.
    pub fn highest(&self) -> Option<AccessRole> {
        self.bindings.iter().map(|b| b.role).max()
    }

    /// The namespaces where the caller has at least `role`.
    pub fn scope(&self, role: AccessRole) -> Scope {
        if self.allows_everywhere(role) {
            return Scope::All;
        }
        Scope::Only(
            self.bindings
                .iter()
                .filter(|b| b.namespace != ALL_NAMESPACES && b.role >= role)
                .map(|b| b.namespace.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
