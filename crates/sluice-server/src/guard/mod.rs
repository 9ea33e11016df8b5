//! Guards between the network and the handlers, kept apart from the routes so that each can
//! be read (and tested) alone:
//! - [`command`]: command jobs are a privilege (`[security.command_jobs]`, and a hook for roles).
//! - [`limits`]: security headers, rate limit, body size and type, request timeout; [`layers`]
//!   puts them around the router.

pub mod command;
pub mod limits;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};

use crate::config::Config;

/// Wraps `router` in the guards of [`limits`], outermost first: security headers (so that every
/// refusal carries them too), the rate limit, the body's size and type, the request timeout.
pub fn layers(router: Router, config: &Config) -> Router {
    let timeout = Duration::from_secs(config.limits.request_timeout_secs);
    let mut r = router
        .layer(from_fn_with_state(timeout, limits::request_timeout))
        .layer(from_fn_with_state(
            config.api.max_body_bytes,
            limits::body_rules,
        ));
    if let Some(l) = limits::RateLimiter::new(config.limits.rate_per_sec, config.limits.rate_burst)
    {
        r = r.layer(from_fn_with_state(Arc::new(l), limits::rate_limit));
    }
    r.layer(from_fn(limits::security_headers))
}
