//! `sluice token ...`, `sluice audit`, `sluice whoami`, where the client finds its token, and
//! its HTTP client (HTTPS with the system's CAs, or only those of `--ca-file`).
//!
//! The token, first found wins:
//! 1. `--token TOKEN`, or the `SLUICE_TOKEN` environment variable;
//! 2. `--token-file PATH`, or `SLUICE_TOKEN_FILE`;
//! 3. `admin.token` in `SLUICE_DATA_DIR` (the server's data directory, when set for both);
//! 4. `.sluice/admin.token` (the token a server started in this directory with the default
//!    data directory wrote on its first start).
//!
//! Without any, requests go without a token (a server with authentication on answers 401).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sluice_api::tokens::{AuditView, NewTokenView, TokenView, WhoAmI};

use crate::Client;
use crate::output::{Output, Table, print_as};

/// The server's default data directory (relative to where it was started).
const DEFAULT_DATA_DIR: &str = ".sluice";

/// Refuses a file that holds a secret when its group or others may read or write it.
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {} is open to others (mode {mode:03o}); it holds a token: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let t = text.lines().next().unwrap_or_default().trim().to_string();
    if t.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(t)
}

/// The CLI's HTTP client: the token in every request's `Authorization`, and for `https://`
/// servers the CAs of `ca_file` (PEM, one or more) as the only trusted roots, or the system's
/// when it is `None`.
pub fn http_client(token: Option<&str>, ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .context("the token has characters that cannot be sent in a header")?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    let mut b = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .default_headers(headers);
    if let Some(f) = ca_file {
        let pem =
            std::fs::read(f).with_context(|| format!("reading the CA file {}", f.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("the CA file {} is not PEM", f.display()))?;
        if certs.is_empty() {
            bail!(
                "the CA file {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                f.display()
            );
        }
        b = b.tls_certs_only(certs);
    }
    b.build().context("building the HTTP client")
}

/// The error of a request that got no answer, with what to do when the cause is the server's
/// certificate.
pub fn unreachable(base: &str, e: reqwest::Error) -> anyhow::Error {
    if let Some(why) = certificate_error(&e) {
        return anyhow::anyhow!(
            "cannot reach the sluice server at {base}: its TLS certificate is not trusted \
             ({why}); give the CA that signed it with --ca-file PATH (or SLUICE_CA_FILE)"
        );
    }
    anyhow::Error::new(e).context(format!("cannot reach the sluice server at {base}"))
}

/// rustls' reason, when a certificate check is why `e` happened.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(t @ rustls::Error::InvalidCertificate(_)) = tls {
            return Some(t.to_string());
        }
        // Some layers box the error away from a downcast; rustls' text names it.
        let text = err.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            return Some(text[at..].to_string());
        }
        next = err.source();
    }
    None
}

/// The client's token, by the order in this module's documentation.
pub fn find_token(
    flag: Option<&str>,
    file: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<Option<String>> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    if let Some(f) = file {
        if let Err(e) = check_private(f, "the token file") {
            eprintln!("sluice: warning: {e:#}");
        }
        return read_token_file(f).map(Some);
    }
    let candidates: Vec<PathBuf> = data_dir
        .map(|d| d.join(sluice_api::TOKEN_FILE))
        .into_iter()
        .chain([Path::new(DEFAULT_DATA_DIR).join(sluice_api::TOKEN_FILE)])
        .collect();
    for p in candidates {
        if p.is_file() {
            return read_token_file(&p).map(Some);
        }
    }
    Ok(None)
}

/// `sluice token ...` (admin on `*`).
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Makes a token and prints it once (keep it: the server stores only its hash).
    Create {
        /// Namespace the token acts in (`*` for every namespace); with --role.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Its role there: viewer, submitter, operator or admin.
        #[arg(short, long)]
        role: Option<String>,
        /// More bindings, NAMESPACE=ROLE (repeat for several namespaces).
        #[arg(long = "bind")]
        bindings: Vec<String>,
        /// Who or what it is for (default: the bindings).
        #[arg(long)]
        subject: Option<String>,
        /// How long it works, like 30d or 12h (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Lists tokens (never their secrets).
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Revokes a token: refused at once from then on.
    Revoke {
        /// Token id (`tok_...`, from `sluice token list`).
        id: String,
    },
}

pub async fn token(c: &Client, cmd: TokenCmd) -> Result<i32> {
    match cmd {
        TokenCmd::Create {
            namespace,
            role,
            mut bindings,
            subject,
            expires,
        } => {
            match (namespace, role) {
                (Some(ns), Some(r)) => bindings.insert(0, format!("{ns}={r}")),
                (None, None) => {}
                _ => bail!("--namespace and --role go together"),
            }
            if bindings.is_empty() {
                bail!("give --namespace NS --role ROLE (or --bind NS=ROLE)");
            }
            let body = serde_json::json!({
                "subject": subject.unwrap_or_else(|| bindings.join(",")),
                "bindings": bindings,
                "expires": expires,
            });
            let t: NewTokenView = c.post_json("/v1/tokens", &body).await?;
            eprintln!(
                "token {} for {:?} ({}){}; shown only now:",
                t.info.id,
                t.info.subject,
                t.info.bindings.join(", "),
                t.info
                    .expires_at
                    .as_deref()
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default()
            );
            println!("{}", t.token);
            Ok(0)
        }
        TokenCmd::List { output } => {
            let all: Vec<TokenView> = c.get("/v1/tokens", &[]).await?;
            if output == Output::Name {
                for t in &all {
                    println!("token/{}", t.id);
                }
                return Ok(0);
            }
            if !output.is_table() {
                print_as(&all, output)?;
                return Ok(0);
            }
            let mut table =
                Table::new(&["ID", "SUBJECT", "BINDINGS", "ACTIVE", "EXPIRES / REVOKED"]);
            for t in all {
                let until = t
                    .revoked_at
                    .map(|r| format!("revoked {r}"))
                    .or(t.expires_at)
                    .unwrap_or_else(|| "-".into());
                table.row(vec![
                    t.id,
                    t.subject,
                    t.bindings.join(","),
                    if t.active { "yes" } else { "no" }.to_string(),
                    until,
                ]);
            }
            table.print();
            Ok(0)
        }
        TokenCmd::Revoke { id } => {
            let t: TokenView = c
                .post(&format!("/v1/tokens/{id}/revoke"), &[], String::new())
                .await?;
            println!("{} revoked", t.id);
            Ok(0)
        }
    }
}

/// Arguments of `sluice audit`.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Only this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only this actor (a token id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (job.submit, job.cancel, dlq.requeue, token.create, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// At or after (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// How many entries.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
}

pub async fn audit(c: &Client, a: AuditArgs) -> Result<i32> {
    let mut q = vec![("limit", a.limit.to_string())];
    for (k, v) in [
        ("namespace", a.namespace),
        ("actor", a.actor),
        ("action", a.action),
        ("since", a.since),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let entries: Vec<AuditView> = c.get("/v1/audit", &q).await?;
    if !a.output.is_table() {
        // Audit entries have no name of their own: -o name prints them as JSON lines too.
        if a.output == Output::Name {
            for e in &entries {
                println!("{}", serde_json::to_string(e)?);
            }
            return Ok(0);
        }
        print_as(&entries, a.output)?;
        return Ok(0);
    }
    let mut t = Table::new(&[
        "AT",
        "ACTOR",
        "ACTION",
        "NAMESPACE",
        "TARGET",
        "FROM",
        "DETAIL",
    ]);
    for e in entries {
        t.row(vec![
            e.at,
            e.actor,
            e.action,
            e.namespace.unwrap_or_else(|| "-".into()),
            e.target.unwrap_or_else(|| "-".into()),
            e.peer.unwrap_or_else(|| "-".into()),
            e.detail.unwrap_or_default(),
        ]);
    }
    t.print();
    Ok(0)
}

pub async fn whoami(c: &Client) -> Result<i32> {
    let w: WhoAmI = c.get("/v1/whoami", &[]).await?;
    println!("{} ({})", w.actor, w.subject);
    for b in &w.bindings {
        println!("  {b}");
    }
    if !w.auth_enabled {
        println!("authentication is off on this server");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "sluice_file\n").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("admin.token"), "sluice_data\n").unwrap();
        assert_eq!(
            find_token(Some("sluice_flag"), Some(&f), Some(&data)).unwrap(),
            Some("sluice_flag".into())
        );
        assert_eq!(
            find_token(None, Some(&f), Some(&data)).unwrap(),
            Some("sluice_file".into())
        );
        assert_eq!(
            find_token(None, None, Some(&data)).unwrap(),
            Some("sluice_data".into())
        );
        let missing = dir.path().join("nope");
        let e = find_token(None, Some(&missing), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
