//! The client does not compile the server: `sluice` built without its `server` feature
//! depends on the API's wire types (sluice-api) and on none of sluice-server, axum or sqlx.
//! (scripts/test.sh compiles that build with clippy.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;

/// The names of the packages `sluice` depends on (normal dependencies, transitively) with
/// `features` (cargo's arguments), as `cargo tree` lists them.
fn dependencies(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-p",
            "sluice",
            "-e",
            "normal",
            "--offline",
            "--prefix",
            "none",
        ])
        .args(features)
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

const SERVER_ONLY: [&str; 3] = ["sluice-server", "axum", "sqlx"];

#[test]
fn the_client_only_build_compiles_no_server() {
    let deps = dependencies(&["--no-default-features"]);
    assert!(deps.contains("sluice-api"), "sluice-api missing: {deps:?}");
    assert!(deps.contains("reqwest"), "reqwest missing: {deps:?}");
    for name in SERVER_ONLY {
        assert!(
            !deps.contains(name),
            "{name} is in the client-only build: {deps:?}"
        );
    }
    // The server's other crates come only with it.
    for name in ["sluice-store", "sluice-backend", "kube"] {
        assert!(!deps.contains(name), "{name} is in the client-only build");
    }
}

#[test]
fn the_default_build_has_the_server() {
    // The same listing sees them when they are there: the check above can fail.
    let deps = dependencies(&[]);
    for name in SERVER_ONLY.iter().chain(&["sluice-api"]) {
        assert!(
            deps.contains(*name),
            "{name} missing from the default build: {deps:?}"
        );
    }
}
