//! `[auth]`: authentication (on by default), the bootstrap token file, the hosts the server
//! answers to, whether `/metrics` needs a token, and how long the audit log is kept.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

// The file, in the data directory, where a fresh server writes its admin token (the client
// looks for it there too).
pub use sluice_api::TOKEN_FILE;

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
/// are in a JWKS file or at a JWKS URL; a claim's values mapped to namespace roles.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (one of them).
    pub audience: String,
    /// The provider's JWKS (`{"keys": [...]}`), read at each JWT request, so that a rotated
    /// file takes effect at once. This or `jwks_url`.
    pub jwks_file: PathBuf,
    /// The provider's JWKS URL (its `jwks_uri`), fetched and cached: fetched again for a token
    /// whose key is not in the cache (at most once per `jwks_refresh_secs`) and when the cache
    /// is older than `jwks_max_age_secs`. `https://`, or `http://` to a loopback address.
    pub jwks_url: Option<String>,
    /// Least seconds between two fetches of `jwks_url` (default 60).
    pub jwks_refresh_secs: u64,
    /// Seconds a fetched JWKS is used before it is fetched again (default 3600).
    pub jwks_max_age_secs: u64,
    /// CA certificates (PEM) that `jwks_url`'s certificate is checked against instead of the
    /// system's (a provider with a private CA). Empty: the system's.
    pub jwks_ca_file: PathBuf,
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
            jwks_url: None,
            jwks_refresh_secs: 60,
            jwks_max_age_secs: 3600,
            jwks_ca_file: PathBuf::new(),
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
            match (o.jwks_file.as_os_str().is_empty(), &o.jwks_url) {
                (true, None) => {
                    return Err((
                        "auth.oidc.jwks_file".into(),
                        String::new(),
                        "is required, or auth.oidc.jwks_url (the identity provider's JWKS, \
                         {\"keys\": [...]})"
                            .into(),
                    ));
                }
                (false, Some(u)) => {
                    return Err((
                        "auth.oidc.jwks_url".into(),
                        u.clone(),
                        "give either auth.oidc.jwks_file or auth.oidc.jwks_url, not both".into(),
                    ));
                }
                (true, Some(u)) => check_jwks_url(u)
                    .map_err(|m| ("auth.oidc.jwks_url".to_string(), u.clone(), m))?,
                (false, None) => {}
            }
            if o.jwks_refresh_secs == 0 {
                return Err((
                    "auth.oidc.jwks_refresh_secs".into(),
                    "0".into(),
                    "must be at least 1 (a token with an unknown key would fetch the JWKS each \
                     time)"
                        .into(),
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

/// `https://HOST...`, or `http://` to a loopback address (keys fetched in clear elsewhere could be
/// replaced on the way).
fn check_jwks_url(u: &str) -> Result<(), String> {
    if let Some(rest) = u.strip_prefix("https://") {
        return if rest.is_empty() || rest.starts_with('/') {
            Err("has no host".into())
        } else {
            Ok(())
        };
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return Err("must be an https:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(
            "must be https:// (http:// only to a loopback address: the keys decide who may \
             call)"
                .into(),
        )
    }
}
