//! OIDC / JWT bearer tokens through the real router: keys generated here (Ed25519 and ECDSA
//! P-256, with ring), a JWKS file, issuer, audience and expiry checked, a claim mapped to
//! namespace roles; never a network identity provider (a JWKS URL is served by an HTTP server
//! of the test on loopback).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use sluice_backend::clock::ManualClock;
use sluice_server::config::{Config, OidcConfig};
use sluice_server::{AppState, app};
use tower::ServiceExt;

const ISSUER: &str = "https://idp.example/realms/data";
const AUDIENCE: &str = "sluice";

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An Ed25519 key: (signing key, its JWK).
fn ed25519(kid: &str) -> (EncodingKey, Value) {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
                     "x": b64url(pair.public_key().as_ref())});
    (EncodingKey::from_ed_der(doc.as_ref()), jwk)
}

/// An ECDSA P-256 key: (signing key, its JWK).
fn p256(kid: &str) -> (EncodingKey, Value) {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 || x || y
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                     "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
    (EncodingKey::from_ec_der(doc.as_ref()), jwk)
}

fn now_s() -> i64 {
    sluice_server::time::now_ms() / 1000
}

fn claims(groups: &[&str], exp: i64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": exp, "iat": now_s(), "groups": groups})
}

fn jwt(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    encode(&h, claims, key).unwrap()
}

async fn call(r: &Router, token: &str, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/yaml")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn job(ns: &str) -> String {
    format!("name: j\nnamespace: {ns}\ncommand:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n")
}

#[tokio::test]
async fn jwts_of_the_identity_provider_map_a_claim_to_namespace_roles() {
    let dir = tempfile::tempdir().unwrap();
    let (ed_key, ed_jwk) = ed25519("ed-1");
    let (ec_key, ec_jwk) = p256("ec-1");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [ed_jwk, ec_jwk]}).to_string()).unwrap();
    let mut config = common::commands_allowed();
    config.auth.oidc = Some(OidcConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_file: jwks.clone(),
        roles: [
            ("team-a".to_string(), vec!["a=submitter".to_string()]),
            ("auditors".to_string(), vec!["*=viewer".to_string()]),
        ]
        .into(),
        ..OidcConfig::default()
    });
    let state: AppState = common::local_state(dir.path(), 4000, 8192, config).await;
    let r = app(state.clone());
    let later = now_s() + 600;

    // A member of team-a (EdDSA): submitter in a, nothing in b.
    let t = jwt(
        Algorithm::EdDSA,
        "ed-1",
        &ed_key,
        &claims(&["team-a", "other"], later),
    );
    let (s, v) = call(&r, &t, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["actor"], "oidc:alice");
    assert_eq!(v["bindings"], json!(["a=submitter"]));
    let (s, v) = call(&r, &t, "POST", "/v1/jobs", &job("a")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = call(&r, &t, "POST", "/v1/jobs", &job("b")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = call(&r, &t, "GET", "/v1/tokens", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The audit log names the identity.
    let admin = common::admin_token(&state);
    let (_, v) = call(&r, &admin, "GET", "/v1/audit?action=job.submit", "").await;
    assert_eq!(v[0]["actor"], "oidc:alice", "{v}");
    assert_eq!(v[0]["target"], id.as_str());

    // ES256 works too; a single string claim is one value.
    let mut c = claims(&[], later);
    c["groups"] = json!("auditors");
    let t = jwt(Algorithm::ES256, "ec-1", &ec_key, &c);
    let (s, v) = call(&r, &t, "GET", "/metrics", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Valid, but no group that maps to a role: authenticated, allowed nothing.
    let t = jwt(
        Algorithm::EdDSA,
        "ed-1",
        &ed_key,
        &claims(&["nobody"], later),
    );
    let (s, _) = call(&r, &t, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&r, &t, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Refused with 401: expired, another issuer, another audience, no exp, an unknown key, a
    // key id whose key did not sign it, a shared-secret algorithm, garbage.
    let (other_key, _) = ed25519("ed-1");
    let mut bad = Vec::new();
    bad.push((
        "expired",
        jwt(
            Algorithm::EdDSA,
            "ed-1",
            &ed_key,
            &claims(&["team-a"], now_s() - 120),
        ),
    ));
    let mut c = claims(&["team-a"], later);
    c["iss"] = json!("https://evil.example");
    bad.push(("issuer", jwt(Algorithm::EdDSA, "ed-1", &ed_key, &c)));
    let mut c = claims(&["team-a"], later);
    c["aud"] = json!("another-app");
    bad.push(("audience", jwt(Algorithm::EdDSA, "ed-1", &ed_key, &c)));
    let mut c = claims(&["team-a"], later);
    c.as_object_mut().unwrap().remove("exp");
    bad.push(("no exp", jwt(Algorithm::EdDSA, "ed-1", &ed_key, &c)));
    bad.push((
        "unknown kid",
        jwt(
            Algorithm::EdDSA,
            "ed-9",
            &ed_key,
            &claims(&["team-a"], later),
        ),
    ));
    bad.push((
        "wrong key",
        jwt(
            Algorithm::EdDSA,
            "ed-1",
            &other_key,
            &claims(&["team-a"], later),
        ),
    ));
    bad.push((
        "HS256",
        jwt(
            Algorithm::HS256,
            "ed-1",
            &EncodingKey::from_secret(b"guess"),
            &claims(&["team-a"], later),
        ),
    ));
    bad.push(("garbage", "eyJhbGciOi.not.a-jwt".to_string()));
    for (what, t) in bad {
        let (s, v) = call(&r, &t, "GET", "/v1/jobs", "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("JWT refused"),
            "{what}: {v}"
        );
    }

    // A key removed from the JWKS file is refused at once.
    std::fs::write(&jwks, json!({"keys": []}).to_string()).unwrap();
    let t = jwt(
        Algorithm::EdDSA,
        "ed-1",
        &ed_key,
        &claims(&["team-a"], later),
    );
    let (s, _) = call(&r, &t, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[test]
fn oidc_settings_are_checked() {
    let mut c = Config::default();
    c.auth.oidc = Some(OidcConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_file: "/etc/sluice/jwks.json".into(),
        roles: [("g".to_string(), vec!["a=king".to_string()])].into(),
        ..OidcConfig::default()
    });
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("auth.oidc.roles.g") && e.contains("king"), "{e}");
    c.auth.oidc.as_mut().unwrap().roles.clear();
    c.validate().unwrap();
    c.auth.oidc.as_mut().unwrap().audience = String::new();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("auth.oidc.audience"), "{e}");
    c.auth.oidc.as_mut().unwrap().audience = AUDIENCE.into();

    // A JWKS URL: instead of the file, https (or http to loopback only).
    let o = c.auth.oidc.as_mut().unwrap();
    o.jwks_url = Some("https://idp.example/certs".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("not both"), "{e}");
    let o = c.auth.oidc.as_mut().unwrap();
    o.jwks_file = Default::default();
    c.validate().unwrap();
    for (url, ok) in [
        ("http://127.0.0.1:8080/certs", true),
        ("http://localhost/certs", true),
        ("http://[::1]:9000/certs", true),
        ("http://idp.example/certs", false),
        ("http://127.0.0.1.evil.example/certs", false),
        ("ftp://idp.example/certs", false),
        ("https://", false),
    ] {
        c.auth.oidc.as_mut().unwrap().jwks_url = Some(url.into());
        let r = c.validate();
        assert_eq!(r.is_ok(), ok, "{url}: {r:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("auth.oidc.jwks_url"), "{e}");
        }
    }
    c.auth.oidc.as_mut().unwrap().jwks_url = None;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("auth.oidc.jwks_file"), "{e}");
}

/// An identity provider's JWKS endpoint on loopback: the set it serves, the status it answers
/// with, and how many times it was asked.
#[derive(Clone)]
struct Idp {
    jwks: Arc<Mutex<Value>>,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    url: String,
}

impl Idp {
    async fn start(keys: Vec<Value>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = Idp {
            jwks: Arc::new(Mutex::new(json!({ "keys": keys }))),
            status: Arc::new(AtomicU16::new(200)),
            hits: Arc::new(AtomicUsize::new(0)),
            url: format!(
                "http://{}/realms/data/certs",
                listener.local_addr().unwrap()
            ),
        };
        let served = idp.clone();
        let router = Router::new().route(
            "/realms/data/certs",
            axum::routing::get(move || {
                let idp = served.clone();
                async move {
                    idp.hits.fetch_add(1, Ordering::SeqCst);
                    let status = StatusCode::from_u16(idp.status.load(Ordering::SeqCst)).unwrap();
                    (status, idp.jwks.lock().unwrap().to_string())
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        idp
    }

    fn serve(&self, keys: Vec<Value>) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A server whose OIDC keys come from `url`, on a manual clock.
async fn jwks_url_server(dir: &std::path::Path, url: &str) -> (Router, ManualClock) {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.auth.oidc = Some(OidcConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: Some(url.into()),
        jwks_refresh_secs: 60,
        jwks_max_age_secs: 3600,
        roles: [("team-a".to_string(), vec!["a=viewer".to_string()])].into(),
        ..OidcConfig::default()
    });
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let backend = sluice_backend::simulated::SimulatedBackend::new(
        &Default::default(),
        Arc::new(sluice_backend::clock::SystemClock),
    )
    .unwrap();
    let clock = ManualClock::new(sluice_server::time::now_ms());
    let state = AppState::with_clock(store, Arc::new(backend), config, Arc::new(clock.clone()));
    common::bootstrap(&state).await;
    (app(state), clock)
}

#[tokio::test]
async fn a_jwks_url_is_fetched_cached_and_refetched_for_a_new_key_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, jwk1) = ed25519("ed-1");
    let (k2, jwk2) = ed25519("ed-2");
    let (k9, _) = ed25519("ed-9");
    let idp = Idp::start(vec![jwk1.clone()]).await;
    let (r, clock) = jwks_url_server(dir.path(), &idp.url).await;
    let later = now_s() + 3 * 3600 + 600;
    let as_ =
        |kid: &str, key: &EncodingKey| jwt(Algorithm::EdDSA, kid, key, &claims(&["team-a"], later));
    let whoami = |t: String| {
        let r = r.clone();
        async move { call(&r, &t, "GET", "/v1/whoami", "").await }
    };

    // Fetched at the first JWT, then from the cache.
    let (s, v) = whoami(as_("ed-1", &k1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["bindings"], json!(["a=viewer"]));
    assert_eq!(idp.hits(), 1);
    let (s, _) = whoami(as_("ed-1", &k1)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(idp.hits(), 1, "served from the cache");

    // The provider adds a key: a token signed with it makes one fetch, once a minute at most.
    idp.serve(vec![jwk1.clone(), jwk2.clone()]);
    let (s, v) = whoami(as_("ed-2", &k2)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("ed-2"), "{v}");
    assert_eq!(
        idp.hits(),
        1,
        "not within jwks_refresh_secs of the last fetch"
    );
    clock.advance(60_000);
    let (s, v) = whoami(as_("ed-2", &k2)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(idp.hits(), 2);

    // A key the provider never had: a flood of such tokens makes one fetch a minute.
    for _ in 0..5 {
        let (s, _) = whoami(as_("ed-9", &k9)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.hits(), 2);
    clock.advance(60_000);
    for _ in 0..5 {
        let (s, _) = whoami(as_("ed-9", &k9)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.hits(), 3);

    // The provider drops a key: refused once the cache is older than jwks_max_age_secs.
    idp.serve(vec![jwk2.clone()]);
    let (s, _) = whoami(as_("ed-1", &k1)).await;
    assert_eq!(s, StatusCode::OK, "still in the cache");
    clock.advance(3_600_000);
    let (s, _) = whoami(as_("ed-1", &k1)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.hits(), 4);

    // The provider fails: the keys fetched before are kept.
    idp.status.store(500, Ordering::SeqCst);
    clock.advance(3_600_000);
    let (s, v) = whoami(as_("ed-2", &k2)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(idp.hits(), 5);

    // A server that never got the keys: 503, and no fetch more than once a minute.
    let dir2 = tempfile::tempdir().unwrap();
    let (r2, clock2) = jwks_url_server(dir2.path(), &idp.url).await;
    let t = as_("ed-2", &k2);
    let (s, v) = call(&r2, &t, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (s, _) = call(&r2, &t, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(idp.hits(), 6);
    idp.status.store(200, Ordering::SeqCst);
    clock2.advance(60_000);
    let (s, v) = call(&r2, &t, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(idp.hits(), 7);
}
