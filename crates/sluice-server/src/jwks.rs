//! The identity provider's keys (`[auth.oidc]`): a JWKS read from `jwks_file` at each request,
//! or fetched from `jwks_url` and cached. A cached set is fetched again when a token names a
//! key it does not hold (the provider rotated its keys), at most once per `jwks_refresh_secs`,
//! and when it is older than `jwks_max_age_secs` (so that a key the provider dropped stops
//! working). A fetch that fails is logged and the cached set kept; with no set at all the
//! request gets 503.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

use crate::config::OidcConfig;

/// How long one fetch of the JWKS may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no key set could be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// `jwks_file` could not be read or is not a JWKS.
    #[error("auth.oidc.jwks_file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `jwks_url` could not be fetched or did not answer a JWKS, and no set is cached.
    #[error("auth.oidc.jwks_url {url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// The fetched set and when (milliseconds of the state's clock).
#[derive(Default)]
struct Cached {
    set: Option<Arc<JwkSet>>,
    fetched_at_ms: i64,
    /// The last fetch, successful or not.
    tried_at_ms: Option<i64>,
}

/// The JWKS of `jwks_url`, cached (one per server; `AppState::jwks`).
#[derive(Default)]
pub struct JwksCache {
    cached: Mutex<Cached>,
    http: std::sync::OnceLock<reqwest::Client>,
    fetches: std::sync::atomic::AtomicU64,
}

impl JwksCache {
    /// How many fetches were made (successful or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key set to check a token whose header names `kid` against, at `now_ms` of the
    /// state's clock: from the file, or from the cache, fetched when needed (module
    /// documentation).
    pub async fn key_set(
        &self,
        cfg: &OidcConfig,
        kid: &str,
        now_ms: i64,
    ) -> Result<Arc<JwkSet>, JwksError> {
        let Some(url) = cfg.jwks_url.as_deref() else {
            return read_file(cfg).map(Arc::new);
        };
        let mut c = self.cached.lock().await;
        let age_ms = now_ms.saturating_sub(c.fetched_at_ms);
        let fresh = age_ms < secs_ms(cfg.jwks_max_age_secs);
        let has_kid = c.set.as_ref().is_some_and(|s| s.find(kid).is_some());
        if let Some(set) = &c.set
            && fresh
            && has_kid
        {
            return Ok(set.clone());
        }
        // Not since the last try: the set as it is (a token with an unknown key is refused).
        let may_fetch = c
            .tried_at_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= secs_ms(cfg.jwks_refresh_secs));
        if !may_fetch {
            return c.set.clone().ok_or_else(|| JwksError::Fetch {
                url: url.to_string(),
                message: format!(
                    "no key set yet; the last fetch failed and the next is allowed {} s after it",
                    cfg.jwks_refresh_secs
                ),
            });
        }
        c.tried_at_ms = Some(now_ms);
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch(cfg, url).await {
            Ok(set) => {
                let set = Arc::new(set);
                tracing::info!(%url, keys = set.keys.len(), "fetched the identity provider's JWKS");
                c.set = Some(set.clone());
                c.fetched_at_ms = now_ms;
                Ok(set)
            }
            Err(message) => match &c.set {
                Some(old) => {
                    tracing::error!(%url, "fetching auth.oidc.jwks_url: {message}; the keys fetched before are kept");
                    Ok(old.clone())
                }
                None => Err(JwksError::Fetch {
                    url: url.to_string(),
                    message,
                }),
            },
        }
    }

    async fn fetch(&self, cfg: &OidcConfig, url: &str) -> Result<JwkSet, String> {
        let http = match self.http.get() {
            Some(h) => h.clone(),
            None => {
                let h = client(cfg)?;
                self.http.get_or_init(|| h).clone()
            }
        };
        let resp = http.get(url).send().await.map_err(|e| chain(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("answered HTTP {}", status.as_u16()));
        }
        let bytes = resp.bytes().await.map_err(|e| chain(&e))?;
        serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| format!("not a JWKS: {e}"))
    }
}

/// The HTTP client of the fetches: rustls with ring, trusting the system's CAs or only those
/// of `jwks_ca_file`.
fn client(cfg: &OidcConfig) -> Result<reqwest::Client, String> {
    sluice_backend::install_crypto_provider();
    let mut b = reqwest::Client::builder().timeout(FETCH_TIMEOUT);
    if !cfg.jwks_ca_file.as_os_str().is_empty() {
        let f = cfg.jwks_ca_file.display();
        let pem = std::fs::read(&cfg.jwks_ca_file)
            .map_err(|e| format!("reading auth.oidc.jwks_ca_file {f}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("auth.oidc.jwks_ca_file {f} is not PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!("auth.oidc.jwks_ca_file {f} holds no certificate"));
        }
        b = b.tls_certs_only(certs);
    }
    b.build()
        .map_err(|e| format!("building the HTTP client: {}", chain(&e)))
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

fn secs_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn read_file(cfg: &OidcConfig) -> Result<JwkSet, JwksError> {
    let err = |message: String| JwksError::File {
        path: cfg.jwks_file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(&cfg.jwks_file).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(format!("not a JWKS: {e}")))
}
