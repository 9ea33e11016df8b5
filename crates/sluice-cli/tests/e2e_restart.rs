//! Crash safety: SIGKILL the server while jobs are queued and running, restart it, and find
//! every job: the running one re-attached (not started twice) and finished, one whose process
//! died while sluice was down marked failed with a clear reason, the queued ones run.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Server;

fn cmd(name: &str, cpu: &str, script: &str) -> String {
    format!(
        "name: {name}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: \"{cpu}\"\n  memory: 64m\n"
    )
}

#[test]
fn sigkill_loses_nothing_and_starts_nothing_twice() {
    let mut server = Server::start(
        "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"2g\"\n[scheduler]\ninterval_ms = 200\n[security.command_jobs]\nnamespaces = [\"*\"]\n",
    );
    let survivor = server.submit(
        &server.write(
            "s.yaml",
            &cmd("survivor", "1", "echo start; sleep 4; echo done"),
        ),
        &[],
    );
    let victim = server.submit(
        &server.write("v.yaml", &cmd("victim", "1", "echo start; sleep 60")),
        &[],
    );
    server.wait_for(&survivor, &["running"], 30);
    server.wait_for(&victim, &["running"], 30);
    let q1 = server.submit(
        &server.write("q1.yaml", &cmd("queued-one", "2", "echo q1")),
        &[],
    );
    let q2 = server.submit(
        &server.write("q2.yaml", &cmd("queued-two", "1", "echo q2")),
        &[],
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(server.state(&q1), "queued");
    assert_eq!(server.state(&q2), "queued");
    let victim_pid: i32 = server.job(&victim)["backend_ref"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("victim pid");

    server.kill9();
    // While sluice is down, the victim's process dies without leaving an exit code.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(victim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the victim's process group");
    server.spawn();

    // Every job is still there.
    for id in [&survivor, &victim, &q1, &q2] {
        let j = server.job(id);
        assert_eq!(j["id"], id.as_str());
    }
    assert_eq!(
        server.wait_for(&survivor, &["succeeded", "failed"], 30),
        "succeeded"
    );
    let log = server.ok(&["logs", &survivor]);
    assert_eq!(log.matches("start").count(), 1, "started twice?\n{log}");
    assert!(log.contains("done"), "{log}");
    let d = server.ok(&["describe", &survivor]);
    assert!(d.contains("re-attached"), "{d}");

    assert_eq!(
        server.wait_for(&victim, &["failed", "succeeded"], 30),
        "failed"
    );
    let v = server.job(&victim);
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(msg.contains("lost"), "{msg}");

    for id in [&q1, &q2] {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed"], 30),
            "succeeded"
        );
    }
    // History is complete: four jobs, each with its timeline from "queued".
    let listed = server.ok(&["get", "-o", "json"]);
    let jobs: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(jobs.as_array().map(Vec::len), Some(4));
    let tl = server.job(&q1)["timeline"].clone();
    let states: Vec<&str> = tl
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["to"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states.first(), Some(&"queued"), "{tl}");
    assert_eq!(states.last(), Some(&"succeeded"), "{tl}");
    let d = server.ok(&["describe", &q1]);
    assert!(d.contains("-> queued"), "{d}");
    let y = server.ok(&["get", &q1, "-o", "yaml"]);
    assert!(y.contains("state: succeeded"), "{y}");
    assert!(y.contains("demand:"), "{y}");
    // Nothing is queued any more; the queues table has only its header.
    let q = server.ok(&["queues"]);
    assert_eq!(q.lines().count(), 1, "{q}");
}

#[test]
fn admitted_job_is_submitted_once_after_a_crash() {
    // Queue a job, kill the server before and after its submission repeatedly: it runs once.
    let mut server = Server::start(
        "[backend]\nkind = \"local\"\ncores = 1\nmemory = \"1g\"\n[scheduler]\ninterval_ms = 50\n[security.command_jobs]\nnamespaces = [\"*\"]\n",
    );
    let id = server.submit(
        &server.write("once.yaml", &cmd("once", "1", "echo ran-once; sleep 2")),
        &[],
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        server.kill9();
        server.spawn();
    }
    assert_eq!(
        server.wait_for(&id, &["succeeded", "failed"], 30),
        "succeeded"
    );
    let log = server.ok(&["logs", &id]);
    assert_eq!(log.matches("ran-once").count(), 1, "{log}");
}
