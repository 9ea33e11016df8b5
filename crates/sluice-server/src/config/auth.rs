//! `[auth]`: authentication (on by default), the bootstrap token file, the hosts the server
//! answers to, whether `/metrics` needs a token, and how long the audit log is kept.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file, in the data directory, where a fresh server writes its admin token.
pub const TOKEN_FILE: &str = "admin.token";

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a bearer token on every API call (default true). `false` is refused unless
    /// `listen` is a loopback address, and logged as a warning at every start.
    pub enabled: bool,
    /// Where the bootstrap admin token is written (mode 0600); relative paths are under
    /// `data_dir`. Default `admin.token`.
    pub token_file: PathBuf,
    /// Host names (without port) the server answers to besides loopback names and IP literals,
    /// e.g. `["sluice.example.com"]`. Requests with another `Host` are refused (DNS rebinding)
    /// when authentication is off, or when this list is not empty.
    pub allowed_hosts: Vec<String>,
    /// Serve `GET /metrics` without a token (default false: a token with `viewer` on `*`).
    pub metrics_public: bool,
    /// Days the audit log is kept (default 90; 0 keeps it forever).
    pub audit_retention_days: u64,
    /// `[auth.oidc]`: also accept JWT bearer tokens of an identity provider.
    pub oidc: Option<OidcConfig>,
}

/// `[auth.oidc]`: JWTs signed by an identity provider (Keycloak, Dex, a cloud IdP) whose keys
/// are in a JWKS file; a claim's values mapped to namespace roles.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (one of them).
    pub audience: String,
    /// The provider's JWKS (`{"keys": [...]}`), read at each JWT request, so that a rotated
    /// file takes effect at once.
    pub jwks_file: PathBuf,
    /// The claim whose values are mapped to roles (default `groups`): a string or a list.
    pub claim: String,
    /// The claim naming the caller in the audit log (default `sub`).
    pub subject_claim: String,
    /// Claim value -> bindings, e.g. `"team-a" = ["analytics=submitter"]`.
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            token_file: PathBuf::from(TOKEN_FILE),
            allowed_hosts: Vec::new(),
            metrics_public: false,
            audit_retention_days: 90,
            oidc: None,
        }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            audience: String::new(),
            jwks_file: PathBuf::new(),
            claim: "groups".into(),
            subject_claim: "sub".into(),
            roles: BTreeMap::new(),
        }
    }
}

impl AuthConfig {
    /// The token file's path: `token_file`, under `data_dir` when relative.
    pub fn token_path(&self, data_dir: &Path) -> PathBuf {
        if self.token_file.is_absolute() {
            self.token_file.clone()
        } else {
            data_dir.join(&self.token_file)
        }
    }

    /// Checks the settings against the listen address: (key, value, what is wrong).
    pub fn check(&self, listen: &str) -> Result<(), (String, String, String)> {
        if !self.enabled {
            let loopback = listen
                .parse::<SocketAddr>()
                .map(|a| a.ip().is_loopback())
                .unwrap_or(false);
            if !loopback {
                return Err((
                    "auth.enabled".into(),
                    "false".into(),
                    format!(
                        "authentication may be turned off only when the server listens on a \
                         loopback address, and listen = {listen:?}"
                    ),
                ));
            }
        }
        if self.token_file.as_os_str().is_empty() {
            return Err((
                "auth.token_file".into(),
                String::new(),
                "must name a file".into(),
            ));
        }
        if let Some(o) = &self.oidc {
            for (key, v) in [("issuer", &o.issuer), ("audience", &o.audience)] {
                if v.trim().is_empty() {
                    return Err((format!("auth.oidc.{key}"), v.clone(), "is required".into()));
                }
            }
            if o.jwks_file.as_os_str().is_empty() {
                return Err((
                    "auth.oidc.jwks_file".into(),
                    String::new(),
                    "is required (the identity provider's JWKS, {\"keys\": [...]})".into(),
                ));
            }
            for (value, bindings) in &o.roles {
                for b in bindings {
                    if let Err(e) = b.parse::<sluice_core::access::Binding>() {
                        return Err((format!("auth.oidc.roles.{value}"), b.clone(), e.to_string()));
                    }
                }
            }
        }
        for h in &self.allowed_hosts {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*');
            if !ok {
                return Err((
                    "auth.allowed_hosts".into(),
                    h.clone(),
                    "must be host names (letters, digits, '-', '.'; a leading '*.' for \
                     subdomains), without port"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
