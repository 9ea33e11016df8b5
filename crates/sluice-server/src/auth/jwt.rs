//! OIDC / JWT bearer tokens (`[auth.oidc]`): a token signed by the identity provider with a key
//! of its JWKS (read from `auth.oidc.jwks_file` at each request, so a rotated file takes effect
//! at once, or fetched from `auth.oidc.jwks_url` and cached: [`crate::jwks`]), with the
//! configured issuer and audience, not expired; its roles are the bindings
//! that `auth.oidc.roles` maps the values of one claim (e.g. `groups`) to. Only asymmetric
//! algorithms are accepted (RSA, RSA-PSS, ECDSA, EdDSA): a shared-secret (`HS*`) token is
//! refused, as is a token whose key is not in the JWKS.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use sluice_core::access::{Binding, Grants};

use super::Caller;
use crate::api::error::ApiError;
use crate::config::OidcConfig;
use crate::jwks::{JwksCache, JwksError};

/// The caller a JWT stands for, or 401 saying why it is refused (the key set from `keys`, at
/// `now_ms` of the state's clock).
pub async fn caller_of(
    keys: &JwksCache,
    cfg: &OidcConfig,
    token: &str,
    peer: Option<String>,
    now_ms: i64,
) -> Result<Caller, ApiError> {
    let refused = |why: String| ApiError::Unauthorized(format!("JWT refused: {why}"));
    let header =
        decode_header(token).map_err(|e| refused(format!("not a sluice token nor a JWT ({e})")))?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(refused(format!(
            "algorithm {:?} (shared secret) is not accepted",
            header.alg
        )));
    }
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| refused("its header has no `kid`".into()))?;
    let set = keys.key_set(cfg, kid, now_ms).await.map_err(|e| {
        tracing::error!("{e}");
        match e {
            JwksError::File { .. } => ApiError::Internal(
                "the identity provider's keys cannot be read (see the server log)".into(),
            ),
            JwksError::Fetch { .. } => ApiError::Unavailable(
                "the identity provider's keys cannot be fetched now (see the server log)".into(),
            ),
        }
    })?;
    let jwk = set
        .find(kid)
        .ok_or_else(|| refused(format!("no key {kid:?} in the identity provider's JWKS")))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refused(format!("key {kid:?}: {e}")))?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[cfg.issuer.as_str()]);
    v.set_audience(&[cfg.audience.as_str()]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.leeway = 30;
    let claims = decode::<Value>(token, &key, &v)
        .map_err(|e| refused(e.to_string()))?
        .claims;
    let subject = claims
        .get(&cfg.subject_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused(format!("no `{}` claim", cfg.subject_claim)))?
        .to_string();
    let values: Vec<&str> = match claims.get(&cfg.claim) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut bindings: Vec<Binding> = Vec::new();
    for value in values {
        for b in cfg.roles.get(value).into_iter().flatten() {
            // Checked when the configuration was loaded.
            if let Ok(b) = b.parse::<Binding>() {
                bindings.push(b);
            }
        }
    }
    Ok(Caller {
        actor: format!("oidc:{subject}"),
        subject,
        grants: Grants::new(bindings),
        peer,
    })
}
