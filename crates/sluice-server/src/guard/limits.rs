//! What every request goes through before a handler (see `docs/security.md`, "Limits"):
//!
//! - [`security_headers`]: `Content-Security-Policy`, `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on every answer. No
//!   `Access-Control-Allow-*` header is ever sent: CORS is off, so a foreign page cannot read
//!   the answers.
//! - [`rate_limit`]: a token bucket per client (429 with `Retry-After`): per API token (or OIDC
//!   subject) for an authenticated call, charged by the authentication guard through
//!   [`TokenCharge`]; per peer address otherwise, in two buckets: calls without credentials,
//!   and calls whose credentials did not authenticate (which are refused before any
//!   authentication work once that bucket is empty, so made-up tokens cannot buy fresh
//!   buckets). [`RateKey`], when an earlier layer sets one, keys the request instead.
//! - [`body_rules`]: a `Content-Length` above `api.max_body_bytes` is refused (413) before any
//!   of the body is read; a body must be `application/json` or `application/yaml` (415): a
//!   foreign page can post `text/plain` or a form without asking, but not these.
//! - [`request_timeout`]: a request that takes longer than `limits.request_timeout_secs` gets
//!   408.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every answer: the UI loads its script, style and data from
/// this server only (its SVG charts set inline styles), and no page may frame it.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'";

/// The media types a request body may have.
pub const ACCEPTED_TYPES: [&str; 2] = ["application/json", "application/yaml"];

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Adds the security headers to every answer.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Refuses a declared body over `limit` bytes (413, before reading it) and a body that is not
/// JSON or YAML (415). A request without a body and without a `Content-Type` passes.
pub async fn body_rules(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    // The declared length, else what the body knows of itself (an in-process request).
    let hint = req.body().size_hint();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(hint.exact());
    if length.is_some_and(|n| n > limit as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit api.max_body_bytes = {limit} bytes \
                 (Content-Length: {})",
                length.unwrap_or_default()
            ),
        );
    }
    let has_body = length.is_none_or(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    let ctype = headers.get(header::CONTENT_TYPE);
    if has_body || ctype.is_some() {
        let text = ctype.and_then(|v| v.to_str().ok()).unwrap_or("");
        let media = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED_TYPES.contains(&media.as_str()) {
            let shown = if ctype.is_none() {
                "(none)".to_string()
            } else {
                format!("{text:?}")
            };
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "header `Content-Type` = {shown}: a request body must be {}",
                    ACCEPTED_TYPES.join(" or ")
                ),
            );
        }
    }
    next.run(req).await
}

/// Answers 408 when the handler takes longer than the state's duration.
pub async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than limits.request_timeout_secs = {} s",
                limit.as_secs()
            ),
        ),
    }
}

/// The key a request is rate-limited by, when an earlier layer knows the caller (the
/// authentication work inserts the token's id here); without it, the peer's IP address is used,
/// and a request with neither (an in-process call) is not limited.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey(pub String);

/// Token buckets per client: `rate` tokens a second, up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Most clients tracked at once; above it, the buckets that are full again are forgotten.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// A limiter of `rate_per_sec` requests a second with bursts of `burst`; `None` when
    /// `rate_per_sec` is 0 (no limit).
    pub fn new(rate_per_sec: u32, burst: u32) -> Option<RateLimiter> {
        (rate_per_sec > 0).then(|| RateLimiter {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `key` has a token at `now` (none is taken): `Ok` or the seconds to wait.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), u64> {
        let buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some((tokens, at)) = buckets.get(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        let tokens = (*tokens + elapsed * self.rate).min(self.burst);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err((((1.0 - tokens) / self.rate).ceil() as u64).max(1))
        }
    }

    /// Takes a token for `key` at `now`: `Ok` or the seconds to wait for the next one.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.rate).ceil();
            // At least one second: Retry-After counts whole seconds.
            Err((wait as u64).max(1))
        }
    }
}

/// Put in a request with credentials by [`rate_limit`]: the authentication guard charges the
/// call to the caller's own bucket with [`TokenCharge::take`]; a call it does not charge
/// (credentials refused, a public route) is charged to the peer address afterwards.
#[derive(Debug, Clone)]
pub struct TokenCharge {
    limiter: Arc<RateLimiter>,
    charged: Arc<AtomicBool>,
}

impl TokenCharge {
    /// Charges the call to the caller `actor` (a token id, `oidc:SUBJECT`): `Ok`, or the
    /// seconds to wait when its bucket is empty.
    pub fn take(&self, actor: &str) -> Result<(), u64> {
        self.charged.store(true, Ordering::Relaxed);
        self.limiter.take(&format!("key:{actor}"), Instant::now())
    }
}

/// The 429 answer, with `Retry-After: wait`.
pub fn too_many_requests(wait: u64) -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests from this client (limits.rate_per_sec); try again in {wait} s"),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    resp
}

/// 429 with `Retry-After` for a client over its rate (see the module's documentation).
pub async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(k) = req.extensions().get::<RateKey>() {
        if let Err(wait) = limiter.take(&format!("key:{}", k.0), Instant::now()) {
            return too_many_requests(wait);
        }
        return next.run(req).await;
    }
    // In-process calls (tests through `oneshot`) have no peer: not limited.
    let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return next.run(req).await;
    };
    if !req.headers().contains_key(header::AUTHORIZATION) {
        if let Err(wait) = limiter.take(&format!("ip:{}", addr.ip()), Instant::now()) {
            return too_many_requests(wait);
        }
        return next.run(req).await;
    }
    // With credentials: refused at once when this address has spent its bucket of calls whose
    // credentials did not authenticate; else charged to the caller by the guard.
    let refused_key = format!("ip-refused:{}", addr.ip());
    if let Err(wait) = limiter.peek(&refused_key, Instant::now()) {
        return too_many_requests(wait);
    }
    let charge = TokenCharge {
        limiter: limiter.clone(),
        charged: Arc::new(AtomicBool::new(false)),
    };
    req.extensions_mut().insert(charge.clone());
    let resp = next.run(req).await;
    if !charge.charged.load(Ordering::Relaxed) {
        let _ = limiter.take(&refused_key, Instant::now());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate() {
        let l = RateLimiter::new(2, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.take("a", t0).unwrap();
        }
        assert_eq!(l.take("a", t0), Err(1));
        // Another client has its own bucket.
        l.take("b", t0).unwrap();
        // Half a second later: one token back.
        l.take("a", t0 + Duration::from_millis(500)).unwrap();
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_err());
        assert!(RateLimiter::new(0, 10).is_none());
    }
}
