//! `[security]`, `[limits]` and `[tls]`: who may run command jobs, the transport limits of the
//! HTTP server, and its certificate (see `docs/security.md`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// `[security]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `[security.command_jobs]`: absent (the default) refuses every command job.
    pub command_jobs: Option<CommandJobsConfig>,
    /// `[security.secrets]`: which secrets of the server a job's `secretEnv` may name.
    pub secrets: SecretsConfig,
}

/// `[security.secrets]`: a job's `secretEnv` may read a file or an environment variable of the
/// sluice server only where this allows (by default nowhere); a Kubernetes Secret needs nothing
/// here (the cluster's RBAC decides).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Absolute directories whose files (at any depth) `{file: ...}` may name.
    pub files: Vec<String>,
    /// Environment variables of the server `{env: ...}` may name; a name ending in `*` is a
    /// prefix (`SLUICE_JOB_*`).
    pub env: Vec<String>,
}

/// `[security.command_jobs]`: command jobs (an argv run on the sluice host by the local
/// backend, as the server's user) are allowed only in these namespaces, only for these programs
/// and only in these absolute working directories.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CommandJobsConfig {
    /// Namespaces whose jobs may be commands; `"*"` for every namespace. Required, non-empty.
    pub namespaces: Vec<String>,
    /// When set, `argv[0]` must be one of these exactly (a bare name like `python3`, looked up
    /// in the server's `PATH`, or an absolute path); a job may then not set `PATH`. When
    /// absent, any program.
    pub executables: Option<Vec<String>>,
    /// Absolute directories (and their subdirectories) a job's `command.workingDir` may name.
    /// A relative `workingDir` is always inside the run directory.
    pub working_dirs: Vec<String>,
}

impl SecurityConfig {
    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for d in &self.secrets.files {
            if !d.starts_with('/')
                || d.trim_end_matches('/').is_empty()
                || d.split('/').any(|p| p == "..")
            {
                return Err(invalid(
                    "security.secrets.files",
                    d,
                    "must be an absolute directory other than / and without `..`",
                ));
            }
        }
        let Some(c) = &self.command_jobs else {
            return Ok(());
        };
        if c.namespaces.is_empty() {
            return Err(invalid(
                "security.command_jobs.namespaces",
                "[]",
                "needs at least one namespace (or \"*\" for all); remove [security.command_jobs] to refuse command jobs",
            ));
        }
        for ns in &c.namespaces {
            if ns.is_empty() || ns.contains(char::is_whitespace) {
                return Err(invalid(
                    "security.command_jobs.namespaces",
                    ns,
                    "is not a namespace name",
                ));
            }
        }
        for e in c.executables.iter().flatten() {
            let bare = !e.contains('/');
            if e.is_empty() || !(bare || e.starts_with('/')) || e.split('/').any(|p| p == "..") {
                return Err(invalid(
                    "security.command_jobs.executables",
                    e,
                    "must be a bare program name (python3) or an absolute path without `..`",
                ));
            }
        }
        for d in &c.working_dirs {
            if !d.starts_with('/')
                || d.trim_end_matches('/').is_empty()
                || d.split('/').any(|p| p == "..")
            {
                return Err(invalid(
                    "security.command_jobs.working_dirs",
                    d,
                    "must be an absolute directory other than / and without `..`",
                ));
            }
        }
        Ok(())
    }
}

/// `[limits]`: what one client or connection may take from the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (and that an idle keep-alive
    /// connection is kept).
    pub header_timeout_secs: u64,
    /// Seconds a whole request (body read and answer) may take.
    pub request_timeout_secs: u64,
    /// Requests per second each client (its token when authenticated, else its peer address)
    /// may make, on average; 0 turns the rate limit off.
    pub rate_per_sec: u32,
    /// Requests a client may make in a burst above the rate.
    pub rate_burst: u32,
    /// Open-file soft limit the server raises itself to at start (up to the hard limit).
    pub open_files: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 512,
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            rate_per_sec: 50,
            rate_burst: 200,
            open_files: 65536,
        }
    }
}

impl LimitsConfig {
    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("limits.max_connections", self.max_connections as u64),
            ("limits.header_timeout_secs", self.header_timeout_secs),
            ("limits.request_timeout_secs", self.request_timeout_secs),
        ] {
            if v == 0 {
                return Err(invalid(key, 0, "must be greater than zero"));
            }
        }
        if self.rate_per_sec > 0 && self.rate_burst == 0 {
            return Err(invalid(
                "limits.rate_burst",
                0,
                "must be at least 1 when limits.rate_per_sec is set",
            ));
        }
        Ok(())
    }
}

/// `[tls]`: serve HTTPS with this certificate and key, both PEM files; reloaded when either
/// changes. Without them the server serves plain HTTP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain (PEM): the server's certificate first, then intermediates.
    pub cert_file: Option<PathBuf>,
    /// The private key of the certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// The certificate and key files when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        }
    }

    /// Checks that both files are named, or neither.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let empty = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str().is_empty());
        for (key, p) in [
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            if empty(p) {
                return Err(invalid(key, "", "must name a PEM file"));
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(invalid(
                "tls.key_file",
                "",
                "is required with tls.cert_file (the certificate's private key, PEM)",
            )),
            (None, Some(_)) => Err(invalid(
                "tls.cert_file",
                "",
                "is required with tls.key_file (the certificate chain, PEM)",
            )),
            _ => Ok(()),
        }
    }
}
