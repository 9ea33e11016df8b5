//! HTTPS (`[tls]`): a real server (`run_supervised` on a real listener) with certificates made
//! in the test by a CA made in the test; a rustls client that trusts only that CA does the
//! handshake and an authenticated API call, sees the new certificate after the files change,
//! and the old one after a change to files that cannot be used.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_server::config::{Config, TlsConfig};
use sluice_server::{AppState, ServerError, run_supervised};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA made in the test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(p, key),
            der: cert.der().clone(),
            pem: cert.pem(),
        }
    }

    /// A server certificate for localhost and 127.0.0.1 with this common name and serial:
    /// (certificate PEM, key PEM, certificate DER).
    fn leaf(&self, cn: &str, serial: u64) -> (String, String, CertificateDer<'static>) {
        let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }
}

/// Writes a pair to `dir/tls.crt` and `dir/tls.key`: their paths.
fn write_pair(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

async fn state(dir: &Path, cert: PathBuf, key: PathBuf) -> AppState {
    let c = Config {
        tls: TlsConfig {
            cert_file: Some(cert),
            key_file: Some(key),
        },
        ..Config::default()
    };
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

fn client(ca: &Ca) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Full handshakes only: a resumed session shows the certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects over TLS as `localhost` and sends one request: the certificate the server
/// presented, and the answer (status line to body).
async fn https_get(
    tls: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<(CertificateDer<'static>, String), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut s = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let presented = s.get_ref().1.peer_certificates().unwrap()[0].clone();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .expect("the answer within 10 s")?;
    Ok((presented, answer))
}

#[tokio::test]
async fn https_serves_an_authenticated_api_call_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key, der) = ca.leaf("sluice-one", 1);
    let (c, k) = write_pair(dir.path(), &cert, &key);
    let st = state(dir.path(), c, k).await;
    let token = common::admin_token(&st);
    let (addr, _stop) = spawn(st).await;
    let tls = client(&ca);

    let (presented, answer) = https_get(&tls, addr, "/v1/whoami", Some(&token))
        .await
        .unwrap();
    assert_eq!(presented, der);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["admin"], true, "{body}");
    assert!(
        body["actor"].as_str().unwrap().starts_with("tok_"),
        "{body}"
    );

    // Authentication holds over TLS as over HTTP.
    let (_, answer) = https_get(&tls, addr, "/v1/whoami", None).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );

    // A client that does not trust the CA fails the handshake.
    let stranger = client(&Ca::new());
    let e = https_get(&stranger, addr, "/v1/whoami", Some(&token))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn a_changed_certificate_is_served_to_the_next_connection_and_a_bad_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert1, key1, der1) = ca.leaf("sluice-one", 1);
    let (c, k) = write_pair(dir.path(), &cert1, &key1);
    let st = state(dir.path(), c.clone(), k.clone()).await;
    let token = common::admin_token(&st);
    let (addr, _stop) = spawn(st).await;
    let tls = client(&ca);
    assert_eq!(https_get(&tls, addr, "/", None).await.unwrap().0, der1);

    // New files: the next connection gets the new certificate.
    let (cert2, key2, der2) = ca.leaf("sluice-two", 2);
    write_pair(dir.path(), &cert2, &key2);
    let (presented, answer) = https_get(&tls, addr, "/v1/whoami", Some(&token))
        .await
        .unwrap();
    assert_eq!(presented, der2);
    assert_ne!(der1, der2);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A certificate file that is not PEM: the previous certificate goes on.
    std::fs::write(&c, "not a certificate").unwrap();
    assert_eq!(https_get(&tls, addr, "/", None).await.unwrap().0, der2);

    // A new certificate whose key is not yet written (a half-done rotation): kept out.
    let (cert3, key3, der3) = ca.leaf("sluice-three", 3);
    std::fs::write(&c, &cert3).unwrap();
    assert_eq!(https_get(&tls, addr, "/", None).await.unwrap().0, der2);
    // Then its key: served.
    std::fs::write(&k, &key3).unwrap();
    assert_eq!(https_get(&tls, addr, "/", None).await.unwrap().0, der3);

    // Files removed: the certificate in memory goes on.
    std::fs::remove_file(&c).unwrap();
    std::fs::remove_file(&k).unwrap();
    assert_eq!(https_get(&tls, addr, "/", None).await.unwrap().0, der3);
}

#[tokio::test]
async fn a_certificate_that_cannot_be_used_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, _, _) = ca.leaf("sluice-one", 1);
    let (_, other_key, _) = ca.leaf("sluice-two", 2);
    let (c, k) = write_pair(dir.path(), &cert, &other_key);
    let st = state(dir.path(), c.clone(), k.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = run_supervised(st, listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Tls(_)), "{e}");
    assert!(e.to_string().contains("cannot be used together"), "{e}");

    std::fs::write(&c, "-----BEGIN GARBAGE-----\n").unwrap();
    let e = sluice_server::tls::Tls::new(&c, &k)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("tls.crt") && e.contains("not a PEM"), "{e}");
    // A key where the certificate should be.
    std::fs::write(&c, &other_key).unwrap();
    let e = sluice_server::tls::Tls::new(&c, &k)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("tls.crt") && e.contains("no certificate"), "{e}");
    std::fs::write(&c, &cert).unwrap();
    std::fs::write(&k, &cert).unwrap();
    let e = sluice_server::tls::Tls::new(&c, &k)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tls.key") && e.contains("no PEM private key"),
        "{e}"
    );
    let missing = dir.path().join("missing.key");
    let e = sluice_server::tls::Tls::new(&c, &missing)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.key"), "{e}");
}

#[test]
fn tls_needs_both_files_and_the_start_line_says_https() {
    let mut c = Config::default();
    c.tls.cert_file = Some("/etc/sluice/tls.crt".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("tls.key_file"), "{e}");
    c.tls.cert_file = None;
    c.tls.key_file = Some("/etc/sluice/tls.key".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("tls.cert_file"), "{e}");
    c.tls.cert_file = Some("/etc/sluice/tls.crt".into());
    c.validate().unwrap();

    let addr = "127.0.0.1:7467".parse().unwrap();
    let line = sluice_server::listening_line(addr, true, "sqlite://x.db", "local");
    assert!(
        line.starts_with("sluice listening on https://127.0.0.1:7467"),
        "{line}"
    );
    let line = sluice_server::listening_line(addr, false, "sqlite://x.db", "local");
    assert!(
        line.starts_with("sluice listening on http://127.0.0.1:7467"),
        "{line}"
    );
}

/// `kubectl kustomize` of a temporary overlay: `base` (an overlay of the repository) with the
/// components named.
fn kustomize_with(base: &str, components: &[&str]) -> Vec<serde_json::Value> {
    let root = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Kustomize takes only relative paths: from the temporary directory up to / and down.
    let up = "../".repeat(dir.path().components().count() - 1);
    let rel = |p: &str| {
        format!(
            "{up}{}/{p}",
            root.display().to_string().trim_start_matches('/')
        )
    };
    let mut k = format!("resources:\n  - {}\n", rel(base));
    if !components.is_empty() {
        k.push_str("components:\n");
        for c in components {
            k.push_str(&format!("  - {}\n", rel(c)));
        }
    }
    std::fs::write(dir.path().join("kustomization.yaml"), k).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("kubectl kustomize: {e} (kubectl must be installed)"));
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// The deploy component `deploy/components/tls` mounts the TLS Secret, points `[tls]` at its
/// files through the environment (read as the server reads it), and makes the probes speak
/// HTTPS, in both overlays; without it nothing of TLS is there.
#[test]
// figment::Jail fixes the closure's error type (figment::Error), which clippy finds large.
#[allow(clippy::result_large_err)]
fn the_deploy_tls_component_mounts_the_secret_and_sets_tls() {
    for overlay in ["deploy/overlays/sqlite", "deploy/overlays/postgres"] {
        let docs = kustomize_with(overlay, &["deploy/components/tls"]);
        let d = docs
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "sluice")
            .unwrap();
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let plain_docs = kustomize_with(overlay, &[]);
        let plain_container = &plain_docs
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "sluice")
            .unwrap()["spec"]["template"]["spec"]["containers"][0];
        let env: std::collections::BTreeMap<String, String> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
            .collect();
        let cert = env["SLUICE_TLS__CERT_FILE"].clone();
        let key = env["SLUICE_TLS__KEY_FILE"].clone();
        // The files are in the Secret's volume.
        let secret_vol = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["secret"]["secretName"] == "sluice-tls")
            .unwrap_or_else(|| panic!("{overlay}: no volume of the Secret sluice-tls"));
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == secret_vol["name"])
            .unwrap();
        let at = mount["mountPath"].as_str().unwrap();
        assert_eq!(cert, format!("{at}/tls.crt"), "{overlay}");
        assert_eq!(key, format!("{at}/tls.key"), "{overlay}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["scheme"], "HTTPS", "{overlay} {probe}");
            // Only the scheme changes: the path and port are the overlay's.
            let plain = &plain_container[probe]["httpGet"];
            assert!(plain["path"].is_string(), "{overlay} {probe}");
            assert_eq!(
                c[probe]["httpGet"]["path"], plain["path"],
                "{overlay} {probe}"
            );
            assert_eq!(
                c[probe]["httpGet"]["port"], plain["port"],
                "{overlay} {probe}"
            );
        }
        // The rest of the container is the overlay's.
        assert_eq!(c["args"][0], "server", "{overlay}");
        // The variables are the server's [tls] keys.
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLUICE_TLS__CERT_FILE", &cert);
            jail.set_env("SLUICE_TLS__KEY_FILE", &key);
            let c = Config::load(None).unwrap();
            assert_eq!(
                c.tls.files(),
                Some((Path::new(&cert), Path::new(&key))),
                "{overlay}"
            );
            Ok(())
        });

        // Without the component: plain HTTP, no Secret needed.
        let plain = kustomize_with(overlay, &[]);
        let d = plain
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "sluice")
            .unwrap();
        let text = serde_json::to_string(d).unwrap();
        assert!(
            !text.contains("sluice-tls") && !text.contains("SLUICE_TLS") && !text.contains("HTTPS"),
            "{overlay}: {text}"
        );
    }
}

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

/// The identity provider's keys over HTTPS (served by this crate's own TLS accept loop with a
/// certificate of a CA made here): fetched when `auth.oidc.jwks_ca_file` names that CA, and
/// refused (503, nothing fetched) with the system's CAs.
#[tokio::test]
async fn a_jwks_url_over_https_is_checked_against_jwks_ca_file() {
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key, _) = ca.leaf("idp", 7);
    let (c, k) = write_pair(dir.path(), &cert, &key);
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();

    // The provider: one Ed25519 key in its JWKS.
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "alg": "EdDSA", "x": b64url(pair.public_key().as_ref())}]})
    .to_string();
    let idp = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let j = jwks.clone();
            async move { j }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/certs", listener.local_addr().unwrap());
    let tls = sluice_server::tls::Tls::new(&c, &k).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let limits = sluice_server::config::LimitsConfig::default();
        sluice_server::transport::serve(listener, idp, &limits, Some(tls), async move {
            let _ = stop_rx.await;
        })
        .await
    });

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let exp = sluice_server::time::now_ms() / 1000 + 600;
    let claims = serde_json::json!({"iss": "https://idp", "aud": "sluice", "sub": "alice",
        "exp": exp, "groups": ["g"]});
    let jwt = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(doc.as_ref()),
    )
    .unwrap();

    for (with_ca, want) in [(true, 200), (false, 503)] {
        let sub = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.auth.oidc = Some(sluice_server::config::OidcConfig {
            issuer: "https://idp".into(),
            audience: "sluice".into(),
            jwks_url: Some(url.clone()),
            jwks_ca_file: if with_ca {
                dir.path().join("ca.pem")
            } else {
                Default::default()
            },
            roles: [("g".to_string(), vec!["*=viewer".to_string()])].into(),
            ..Default::default()
        });
        let st = common::local_state(sub.path(), 1000, 1024, config).await;
        let r = sluice_server::app(st);
        let req = axum::http::Request::get("/v1/whoami")
            .header("authorization", format!("Bearer {jwt}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(r, req).await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "with the CA file: {with_ca}");
    }
    drop(stop_tx);
}
