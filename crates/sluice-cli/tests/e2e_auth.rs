//! Authentication end to end with the `sluice` binary: the bootstrap token found by the CLI on
//! the same host without flags (the README's two commands), `sluice token create / list /
//! revoke`, a namespace token refused outside its namespace, a revoked token refused at once,
//! `sluice audit` and `sluice whoami`.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, free_port};

fn job(name: &str, ns: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n"
    )
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn tokens_from_the_cli() {
    let server = Server::start("[security.command_jobs]\nnamespaces = [\"*\"]\n");
    let who = server.ok(&["whoami"]);
    assert!(
        who.contains("bootstrap-admin") && who.contains("*=admin"),
        "{who}"
    );

    // A submitter token for namespace `a`, valid 30 days, printed once on stdout.
    let out = server.cli(&[
        "token",
        "create",
        "--namespace",
        "a",
        "--role",
        "submitter",
        "--expires",
        "30d",
        "--subject",
        "team-a",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("sluice_"), "{token}");
    let info = String::from_utf8_lossy(&out.stderr);
    let id = info
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .expect("the token id on stderr")
        .to_string();

    // It submits into `a`, not into `b`, and sees only `a`.
    let fa = server.write("a.yaml", &job("in-a", "a"));
    let fb = server.write("b.yaml", &job("in-b", "b"));
    let out = server.cli_as(&["submit", &fa], &token);
    assert!(out.status.success(), "{}", text(&out));
    let job_a = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = server.cli_as(&["submit", &fb], &token);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("HTTP 403") && msg.contains("\"b\""), "{msg}");
    let job_b = server.submit(&fb, &[]);
    let out = server.cli_as(&["get", &job_b], &token);
    assert!(
        !out.status.success() && text(&out).contains("HTTP 404"),
        "{}",
        text(&out)
    );
    let listed = String::from_utf8_lossy(&server.cli_as(&["get"], &token).stdout).into_owned();
    assert!(
        listed.contains(&job_a) && !listed.contains(&job_b),
        "{listed}"
    );
    let out = server.cli_as(&["token", "list"], &token);
    assert!(text(&out).contains("HTTP 403"), "{}", text(&out));

    // Listed (no secret), audited, then revoked: refused at once.
    let list = server.ok(&["token", "list"]);
    assert!(list.contains(&id) && list.contains("a=submitter"), "{list}");
    assert!(!list.contains(&token["sluice_".len()..]), "{list}");
    let audit = server.ok(&["audit", "--actor", &id]);
    assert!(
        audit.contains("job.submit") && audit.contains(&job_a),
        "{audit}"
    );
    let audit = server.ok(&["audit", "--action", "token.create"]);
    assert!(audit.contains(&id), "{audit}");
    server.ok(&["token", "revoke", &id]);
    let out = server.cli_as(&["get"], &token);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("HTTP 401") && msg.contains("revoked"), "{msg}");
    let audit = server.ok(&["audit", "--action", "token.revoke"]);
    assert!(audit.contains(&id), "{audit}");

    // The token file is found through SLUICE_DATA_DIR, without SLUICE_TOKEN.
    let out = Command::new(BIN)
        .args(["whoami"])
        .env("SLUICE_SERVER", server.url())
        .env_remove("SLUICE_TOKEN")
        .env("SLUICE_DATA_DIR", server.dir.path().join("data"))
        .current_dir(server.dir.path())
        .output()
        .unwrap();
    assert!(text(&out).contains("bootstrap-admin"), "{}", text(&out));
    // No token anywhere: 401 with how to give one.
    let out = Command::new(BIN)
        .args(["get"])
        .env("SLUICE_SERVER", server.url())
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_DATA_DIR")
        .current_dir(server.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("HTTP 401") && msg.contains("SLUICE_TOKEN"),
        "{msg}"
    );
}

/// The README's demo: `sluice server` in a directory, then `sluice submit` in the same
/// directory, with no flag and no variable: the CLI reads `.sluice/admin.token`.
#[test]
fn the_readme_demo_needs_no_token_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = Command::new(BIN)
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("SLUICE_DATA_DIR")
        // The demo's job here is a command, which the server runs only where allowed.
        .env("SLUICE_SECURITY__COMMAND_JOBS__NAMESPACES", "[\"default\"]")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !common::listening(port) {
        assert!(Instant::now() < deadline, "server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token_file = dir.path().join(".sluice/admin.token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::write(dir.path().join("j.yaml"), job("demo", "default")).unwrap();
    let out = Command::new(BIN)
        .args(["submit", "j.yaml"])
        .env("SLUICE_SERVER", &url)
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_DATA_DIR")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("admin.token"), "{log}");
    assert!(
        !log.contains(
            &std::fs::read_to_string(&token_file)
                .unwrap()
                .trim()
                .to_string()
        ),
        "the token is not in the log"
    );
}

#[test]
fn authentication_off_is_refused_off_loopback_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"0.0.0.0:{}\"\ndata_dir = \"{}\"\n[auth]\nenabled = false\n",
            free_port(),
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("auth.enabled") && msg.contains("loopback"),
        "{msg}"
    );
    // On loopback it starts, with a warning, and writes no token file.
    let server = Server::start("[auth]\nenabled = false\n");
    let out = Command::new(BIN)
        .args(["whoami"])
        .env("SLUICE_SERVER", server.url())
        .env_remove("SLUICE_TOKEN")
        .output()
        .unwrap();
    assert!(text(&out).contains("anonymous"), "{}", text(&out));
    assert!(
        server.log().contains("AUTHENTICATION IS OFF"),
        "{}",
        server.log()
    );
    assert!(!server.token_path().exists());
}
