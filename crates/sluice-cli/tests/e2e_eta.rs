//! `sluice describe` of a queued job shows when it is expected to start: a live server on the
//! simulated backend with one node of 2 cores, a job taking it for an hour (`maxRuntime: 1h`),
//! and a second one queued behind it.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;

const CONFIG: &str = r#"
[backend]
kind = "simulated"
start_delay = "0"
nodes = [{ prefix = "node", count = 1, cpu = "2", memory = "8g" }]

[scheduler]
interval_ms = 100

[security.command_jobs]
namespaces = ["t"]
"#;

fn job(name: &str) -> String {
    format!(
        "name: {name}\nnamespace: t\nmaxRuntime: 1h\nlabels: {{sluice.io/sim-duration: 50m}}\n\
         command:\n  argv: [\"true\"]\n  cpu: \"2\"\n  memory: 64m\n"
    )
}

#[test]
fn describe_shows_the_estimated_start_of_a_queued_job() {
    let mut server = Server::start(CONFIG);
    let first = server.submit(&server.write("a.yaml", &job("first")), &[]);
    server.wait_for(&first, &["running"], 30);
    let started = server.job(&first)["started_at"]
        .as_str()
        .unwrap()
        .to_string();
    let started = sluice_server::time::parse_time("started_at", &started).unwrap();
    let second = server.submit(&server.write("b.yaml", &job("second")), &[]);
    let mut seen = None;
    for _ in 0..100 {
        let d = server.ok(&["describe", &second]);
        if let Some(line) = d.lines().find(|l| l.starts_with("Expected:")) {
            seen = Some((line.to_string(), d));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (line, d) = seen.expect("describe never showed an estimated start");
    assert!(d.contains("Waiting:"), "{d}");
    // "Expected:   to start at 2026-...Z (in 59m 59s; if jobs run as long as expected)"
    let at = line
        .split("to start at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    let at = sluice_server::time::parse_time("estimated start", at).unwrap();
    assert!(
        (at - (started + 3_600_000)).abs() <= 2_000,
        "expected at {at}, the first job is expected to end at {}: {d}",
        started + 3_600_000
    );
    assert!(line.contains("(in "), "{line}");
    server.kill9();
}
