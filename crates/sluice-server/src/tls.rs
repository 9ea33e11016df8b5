//! HTTPS (`[tls]`): rustls with the ring provider, serving the certificate and key of two PEM
//! files, reloaded when either file changes.
//!
//! The accept loop ([`crate::transport`]) calls [`Certificates::reload_if_changed`] before each
//! handshake: two `stat`s, and a reload only when a file's modification time, size or inode
//! changed (a Kubernetes Secret volume swaps a symlink, which changes the inode), or, for a
//! file changed in the last 2 seconds (file times are coarse), its content. A new pair
//! that cannot be used (unreadable, not PEM, key not matching the certificate, say half-written)
//! is logged as an error and the previous certificate goes on being served; the files are tried
//! again when they change again.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Errors loading the certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("tls: reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not PEM, or holds no item of the kind expected.
    #[error("tls: {path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (a key of an unsupported kind, or not the certificate's key).
    #[error("tls: the certificate {cert} and key {key} cannot be used together: {source}")]
    Unusable {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// What identifies a version of a file: modification time, size, inode (`None`: unreadable).
type Stamp = Option<(Option<SystemTime>, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len(), m.ino()))
}

/// File times come from a coarse clock (a few milliseconds), so a file rewritten in the same
/// tick as it was read keeps its stamp: a stamp this recent is checked by content as well.
const SETTLING: Duration = Duration::from_secs(2);

fn settling(s: &Stamp) -> bool {
    match s {
        Some((Some(t), _, _)) => t
            .elapsed()
            .map(|age| age < SETTLING)
            // A time in the future: not settled either.
            .unwrap_or(true),
        _ => false,
    }
}

fn read(p: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(p).map_err(|source| TlsError::Read {
        path: p.display().to_string(),
        source,
    })
}

/// Reads a certificate chain and its key from PEM files and checks that they belong together.
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    parse_pair(cert, &read(cert)?, key, &read(key)?, provider)
}

/// As [`load_pair`], from the files' contents (the paths name them in errors).
fn parse_pair(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let pem_err = |p: &Path, message: String| TlsError::Pem {
        path: p.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(
            cert,
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        pem_err(
            key,
            format!("no PEM private key in it (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Unusable {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    })
}

/// The files as last tried: their stamps, and their contents when both could be read.
#[derive(PartialEq)]
struct Tried {
    stamps: (Stamp, Stamp),
    contents: Option<(Vec<u8>, Vec<u8>)>,
}

/// The certificate being served, and the files it comes from.
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files when last tried (held while reloading, so that one reload runs at a time).
    tried: Mutex<Tried>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads the pair (an error if it cannot be used: the server does not start).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = (stamp(cert_file), stamp(key_file));
        let (cert_pem, key_pem) = (read(cert_file)?, read(key_file)?);
        let pair = parse_pair(cert_file, &cert_pem, key_file, &key_pem, &provider)?;
        let tried = Tried {
            stamps,
            contents: Some((cert_pem, key_pem)),
        };
        Ok(Certificates {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(pair)),
            tried: Mutex::new(tried),
        })
    }

    /// The certificate chain served now (the server's certificate first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.served().cert.clone()
    }

    fn served(&self) -> Arc<CertifiedKey> {
        // A poisoned lock still holds a whole Arc (it is only ever replaced whole).
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads the pair if either file changed since it was last tried: `true` when a new
    /// certificate is served from now on. A pair that cannot be used is logged as an error and
    /// the previous one is kept.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = (stamp(&self.cert_file), stamp(&self.key_file));
        let mut tried = self.tried.lock().unwrap_or_else(|p| p.into_inner());
        if tried.stamps == stamps && !settling(&stamps.0) && !settling(&stamps.1) {
            return false;
        }
        let contents = read(&self.cert_file)
            .and_then(|c| Ok((c, read(&self.key_file)?)))
            .map_err(|e| tracing::error!("{e}; the previous certificate is still served"))
            .ok();
        let now = Tried { stamps, contents };
        if *tried == now {
            return false;
        }
        *tried = now;
        let Some((cert_pem, key_pem)) = &tried.contents else {
            return false;
        };
        match parse_pair(
            &self.cert_file,
            cert_pem,
            &self.key_file,
            key_pem,
            &self.provider,
        ) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
                tracing::info!(
                    "tls: certificate reloaded from {} and {}",
                    self.cert_file.display(),
                    self.key_file.display()
                );
                true
            }
            Err(e) => {
                tracing::error!("{e}; the previous certificate is still served");
                false
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.served())
    }
}

/// The accept loop's TLS side: the acceptor and the certificates it serves.
#[derive(Clone)]
pub struct Tls {
    /// Does the handshakes.
    pub acceptor: TlsAcceptor,
    /// Checked for new files before each handshake.
    pub certificates: Arc<Certificates>,
}

impl Tls {
    /// HTTPS with the pair in `cert_file` and `key_file` (HTTP/1.1, TLS 1.2 and 1.3).
    pub fn new(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let certificates = Arc::new(Certificates::load(cert_file, key_file)?);
        let unusable = |source| TlsError::Unusable {
            cert: cert_file.display().to_string(),
            key: key_file.display().to_string(),
            source,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(certificates.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_cert_resolver(certificates.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificates,
        })
    }

    /// From `[tls]`: `None` when no files are set (plain HTTP).
    pub fn from_config(config: &crate::config::TlsConfig) -> Result<Option<Self>, TlsError> {
        config.files().map(|(c, k)| Tls::new(c, k)).transpose()
    }
}
