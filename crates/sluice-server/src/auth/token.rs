//! API token secrets: made from 32 bytes of system randomness, shown once, kept only as their
//! SHA-256; and the bootstrap admin token a fresh server writes to a file only its user reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SecureRandom;
use sluice_core::access::{ALL_NAMESPACES, AccessRole, Binding};
use sluice_store::{NewToken, StoreError, TokenRecord};

use crate::state::AppState;

/// Every token sluice makes starts with this, so that a leaked one is easy to recognise (and to
/// scan for), and a JWT is never mistaken for one.
pub const TOKEN_PREFIX: &str = "sluice_";

/// The subject of the token a fresh server makes for itself.
pub const BOOTSTRAP_SUBJECT: &str = "bootstrap-admin";

/// Errors of token making and the bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The token file could not be written.
    #[error("writing the token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A new token string: [`TOKEN_PREFIX`] and 64 hex digits (256 bits of system randomness).
pub fn new_secret() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// What the store keeps of a token: the lowercase hex SHA-256 of the whole string.
pub fn secret_hash(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Makes a token and stores its hash; returns the record and the token string (shown once).
pub async fn create_token(
    state: &AppState,
    subject: &str,
    bindings: Vec<Binding>,
    expires_at_ms: Option<i64>,
    created_by: Option<String>,
) -> Result<(TokenRecord, String), TokenError> {
    let secret = new_secret()?;
    let rec = state
        .store
        .create_token(&NewToken {
            id: format!("tok_{}", state.new_id()),
            subject: subject.to_string(),
            secret_hash: secret_hash(&secret),
            bindings,
            created_at_ms: state.now_ms(),
            created_by,
            expires_at_ms,
        })
        .await?;
    Ok((rec, secret))
}

/// Writes `token` to `path` readable and writable by its owner only (mode 0600), replacing
/// the file atomically (a new file beside it, renamed over).
pub fn write_token_file(path: &Path, token: &str) -> Result<(), TokenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(format!("{token}\n").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// On a store that has never held a token (a fresh server), makes an admin token bound to `*`
/// without expiry and writes it to the token file (`auth.token_file`, mode 0600), where the
/// CLI on this host finds it. Returns the file written, or none when the store has tokens
/// already (then nothing is touched: a token file deleted on purpose stays deleted) or
/// authentication is off.
pub async fn bootstrap(state: &AppState) -> Result<Option<PathBuf>, TokenError> {
    if !state.config.auth.enabled || state.store.count_tokens().await? > 0 {
        return Ok(None);
    }
    let path = state.config.auth.token_path(&state.config.data_dir);
    let admin = Binding {
        namespace: ALL_NAMESPACES.into(),
        role: AccessRole::Admin,
    };
    let (rec, secret) = create_token(state, BOOTSTRAP_SUBJECT, vec![admin], None, None).await?;
    write_token_file(&path, &secret)?;
    tracing::info!(
        token = %rec.id,
        "created the admin token {} and wrote it to {} (mode 0600); the CLI on this host \
         reads it from there",
        rec.id,
        path.display()
    );
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        let h = secret_hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a[TOKEN_PREFIX.len()..]));
        // SHA-256 of "abc".
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/admin.token");
        write_token_file(&p, "sluice_x").unwrap();
        write_token_file(&p, "sluice_y").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "sluice_y\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
