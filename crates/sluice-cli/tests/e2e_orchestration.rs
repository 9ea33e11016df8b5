//! Retries, the dead-letter queue, purge and schedules end to end: the real `sluice` binary as a
//! server and as the CLI, real local command jobs. Backoffs are a second or two (spec values);
//! nothing here asserts how long anything took.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"2g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

fn job_yaml(name: &str, labels: &str, retry: &str, script: &str, memory: &str) -> String {
    format!(
        "name: {name}\nlabels: {{{labels}}}\n{retry}command:\n  argv: [sh, -c, {script:?}]\n  cpu: 250m\n  memory: {memory}\n"
    )
}

/// A script that counts its runs in `file` and succeeds from run `ok_from` on (else `exit code`).
fn counting(file: &std::path::Path, ok_from: u32, code: u32) -> String {
    format!(
        "n=$(cat {f} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {f}; echo run $n; \
         if [ $n -ge {ok_from} ]; then exit 0; else exit {code}; fi",
        f = file.display()
    )
}

fn timeline(job: &Value) -> Vec<(String, String, String)> {
    job["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            (
                e["at"].as_str().unwrap_or_default().to_string(),
                e["to"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn dead_letters(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["dlq", "list", "-o", "json"];
    a.extend_from_slice(args);
    let v: Value = serde_json::from_str(&server.ok(&a)).expect("dlq json");
    v.as_array().cloned().unwrap_or_default()
}

/// Polls until the job is in the dead-letter queue, at most `secs`.
fn wait_dead_lettered(server: &Server, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(d) = dead_letters(server, &[])
            .into_iter()
            .find(|d| d["job"]["id"] == id)
        {
            return d;
        }
        if Instant::now() > deadline {
            panic!(
                "job {id} not dead-lettered within {secs}s\n{}\nserver log:\n{}",
                server.ok(&["describe", id]),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn retries_dead_letter_queue_requeue_and_oom() {
    let server = Server::start(CONFIG);
    let dir = server.dir.path().to_path_buf();

    // 1. Fails twice, then succeeds: attempt 3, with a backoff before each retry.
    let retry =
        "retry:\n  maxAttempts: 3\n  backoff: {initial: 1s, factor: 2, max: 2s}\n  jitter: 0\n";
    let flaky = server.submit(
        &server.write(
            "flaky.yaml",
            &job_yaml(
                "flaky",
                "t: flaky",
                retry,
                &counting(&dir.join("flaky.n"), 3, 1),
                "64m",
            ),
        ),
        &[],
    );
    // 2. Always fails (until a file appears): dead-lettered after 2 attempts.
    let fixed = dir.join("fixed");
    let broken = server.submit(
        &server.write(
            "broken.yaml",
            &job_yaml(
                "broken",
                "t: broken",
                "retry: {maxAttempts: 2, backoff: {initial: 1s}, jitter: 0}\n",
                &format!("echo checking; test -f {}", fixed.display()),
                "64m",
            ),
        ),
        &[],
    );
    // 3. Killed like the OOM killer does (exit 137) once: retried with twice the memory.
    let oom = server.submit(
        &server.write(
            "oom.yaml",
            &job_yaml(
                "oom",
                "t: oom",
                "retry: {maxAttempts: 2, backoff: {initial: 1s}, retryOn: [oom], oomMemoryFactor: 2, oomMemoryCap: 1g}\n",
                &counting(&dir.join("oom.n"), 2, 137),
                "64m",
            ),
        ),
        &[],
    );

    assert_eq!(server.wait_for(&flaky, &["succeeded"], 60), "succeeded");
    let j = server.job(&flaky);
    assert_eq!(j["attempt"], 3);
    assert_eq!(
        std::fs::read_to_string(dir.join("flaky.n")).unwrap().trim(),
        "3"
    );
    let tl = timeline(&j);
    let retries: Vec<usize> = (0..tl.len())
        .filter(|&i| tl[i].2.starts_with("retry:"))
        .collect();
    assert_eq!(retries.len(), 2, "{tl:#?}");
    for (n, &i) in retries.iter().enumerate() {
        let msg = &tl[i].2;
        assert!(
            msg.contains(&format!("attempt {} of 3 failed (application", n + 1)),
            "{msg}"
        );
        // "... after a backoff of 1.0 s, at 2026-...Z": the next attempt starts no earlier.
        let eligible = msg
            .split(", at ")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .expect("eligible time in the retry message")
            .trim()
            .to_string();
        let admitted = tl[i..]
            .iter()
            .find(|e| e.1 == "admitted")
            .expect("admitted after the retry");
        assert!(admitted.0 >= eligible, "{admitted:?} before {eligible}");
    }
    // Every attempt ran in its own run directory (its own log).
    for a in 1..=3 {
        let log = dir.join(format!("data/runs/{flaky}/{a}/output.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains(&format!("run {a}")),
            "{}: {text}",
            log.display()
        );
        // `sluice logs --attempt N` reads the same log through the API.
        let shown = server.ok(&["logs", &flaky, "--attempt", &a.to_string()]);
        assert!(shown.contains(&format!("run {a}")), "attempt {a}: {shown}");
        for other in (1..=3).filter(|o| *o != a) {
            assert!(
                !shown.contains(&format!("run {other}")),
                "attempt {a}: {shown}"
            );
        }
    }
    assert!(server.ok(&["logs", &flaky]).contains("run 3"));
    let d = server.ok(&["describe", &flaky]);
    assert!(d.contains("attempt 3 of 3"), "{d}");

    let dl = wait_dead_lettered(&server, &broken, 60);
    assert_eq!(dl["job"]["attempt"], 2);
    assert_eq!(dl["job"]["state"], "failed");
    assert_eq!(dl["failure_class"], "application");
    assert!(
        dl["reason"]
            .as_str()
            .unwrap()
            .contains("attempt limit reached (2 of 2)"),
        "{dl}"
    );
    let shown = server.ok(&["dlq", "show", &broken]);
    assert!(shown.contains("attempt limit reached"), "{shown}");
    assert!(shown.contains("exit code 1"), "the last error: {shown}");
    // Requeue runs it again (a new attempt, a fresh round), keeping its history.
    std::fs::write(&fixed, "").unwrap();
    let out = server.ok(&["dlq", "requeue", &broken]);
    assert!(out.contains("requeued 1"), "{out}");
    assert_eq!(server.wait_for(&broken, &["succeeded"], 60), "succeeded");
    let j = server.job(&broken);
    assert_eq!(j["attempt"], 3);
    let tl = timeline(&j);
    assert!(
        tl.iter().any(|e| e.2.contains("dead-lettered")),
        "history kept: {tl:#?}"
    );
    assert!(
        tl.iter()
            .any(|e| e.2.contains("requeued from the dead-letter queue"))
    );
    assert!(
        dead_letters(&server, &[])
            .iter()
            .all(|d| d["job"]["id"] != broken.as_str())
    );

    assert_eq!(server.wait_for(&oom, &["succeeded"], 60), "succeeded");
    let j = server.job(&oom);
    assert_eq!(j["attempt"], 2);
    assert_eq!(j["demand"]["total_memory_mib"], 128, "64 MiB doubled");
    let tl = timeline(&j);
    let r = tl
        .iter()
        .find(|e| e.2.starts_with("retry:"))
        .expect("a retry");
    assert!(
        r.2.contains("(oom:") && r.2.contains("64 MiB -> 128 MiB"),
        "{r:?}"
    );
}

#[test]
fn purge_refuses_without_a_filter_and_removes_exactly_the_matches() {
    let server = Server::start(CONFIG);
    // Dead letters: no retry policy, one attempt each.
    let mut dead = Vec::new();
    for (name, team) in [("dead-a1", "a"), ("dead-b", "b"), ("dead-a2", "a")] {
        let id = server.submit(
            &server.write(
                &format!("{name}.yaml"),
                &job_yaml(name, &format!("team: {team}"), "", "exit 2", "32m"),
            ),
            &[],
        );
        dead.push(id);
    }
    for id in &dead {
        wait_dead_lettered(&server, id, 60);
    }
    let out = server.cli(&["dlq", "purge"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("explicit filter"), "{err}");
    assert_eq!(dead_letters(&server, &[]).len(), 3);
    let dry = server.ok(&["dlq", "purge", "-l", "team=a", "--dry-run"]);
    assert!(dry.contains("would purge 2"), "{dry}");
    assert!(
        dry.contains(&dead[0]) && dry.contains(&dead[2]) && !dry.contains(&dead[1]),
        "{dry}"
    );
    assert_eq!(
        dead_letters(&server, &[]).len(),
        3,
        "a dry run deletes nothing"
    );
    let done = server.ok(&["dlq", "purge", "-l", "team=a"]);
    assert!(done.contains("purged 2"), "{done}");
    let left: Vec<String> = dead_letters(&server, &[])
        .iter()
        .map(|d| d["job"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [dead[1].clone()]);
    assert!(
        !server.cli(&["get", &dead[0]]).status.success(),
        "deleted with its history"
    );
    // One by id.
    let done = server.ok(&["dlq", "purge", &dead[1]]);
    assert!(done.contains("purged 1"), "{done}");
    assert!(dead_letters(&server, &[]).is_empty());

    // Queued jobs: a blocker holds both cores, three wait.
    let blocker = server.submit(
        &server.write(
            "blocker.yaml",
            "name: blocker\ncommand: {argv: [sleep, \"60\"], cpu: \"2\", memory: 32m}\n",
        ),
        &[],
    );
    server.wait_for(&blocker, &["running"], 30);
    let mut queued = Vec::new();
    for (name, team) in [("q-a1", "a"), ("q-b", "b"), ("q-a2", "a")] {
        queued.push(server.submit(
            &server.write(
                &format!("{name}.yaml"),
                &job_yaml(name, &format!("team: {team}"), "", "true", "32m"),
            ),
            &[],
        ));
    }
    let out = server.cli(&["purge"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("explicit filter"));
    let dry = server.ok(&["purge", "-l", "team=a", "--dry-run"]);
    assert!(dry.contains("would purge 2"), "{dry}");
    for id in &queued {
        assert_eq!(server.state(id), "queued");
    }
    let done = server.ok(&["purge", "-l", "team=a"]);
    assert!(done.contains("purged 2"), "{done}");
    assert!(!server.cli(&["get", &queued[0]]).status.success());
    assert!(!server.cli(&["get", &queued[2]]).status.success());
    assert_eq!(server.state(&queued[1]), "queued");
    server.ok(&["cancel", &blocker]);
    assert_eq!(server.wait_for(&queued[1], &["succeeded"], 60), "succeeded");
}

#[test]
fn schedules_from_the_cli() {
    let server = Server::start(CONFIG);
    let example = format!(
        "{}/../../examples/schedules/nightly-report.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = server.ok(&["schedule", "create", &example]);
    assert_eq!(out.trim(), "default/nightly-report");
    let get = server.ok(&["schedule", "get", "nightly-report"]);
    assert!(
        get.contains("Forbid") && get.contains("Europe/Berlin"),
        "{get}"
    );
    let next: Vec<&str> = get
        .lines()
        .skip_while(|l| !l.starts_with("Next runs:"))
        .skip(1)
        .collect();
    assert_eq!(next.len(), 5, "{get}");
    let list = server.ok(&["schedule", "list"]);
    assert!(list.contains("nightly-report"), "{list}");
    server.ok(&["schedule", "suspend", "nightly-report"]);
    assert!(
        server
            .ok(&["schedule", "get", "nightly-report"])
            .contains("suspended")
    );
    // Run now, even while suspended.
    let id = server
        .ok(&["schedule", "trigger", "nightly-report"])
        .trim()
        .to_string();
    assert_eq!(server.wait_for(&id, &["succeeded"], 60), "succeeded");
    assert_eq!(
        server.job(&id)["labels"]["sluice.io/schedule"],
        "nightly-report"
    );
    server.ok(&["schedule", "resume", "nightly-report"]);
    server.ok(&["schedule", "delete", "nightly-report"]);
    assert!(
        !server
            .cli(&["schedule", "get", "nightly-report"])
            .status
            .success()
    );

    // A schedule that fires every two seconds runs real jobs, each linked to it.
    let every = server.write(
        "tick.yaml",
        "name: tick\nschedule: \"*/2 * * * * *\"\nconcurrencyPolicy: Forbid\ntemplate:\n  command: {argv: [echo, tock], cpu: 100m, memory: 32m}\n",
    );
    server.ok(&["schedule", "create", &every]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Value = serde_json::from_str(&server.ok(&[
            "get",
            "-l",
            "sluice.io/schedule=tick",
            "-o",
            "json",
        ]))
        .unwrap();
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] == "succeeded")
            .count();
        if done >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "runs: {runs}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    server.ok(&["schedule", "delete", "tick"]);
    // The ScheduledSparkApplication example is accepted as is.
    let ssa = format!(
        "{}/../../examples/schedules/spark-pi-scheduled.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    assert_eq!(
        server.ok(&["schedule", "create", &ssa]).trim(),
        "default/spark-pi-scheduled"
    );
}

#[test]
fn a_retry_waiting_on_backoff_survives_sigkill() {
    let mut server = Server::start(CONFIG);
    let dir = server.dir.path().to_path_buf();
    let id = server.submit(
        &server.write(
            "later.yaml",
            &job_yaml(
                "later",
                "t: later",
                "retry: {maxAttempts: 2, backoff: {initial: 3s}, jitter: 0}\n",
                &counting(&dir.join("later.n"), 2, 1),
                "32m",
            ),
        ),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.job(&id)["attempt"] != 2 {
        assert!(
            Instant::now() < deadline,
            "{}",
            server.ok(&["describe", &id])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.state(&id), "queued");
    server.kill9();
    server.spawn();
    assert_eq!(server.wait_for(&id, &["succeeded"], 60), "succeeded");
    assert_eq!(server.job(&id)["attempt"], 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("later.n")).unwrap().trim(),
        "2"
    );
}
