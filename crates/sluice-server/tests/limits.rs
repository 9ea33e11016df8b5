//! Transport and limits: body size (413 before reading), body type (415), idle and slow
//! connections, the connection cap, the rate limit (429), CORS off and the security headers.
//! The router through `oneshot`, and a real server (`run_supervised` on a real listener) for
//! what only a socket shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::app;
use http_body_util::BodyExt;
use sluice_server::config::Config;
use sluice_server::guard::limits::RateKey;
use sluice_server::{AppState, run_supervised};
use tower::ServiceExt;

const MB50: usize = 50 * 1024 * 1024;

async fn state(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> AppState {
    let mut c = common::commands_allowed();
    tweak(&mut c);
    common::local_state(dir, 4000, 8192, c).await
}

/// A real server on 127.0.0.1 (stopped when the sender is dropped).
async fn spawn(state: AppState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run_supervised(state, listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Sends `head` (and nothing more) and reads the answer's status line, within `within`.
fn status_line(addr: SocketAddr, head: &str, within: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn send(r: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn job_count(r: &Router) -> usize {
    let (_, v) = common::call(r, "GET", "/v1/jobs", "").await;
    v["jobs"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_body_gets_413_without_the_server_growing() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), |_| {}).await;
    // Through the router: a declared 50 MB body.
    let r = app(st.clone());
    let req = Request::post("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/yaml")
        .header(header::CONTENT_LENGTH, MB50)
        .body(Body::from(vec![b'a'; MB50]))
        .unwrap();
    let (status, _, body) = send(&r, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("api.max_body_bytes"), "{body}");
    // A real server answers a declared 50 MB body before a byte of it is sent (with a valid
    // token: the limit holds for callers who may submit, not only for strangers).
    let token = common::admin_token(&st);
    let (addr, _stop) = spawn(st.clone()).await;
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/yaml\r\nContent-Length: {MB50}\r\n\r\n"
    );
    let line =
        tokio::task::spawn_blocking(move || status_line(addr, &head, Duration::from_secs(5)))
            .await
            .unwrap();
    assert!(line.contains(" 413 "), "{line:?}");
    // A chunked body (no length declared) streamed at the server: refused at the limit, and
    // the server (this process) does not grow by the body's size.
    let before = rss_kib();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!(
                "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/yaml\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < MB50 {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if s.write_all(&frame).is_err() {
                break; // the server closed the connection after answering
            }
            sent += chunk.len();
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 20 * 1024, "the server grew by {grown} KiB");
    assert_eq!(job_count(&r).await, 0);
}

#[tokio::test]
async fn only_json_and_yaml_bodies_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let r = app(state(dir.path(), |_| {}).await);
    let job = "name: a\ncommand: {argv: [id], cpu: 100m, memory: 32m}\n";
    // What any web page may send without a preflight, and a body without a type.
    for ctype in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/yaml"),
        None,
    ] {
        let mut req = Request::post("/v1/jobs").header("origin", "https://evil.example");
        if let Some(t) = ctype {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let (status, headers, body) = send(&r, req.body(Body::from(job)).unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{ctype:?}: {body}"
        );
        assert!(body.contains("Content-Type"), "{body}");
        assert!(headers.get("access-control-allow-origin").is_none());
    }
    assert_eq!(job_count(&r).await, 0);
    for ctype in ["application/yaml", "application/json; charset=utf-8"] {
        let doc = if ctype.starts_with("application/json") {
            r#"{"name": "b", "command": {"argv": ["id"], "cpu": "100m", "memory": "32m"}}"#
        } else {
            job
        };
        let req = Request::post("/v1/jobs")
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(doc))
            .unwrap();
        let (status, _, body) = send(&r, req).await;
        assert_eq!(status, StatusCode::CREATED, "{ctype}: {body}");
    }
    // A POST without a body needs no type (cancel, trigger, the UI's buttons).
    let req = Request::post("/v1/dlq/purge?namespace=x&dry_run=true")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&r, req).await;
    assert_ne!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn cors_is_off_and_answers_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let r = app(state(dir.path(), |_| {}).await);
    let req = Request::get("/").body(Body::empty()).unwrap();
    let (status, h, _) = send(&r, req).await;
    assert_eq!(status, StatusCode::OK);
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // A preflight from a foreign page is not granted, nor is a simple request's answer shared.
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/v1/jobs")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let (status, h, _) = send(&r, req).await;
    assert!(!status.is_success(), "{status}");
    assert!(
        h.keys().all(|k| !k.as_str().starts_with("access-control-")),
        "{h:?}"
    );
    // A simple request from a foreign page is refused outright (the auth guard's cross-site
    // rule), and its answer carries no CORS header either.
    let req = Request::get("/v1/jobs")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let (status, h, _) = send(&r, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        h.keys().all(|k| !k.as_str().starts_with("access-control-")),
        "{h:?}"
    );
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // The router itself (no token added): callers without credentials, by address.
    let r = sluice_server::app(
        state(dir.path(), |c| {
            c.limits.rate_per_sec = 1;
            c.limits.rate_burst = 3;
        })
        .await,
    );
    let from = |ip: &str, key: Option<&str>| {
        let mut req = Request::get("/healthz").body(Body::empty()).unwrap();
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        if let Some(k) = key {
            req.extensions_mut().insert(RateKey(k.into()));
        }
        req
    };
    for _ in 0..3 {
        let (status, _, body) = send(&r, from("10.0.0.1", None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, h, body) = send(&r, from("10.0.0.1", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = h[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(body.contains("limits.rate_per_sec"), "{body}");
    // Another address, or a caller known by its key, has its own bucket.
    let (status, _, _) = send(&r, from("10.0.0.2", None)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&r, from("10.0.0.1", Some("token-1"))).await;
    assert_eq!(status, StatusCode::OK);
}

/// Idle connections (that send nothing) and slow ones (that never finish their headers), many
/// more than the connection cap, are closed after the header timeout; a new client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_cannot_exhaust_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), |c| {
        c.limits.max_connections = 16;
        c.limits.header_timeout_secs = 1;
    })
    .await;
    let (addr, _stop) = spawn(st).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for i in 0..200 {
            let mut s = TcpStream::connect(addr).unwrap();
            if i % 4 == 0 {
                // Slow: headers begun, never finished.
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            held.push(s);
        }
        let start = Instant::now();
        let line = status_line(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        );
        let served_after = start.elapsed();
        // A keep-alive connection that made one request and then idles is closed too.
        let mut kept = TcpStream::connect(addr).unwrap();
        kept.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let first = kept.read(&mut buf).unwrap();
        let t = Instant::now();
        let mut closed = false;
        while t.elapsed() < Duration::from_secs(10) {
            match kept.read(&mut buf) {
                Ok(0) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        (line, served_after, first, closed, t.elapsed())
    })
    .await
    .unwrap();
    let (line, served_after, first, closed, idle_for) = outcome;
    assert!(line.contains(" 200 "), "{line:?}");
    // 200 held connections, 16 at a time, each dropped after 1 s: about 13 s at worst.
    assert!(served_after < Duration::from_secs(25), "{served_after:?}");
    assert!(first > 0);
    assert!(closed, "an idle keep-alive connection was kept open");
    assert!(idle_for < Duration::from_secs(5), "{idle_for:?}");
}

/// A request whose body never finishes arriving gets 408 after `limits.request_timeout_secs`.
#[tokio::test]
async fn a_request_that_never_finishes_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let r = app(state(dir.path(), |c| c.limits.request_timeout_secs = 1).await);
    let never = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let req = Request::post("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from_stream(never))
        .unwrap();
    let start = Instant::now();
    let (status, _, body) = send(&r, req).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert!(body.contains("limits.request_timeout_secs"), "{body}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// An authenticated call is charged to its token's own bucket, not to the address: two tokens
/// behind one address each get their burst. Calls whose credentials do not authenticate share
/// a bucket of the address, and once it is spent they are refused before any authentication
/// work: made-up tokens do not buy fresh buckets.
#[tokio::test]
async fn each_token_has_its_own_rate_bucket_and_made_up_tokens_do_not_buy_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), |c| {
        c.limits.rate_per_sec = 1;
        c.limits.rate_burst = 3;
    })
    .await;
    let admin = common::admin_token(&st);
    let r = sluice_server::app(st);
    let call = |ip: &str, token: Option<&str>, path: &str| {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = b.body(Body::empty()).unwrap();
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        req
    };
    // Two tokens, made in-process (no peer address: not limited).
    let mut tokens = Vec::new();
    for who in ["ci-1", "ci-2"] {
        let body = serde_json::json!({"subject": who, "bindings": ["*=viewer"]}).to_string();
        let req = Request::post("/v1/tokens")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = send(&r, req).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    let (t1, t2) = (&tokens[0], &tokens[1]);

    // Token 1 from one address: its burst, then 429.
    for _ in 0..3 {
        let (status, _, body) = send(&r, call("10.0.0.1", Some(t1), "/v1/jobs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, h, body) = send(&r, call("10.0.0.1", Some(t1), "/v1/jobs")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(h.contains_key(header::RETRY_AFTER));
    // ...from another address too: the bucket is the token's.
    let (status, _, _) = send(&r, call("10.0.0.9", Some(t1), "/v1/jobs")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Token 2 from the same address has its own burst; so do calls without credentials.
    for _ in 0..3 {
        let (status, _, body) = send(&r, call("10.0.0.1", Some(t2), "/v1/jobs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _, body) = send(&r, call("10.0.0.1", None, "/healthz")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Made-up tokens from another address: 401 for the burst, then 429 before the lookup.
    for i in 0..3 {
        let fake = format!("sluice_{i:064x}");
        let (status, _, body) = send(&r, call("10.0.0.2", Some(&fake), "/v1/jobs")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let fake = format!("sluice_{:064x}", 99);
    let (status, h, body) = send(&r, call("10.0.0.2", Some(&fake), "/v1/jobs")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(h.contains_key(header::RETRY_AFTER));
    // That address's calls without credentials are a bucket of their own.
    let (status, _, _) = send(&r, call("10.0.0.2", None, "/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}
