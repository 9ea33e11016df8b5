//! HTTPS end to end: the real `sluice` binary serves with a certificate made in the test (by a
//! CA made in the test), and the CLI reaches it with `--server https://...` and the CA in
//! `--ca-file` or `SLUICE_CA_FILE`; without the CA it fails with a message about the
//! certificate and how to give the CA.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a server certificate it signed for localhost and 127.0.0.1, written to `dir`:
/// `ca.pem`, `tls.crt`, `tls.key`.
fn make_certificates(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sluice e2e CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "sluice e2e");
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
}

/// `sluice ARGS` against `url` with `token`, and `ca` as SLUICE_CA_FILE when given.
fn sluice(url: &str, token: &str, ca_env: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("SLUICE_SERVER", url)
        .env("SLUICE_TOKEN", token)
        .env_remove("SLUICE_CA_FILE")
        .stdin(Stdio::null());
    if let Some(ca) = ca_env {
        c.env("SLUICE_CA_FILE", ca);
    }
    c.output().expect("run sluice")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_cli_talks_https_with_the_servers_ca_and_refuses_it_without() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let d = certs.path().display();
    let s = Server::start(&format!(
        "[tls]\ncert_file = \"{d}/tls.crt\"\nkey_file = \"{d}/tls.key\"\n"
    ));
    let token = s.token();
    assert!(
        s.log()
            .contains(&format!("listening on https://127.0.0.1:{}", s.port)),
        "{}",
        s.log()
    );
    let ca = certs.path().join("ca.pem");
    let ca_arg = ca.display().to_string();

    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}", s.port);
        // The CA by flag.
        let out = sluice(&url, &token, None, &["whoami", "--ca-file", &ca_arg]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("*=admin"),
            "{}",
            text(&out)
        );
        // The CA from the environment; a list over TLS.
        let out = sluice(&url, &token, Some(&ca), &["get"]);
        assert!(out.status.success(), "{}", text(&out));
    }

    let url = format!("https://localhost:{}", s.port);
    // Without the CA: the system's CAs do not know it.
    let out = sluice(&url, &token, None, &["whoami"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate is not trusted") && err.contains("--ca-file"),
        "{}",
        text(&out)
    );

    // Another CA: refused the same way.
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path());
    let out = sluice(&url, &token, Some(&other.path().join("ca.pem")), &["get"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate is not trusted"),
        "{}",
        text(&out)
    );

    // A CA file that is not one.
    let bad = s.write("bad.pem", "hello\n");
    let out = sluice(&url, &token, None, &["whoami", "--ca-file", &bad]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.pem"),
        "{}",
        text(&out)
    );

    // The Python client (clients/python) over HTTPS: with SLUICE_CA_FILE, and refused without.
    let py = |ca: Option<&Path>| {
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "from sluice_client import Client; print(len(Client().list()['jobs']))",
        ])
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python"),
        )
        .env("SLUICE_SERVER", &url)
        .env("SLUICE_TOKEN", &token)
        .env_remove("SLUICE_CA_FILE")
        .stdin(Stdio::null());
        if let Some(ca) = ca {
            c.env("SLUICE_CA_FILE", ca);
        }
        c.output().expect("python3")
    };
    let out = py(Some(&ca));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        text(&out)
    );
    let out = py(None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        text(&out)
    );

    // Plain HTTP to the HTTPS port gets no answer the CLI could take for one.
    let out = sluice(
        &format!("http://127.0.0.1:{}", s.port),
        &token,
        None,
        &["whoami"],
    );
    assert!(!out.status.success(), "{}", text(&out));
}
