//! The Python client (`clients/python`): installed with pip into a temp directory, its tests
//! (`clients/python/tests/test_live.py`) run against a live sluice on the simulated backend, with
//! a token in `SLUICE_TOKEN`. They
//! also check every route and field the client uses against the server's `/openapi.json`.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

const CONFIG: &str = r#"
[backend]
kind = "simulated"
start_delay = "0"
nodes = [{ prefix = "node", count = 4, cpu = "16", memory = "64g" }]

[scheduler]
interval_ms = 100
"#;

#[test]
fn the_python_client_installs_and_passes_its_tests_against_a_live_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let client = root.join("clients/python");
    let site = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "--no-deps", "--target"])
        .arg(site.path())
        .arg(&client)
        .env("TMPDIR", build.path())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .expect("python3 -m pip");
    assert!(
        out.status.success(),
        "pip install clients/python:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(site.path().join("sluice_client/py.typed").exists());
    let mut server = Server::start(CONFIG);
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(client.join("tests"))
        .env("PYTHONPATH", site.path())
        .env("SLUICE_SERVER", server.url())
        // The server's bootstrap admin token, as a user would export it.
        .env("SLUICE_TOKEN", server.token())
        .output()
        .expect("python3 -m unittest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill9();
    assert!(
        out.status.success(),
        "{text}\nserver log:\n{}",
        server.log()
    );
    // The installed package was tested, not the source tree.
    assert!(!text.contains("ImportError"), "{text}");
    assert!(text.contains("Ran 7 tests"), "{text}");
}
