//! The router's guard: refuses foreign hosts and cross-site requests, authenticates the bearer
//! token (every request reads the store, so a revoked or expired token is refused at once) and
//! checks the route's rule from [`super::routes::ROUTES`] before any handler runs.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_core::access::AccessRole;

use super::Caller;
use super::routes::{Access, rule_for};
use super::token::{TOKEN_PREFIX, secret_hash};
use crate::api::error::ApiError;
use crate::config::Config;
use crate::guard::limits::{TokenCharge, too_many_requests};
use crate::state::AppState;

/// Puts the guard in front of every route of `router` (the routes it has now).
pub fn guarded(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.route_layer(axum::middleware::from_fn_with_state(state.clone(), guard))
}

/// The guard itself (see the module's documentation).
pub async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Err(e) = same_site(&st.config, req.headers()) {
        return e.into_response();
    }
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(rule) = rule_for(req.method(), &path) else {
        tracing::error!(method = %req.method(), path, "a route without an access rule was called");
        return ApiError::Forbidden(format!(
            "{} {path} has no access rule (auth::routes::ROUTES): refused",
            req.method()
        ))
        .into_response();
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let public = match rule.access {
        Access::Public => true,
        Access::Metrics => st.config.auth.metrics_public,
        _ => false,
    };
    if public {
        return next.run(req).await;
    }
    let caller = match authenticate(&st, req.headers(), peer).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    // The rate limit: each token (or OIDC subject) has its own bucket; with authentication
    // off, the peer address's (the call is left uncharged here).
    if st.config.auth.enabled
        && let Some(charge) = req.extensions().get::<TokenCharge>()
        && let Err(wait) = charge.take(&caller.actor)
    {
        return too_many_requests(wait);
    }
    let allowed = match rule.access {
        Access::Public | Access::Authenticated => true,
        Access::Role(r) => caller.grants.highest().is_some_and(|h| h >= r),
        Access::Admin => caller.grants.is_admin(),
        Access::Metrics => caller.grants.allows_everywhere(AccessRole::Viewer),
    };
    if !allowed {
        let need = match rule.access {
            Access::Role(r) => format!("role {r} in some namespace"),
            Access::Admin => "role admin on *".to_string(),
            Access::Metrics => {
                "role viewer on * (or auth.metrics_public = true in the server's config)"
                    .to_string()
            }
            Access::Public | Access::Authenticated => String::new(),
        };
        return ApiError::Forbidden(format!(
            "token {} ({}) may not call {} {path}: it needs {need}",
            caller.actor,
            caller.subject,
            req.method()
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The caller of a request: from its bearer token, or anonymous when authentication is off.
async fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    peer: Option<String>,
) -> Result<Caller, ApiError> {
    if !st.config.auth.enabled {
        return Ok(Caller::anonymous(peer));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "no bearer token: send `Authorization: Bearer TOKEN` (the CLI takes --token, \
             SLUICE_TOKEN or the server's token file; see docs/security.md)"
                .into(),
        ));
    };
    let text = value.to_str().unwrap_or_default().trim();
    let token = match text.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => {
            return Err(ApiError::Unauthorized(
                "the Authorization header is not `Bearer TOKEN`".into(),
            ));
        }
    };
    if !token.starts_with(TOKEN_PREFIX) {
        if let Some(oidc) = &st.config.auth.oidc {
            return super::jwt::caller_of(&st.jwks, oidc, token, peer, st.now_ms()).await;
        }
        return Err(ApiError::Unauthorized(
            "unknown token (sluice tokens start with `sluice_`)".into(),
        ));
    }
    let rec = st
        .store
        .token_by_hash(&secret_hash(token))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
    if let Some(at) = rec.revoked_at_ms {
        return Err(ApiError::Unauthorized(format!(
            "token {} was revoked at {}",
            rec.id,
            crate::time::rfc3339(at)
        )));
    }
    let now = st.now_ms();
    if !rec.is_active(now) {
        return Err(ApiError::Unauthorized(format!(
            "token {} expired at {}",
            rec.id,
            crate::time::rfc3339(rec.expires_at_ms.unwrap_or(now))
        )));
    }
    Ok(Caller {
        actor: rec.id,
        subject: rec.subject,
        grants: sluice_core::access::Grants::new(rec.bindings),
        peer,
    })
}

/// The host part of a `Host` value or an origin's authority (no port, no brackets).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Whether a host name is one the server answers to: an IP literal, `localhost` (and its
/// subdomains), or one of `auth.allowed_hosts` (`*.example.com` matches its subdomains).
fn host_allowed(config: &Config, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() || host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    config.auth.allowed_hosts.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => a == host,
        }
    })
}

/// Refuses, whatever the authentication: a browser request from another site (`Sec-Fetch-Site:
/// cross-site`, or an `Origin` that is not this server's), and, when authentication is off or
/// `auth.allowed_hosts` is set, a `Host` the server does not answer to (DNS rebinding).
pub fn same_site(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string());
    let check_host = !config.auth.enabled || !config.auth.allowed_hosts.is_empty();
    if check_host
        && let Some(h) = &host
        && !host_allowed(config, host_name(h))
    {
        return Err(ApiError::Forbidden(format!(
            "Host {h:?} is not one this server answers to (loopback names, IP addresses and \
             auth.allowed_hosts): refused as a possible DNS rebinding"
        )));
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::Forbidden(
            "cross-site request refused (Sec-Fetch-Site: cross-site)".into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        let same = match &host {
            Some(h) => authority.eq_ignore_ascii_case(h),
            None => false,
        };
        let listed = !authority.is_empty()
            && !config.auth.allowed_hosts.is_empty()
            && host_allowed(config, host_name(authority))
            && host_name(authority).parse::<IpAddr>().is_err()
            && host_name(authority) != "localhost";
        if !same && !listed {
            return Err(ApiError::Forbidden(format!(
                "cross-site request refused: Origin {origin:?} is not this server ({})",
                host.as_deref().unwrap_or("no Host header")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hosts_and_origins() {
        let mut off = Config::default();
        off.auth.enabled = false;
        let on = Config::default();
        let ok = |c: &Config, h: &[(&str, &str)]| same_site(c, &headers(h)).is_ok();
        // Loopback names and IP literals, with or without a port.
        for host in [
            "127.0.0.1:7467",
            "localhost:7467",
            "[::1]:7467",
            "localhost",
        ] {
            assert!(ok(&off, &[("host", host)]), "{host}");
        }
        // A DNS name pointing at 127.0.0.1 (rebinding) is refused with auth off.
        assert!(!ok(&off, &[("host", "evil.example:7467")]));
        // With auth on, the token protects; the host is not checked unless configured.
        assert!(ok(&on, &[("host", "sluice.corp:7467")]));
        let mut listed = Config::default();
        listed.auth.allowed_hosts = vec!["sluice.corp".into(), "*.svc.local".into()];
        assert!(ok(&listed, &[("host", "sluice.corp")]));
        assert!(ok(&listed, &[("host", "api.svc.local:80")]));
        assert!(!ok(&listed, &[("host", "other.corp")]));
        // Cross-site: refused whatever the authentication.
        for c in [&on, &off] {
            assert!(!ok(
                c,
                &[("host", "127.0.0.1:7467"), ("sec-fetch-site", "cross-site")]
            ));
            assert!(!ok(
                c,
                &[
                    ("host", "127.0.0.1:7467"),
                    ("origin", "http://evil.example")
                ]
            ));
            assert!(!ok(c, &[("host", "127.0.0.1:7467"), ("origin", "null")]));
            assert!(!ok(
                c,
                &[
                    ("host", "127.0.0.1:7467"),
                    ("origin", "http://localhost:8080")
                ]
            ));
            assert!(ok(
                c,
                &[
                    ("host", "127.0.0.1:7467"),
                    ("origin", "http://127.0.0.1:7467")
                ]
            ));
            assert!(ok(
                c,
                &[
                    ("host", "127.0.0.1:7467"),
                    ("sec-fetch-site", "same-origin")
                ]
            ));
        }
        // Behind a proxy that rewrites Host: an origin among allowed_hosts is the server's.
        assert!(ok(
            &listed,
            &[("host", "10.0.0.5:7467"), ("origin", "https://sluice.corp")]
        ));
    }
}
