//! The CLI at kubectl's level, end to end against a real server: `-o wide|json|yaml|name`,
//! `--no-headers`, elastic tables, `get -w`, `logs --tail/--since`, `apply -f`, `explain` and
//! `--context` profiles.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{BIN, Server};
use serde_json::Value;

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"2g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

fn command_job(name: &str, ns: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: 250m\n  memory: 256m\n"
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn get_prints_wide_json_yaml_name_and_elastic_tables() {
    let server = Server::start(CONFIG);
    let long_name = "a-job-with-a-name-much-longer-than-twenty-four-chars";
    let f1 = server.write("a.yaml", &command_job(long_name, "team-a", "echo hi"));
    let f2 = server.write("b.yaml", &command_job("b", "team-b", "echo hi"));
    let id1 = server.submit(&f1, &[]);
    let id2 = server.submit(&f2, &[]);
    server.wait_for(&id1, &["succeeded"], 60);
    server.wait_for(&id2, &["succeeded"], 60);

    // The table: a header, then a row per job; every column starts where its header does,
    // however long the cells (no fixed widths: the long name is whole).
    let table = server.ok(&["get"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header = lines[0];
    assert!(header.starts_with("ID "), "{table}");
    let name_col = header.find("NAME ").unwrap();
    let level_col = header.find("LEVEL").unwrap();
    assert!(level_col > name_col + long_name.len(), "{table}");
    for row in &lines[1..] {
        assert_eq!(
            row.as_bytes()[level_col - 1],
            b' ',
            "columns line up: {table}"
        );
        assert_ne!(row.as_bytes()[level_col], b' ', "columns line up: {table}");
    }
    assert!(table.contains(long_name), "{table}");

    // --no-headers: only the rows.
    let bare = server.ok(&["get", "--no-headers"]);
    assert_eq!(bare.lines().count(), 2, "{bare}");
    assert!(!bare.contains("NAMESPACE"), "{bare}");

    // -o wide: more columns, including the demand.
    let wide = server.ok(&["get", "-o", "wide", "-n", "team-b"]);
    let wl: Vec<&str> = wide.lines().collect();
    for col in ["ATTEMPT", "CPU", "MEMORY", "POSITION", "RUN", "REASON"] {
        assert!(wl[0].contains(col), "{wide}");
    }
    assert!(wl[1].split_whitespace().count() > 6, "{wide}");

    // -o name: job/NAMESPACE/ID, which get/describe/logs take back.
    let names = server.ok(&["get", "-o", "name"]);
    let mut got: Vec<&str> = names.lines().collect();
    got.sort_unstable();
    let mut want = vec![format!("job/team-a/{id1}"), format!("job/team-b/{id2}")];
    want.sort_unstable();
    assert_eq!(got, want);
    let one = server.ok(&["get", &format!("job/team-a/{id1}"), "-o", "json"]);
    let v: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v["id"], id1.as_str());
    assert!(
        server
            .ok(&["logs", &format!("job/team-b/{id2}")])
            .contains("hi")
    );

    // -o json / -o yaml of a list.
    let list: Value = serde_json::from_str(&server.ok(&["get", "-o", "json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let yaml = server.ok(&["get", "-o", "yaml", "-n", "team-a"]);
    assert!(yaml.contains(&format!("id: {id1}")), "{yaml}");

    // Other lists: queues and tokens take -o name and --no-headers too.
    let tokens = server.ok(&["token", "list", "-o", "name"]);
    assert!(
        tokens.lines().all(|l| l.starts_with("token/tok_")),
        "{tokens}"
    );
    let q = server.ok(&["queues", "--no-headers"]);
    assert!(!q.contains("NAMESPACE"), "{q}");
}

#[test]
fn get_watch_prints_the_table_then_a_line_per_change() {
    let server = Server::start(CONFIG);
    let f = server.write(
        "slow.yaml",
        &command_job("slow", "default", "sleep 1; echo done"),
    );
    let id = server.submit(&f, &[]);
    // Watch the one job until it has gone through its states; the watch ends on its timeout.
    let out = server.cli(&[
        "get",
        &id,
        "-w",
        "--watch-timeout",
        "12s",
        "--watch-interval",
        "200ms",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID"), "{text}");
    let states: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(4).unwrap_or(""))
        .collect();
    assert_eq!(states.last(), Some(&"succeeded"), "{text}");
    assert!(states.len() >= 2, "a line per change: {text}");
    // No line repeats the one before it: a line is printed only for a change.
    for w in lines[1..].windows(2) {
        assert_ne!(w[0], w[1], "{text}");
    }
    for l in &lines[1..] {
        assert!(l.starts_with(&id), "{text}");
    }

    // A list watch with -o name: the current jobs, then each job that appears.
    let child = Command::new(BIN)
        .args([
            "get",
            "-w",
            "-o",
            "name",
            "--watch-timeout",
            "8s",
            "--watch-interval",
            "200ms",
        ])
        .env("SLUICE_SERVER", server.url())
        .env("SLUICE_TOKEN", server.token())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let f2 = server.write("new.yaml", &command_job("new", "other", "echo new"));
    let id2 = server.submit(&f2, &[]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().next(),
        Some(format!("job/default/{id}").as_str()),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == format!("job/other/{id2}")),
        "the new job is printed: {text}"
    );
}

#[test]
fn logs_tail_and_since_read_the_end() {
    let server = Server::start(CONFIG);
    // 5000 numbered lines of about 100 bytes (more than the server's first window of the end,
    // 256 KiB), then lines with times: two old, two new.
    let script = "i=1; while [ $i -le 5000 ]; do echo \"line $i of a long log, padded to make it longer: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; i=$((i+1)); done; \
                  echo '2020-01-01T00:00:00Z old one'; echo '  old trace'; echo '2020-01-01T00:00:01Z old two'; \
                  now=$(date -u +%Y-%m-%dT%H:%M:%SZ); echo \"$now new one\"; echo '  new trace'; echo \"$now new two\"";
    let f = server.write("log.yaml", &command_job("log", "default", script));
    let id = server.submit(&f, &[]);
    server.wait_for(&id, &["succeeded"], 60);

    let tail = server.ok(&["logs", &id, "--tail", "3"]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 3, "{tail}");
    assert!(lines[0].ends_with("new one"), "{tail}");
    assert_eq!(lines[1], "  new trace");
    assert!(lines[2].ends_with("new two"), "{tail}");

    // 4000 lines (about 400 KiB): the server reads larger windows of the end until one holds
    // them.
    let many = server.ok(&["logs", &id, "--tail", "4000"]);
    assert_eq!(many.lines().count(), 4000);
    assert!(many.starts_with("line 1007 of"), "{}", &many[..80]);

    // --since: the lines timed within the last hour, with their untimed followers.
    let since = server.ok(&["logs", &id, "--since", "1h"]);
    let got: Vec<&str> = since.lines().collect();
    assert_eq!(got.len(), 3, "{since}");
    assert!(
        got[0].ends_with("new one") && got[2].ends_with("new two"),
        "{since}"
    );
    let both = server.ok(&["logs", &id, "--since", "1h", "--tail", "1"]);
    assert!(
        both.trim_end().ends_with("new two") && both.lines().count() == 1,
        "{both}"
    );

    // The whole log is still there without them.
    let all = server.ok(&["logs", &id]);
    assert_eq!(all.lines().count(), 5006);

    // A bad duration is refused, naming the option.
    let out = server.cli(&["logs", &id, "--since", "five minutes"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
    // The API says what is wrong with the parameter too.
    let http = reqwest_get(&server, &format!("/v1/jobs/{id}/logs?since=soon"));
    assert!(http.contains("since"), "{http}");

    // A log without times: --since keeps all of it and says so.
    let f = server.write(
        "plain.yaml",
        &command_job("plain", "default", "echo a; echo b"),
    );
    let plain = server.submit(&f, &[]);
    server.wait_for(&plain, &["succeeded"], 60);
    let out = server.cli(&["logs", &plain, "--since", "1m"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "a\nb\n");
    assert!(stderr(&out).contains("no time"), "{}", stderr(&out));
}

/// A GET with the admin token, through curl-free std: the CLI binary cannot show raw errors.
fn reqwest_get(server: &Server, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.token()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn schedule_doc(name: &str, ns: &str, expr: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\nschedule: {expr:?}\ntemplate:\n  command:\n    argv: [\"true\"]\n    cpu: 100m\n    memory: 32m\n"
    )
}

#[test]
fn apply_creates_configures_and_leaves_unchanged() {
    let server = Server::start(CONFIG);
    let both = format!(
        "{}---\n{}",
        schedule_doc("nightly", "etl", "0 2 * * *"),
        schedule_doc("hourly", "default", "@hourly")
    );
    let f = server.write("schedules.yaml", &both);
    assert_eq!(
        server.ok(&["apply", "-f", &f]),
        "schedule/etl/nightly created\nschedule/default/hourly created\n"
    );
    let before: Value = serde_json::from_str(
        &server.ok(&["schedule", "get", "nightly", "-n", "etl", "-o", "json"]),
    )
    .unwrap();
    // The same file again: nothing to do.
    assert_eq!(
        server.ok(&["apply", "-f", &f]),
        "schedule/etl/nightly unchanged\nschedule/default/hourly unchanged\n"
    );
    // One of them changed: configured, keeping its creation time; the other unchanged.
    let changed = format!(
        "{}---\n{}",
        schedule_doc("nightly", "etl", "30 3 * * *"),
        schedule_doc("hourly", "default", "@hourly")
    );
    let f2 = server.write("schedules2.yaml", &changed);
    assert_eq!(
        server.ok(&["apply", "-f", &f2]),
        "schedule/etl/nightly configured\nschedule/default/hourly unchanged\n"
    );
    let after: Value = serde_json::from_str(
        &server.ok(&["schedule", "get", "nightly", "-n", "etl", "-o", "json"]),
    )
    .unwrap();
    assert_eq!(after["schedule"], "30 3 * * *");
    assert_eq!(after["created_at"], before["created_at"]);
    assert_ne!(after["next_run_at"], before["next_run_at"]);
    assert!(
        after["next_runs"][0].as_str().unwrap().contains("03:30:00"),
        "{after}"
    );
    // Still two schedules, no duplicate.
    let names = server.ok(&["schedule", "list", "-o", "name"]);
    assert_eq!(names, "schedule/default/hourly\nschedule/etl/nightly\n");
    // Standard input works too.
    let mut child = Command::new(BIN)
        .args(["apply", "-f", "-"])
        .env("SLUICE_SERVER", server.url())
        .env("SLUICE_TOKEN", server.token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(schedule_doc("hourly", "default", "@hourly").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "schedule/default/hourly unchanged\n");

    // A job is not applied: it says to submit it, and the other documents still are.
    let mixed = format!(
        "{}---\n{}",
        command_job("pi", "default", "true"),
        schedule_doc("daily", "default", "@daily")
    );
    let f3 = server.write("mixed.yaml", &mixed);
    let out = server.cli(&["apply", "-f", &f3]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sluice submit"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "schedule/default/daily created\n");

    // A viewer may not apply: refused, nothing changed.
    let viewer = server
        .ok(&["token", "create", "-n", "etl", "-r", "viewer"])
        .trim()
        .to_string();
    let out = server.cli_as(&["apply", "-f", &f], &viewer);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let still: Value = serde_json::from_str(
        &server.ok(&["schedule", "get", "nightly", "-n", "etl", "-o", "json"]),
    )
    .unwrap();
    assert_eq!(still["schedule"], "30 3 * * *");
}

#[test]
fn explain_reads_the_servers_schema() {
    let server = Server::start(CONFIG);
    let t = server.ok(&["explain", "spec.executor.memory"]);
    assert!(t.contains("FIELD:       spark.executor.memory"), "{t}");
    assert!(t.contains("TYPE:        string (optional)"), "{t}");
    assert!(t.contains("spark.executor.memory"), "{t}");
    let t = server.ok(&["explain", "retry.retryOn"]);
    assert!(
        t.contains("ALLOWED:     submission, application, oom, watchdog, timeout"),
        "{t}"
    );
    let t = server.ok(&["explain", "retry.maxAttempts"]);
    assert!(
        t.contains("DEFAULT:     3") && t.contains("RANGE:       1 to 100"),
        "{t}"
    );
    let t = server.ok(&["explain", "spark.type"]);
    assert!(t.contains("ALLOWED:     Scala, Java, Python, R"), "{t}");
    let t = server.ok(&["explain", "command"]);
    assert!(
        t.contains("FIELDS:") && t.contains("argv") && t.contains("workingDir"),
        "{t}"
    );
    // An unknown field: refused, named, with the near ones.
    let out = server.cli(&["explain", "spark.executor.memroy"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("unknown field `spark.executor.memroy`"), "{e}");
    assert!(e.contains("did you mean spark.executor.memory"), "{e}");
}

/// The CLI with only `SLUICE_CONFIG` pointing at `config` (no server or token from the
/// environment), in `dir` (so no `.sluice/admin.token` is found there).
fn cli_with_config(
    dir: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SLUICE_SERVER")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_TOKEN_FILE")
        .env_remove("SLUICE_CA_FILE")
        .env_remove("SLUICE_CONTEXT")
        .env_remove("SLUICE_DATA_DIR")
        .env("SLUICE_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn contexts_choose_server_and_token_with_flags_and_env_first() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(CONFIG);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let config = dir.join("sluice/config.yaml");
    let token_file = dir.join("prod.token");
    std::fs::write(&token_file, format!("{}\n", server.token())).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: &[&str]| cli_with_config(dir, &config, args);
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };

    // Without a context: the default server, no token.
    let out = run(&["whoami"]);
    assert!(!out.status.success());

    let url = server.url();
    let tf = token_file.display().to_string();
    assert_eq!(
        ok(&[
            "config",
            "set-context",
            "prod",
            "--server",
            &url,
            "--token-file",
            &tf,
            "--current"
        ]),
        "context \"prod\" created\n"
    );
    // The file is private.
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(ok(&["whoami"]).contains("admin"));
    assert_eq!(ok(&["config", "current-context"]), "prod\n");

    // A second context pointing nowhere; --context picks it for one command.
    ok(&[
        "config",
        "set-context",
        "dead",
        "--server",
        "http://127.0.0.1:9",
    ]);
    let out = run(&["--context", "dead", "whoami"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));
    let list = ok(&["config", "get-contexts"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with('*') && l.contains("prod")),
        "{list}"
    );
    assert!(list.contains("dead"), "{list}");
    assert!(!list.contains(&server.token()), "never a token: {list}");
    ok(&["config", "use-context", "dead"]);
    assert!(!run(&["whoami"]).status.success());
    // Flags win over the context, and so do environment variables.
    assert!(ok(&["--server", &url, "--token-file", &tf, "whoami"]).contains("admin"));
    let out = Command::new(BIN)
        .args(["whoami"])
        .current_dir(dir)
        .env("SLUICE_CONFIG", &config)
        .env("SLUICE_SERVER", &url)
        .env("SLUICE_TOKEN", server.token())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // An environment variable loses to a flag: SLUICE_SERVER points nowhere, --server works.
    let out = Command::new(BIN)
        .args(["--context", "prod", "--server", &url, "whoami"])
        .current_dir(dir)
        .env("SLUICE_CONFIG", &config)
        .env("SLUICE_SERVER", "http://127.0.0.1:9")
        .env_remove("SLUICE_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ok(&["config", "use-context", "prod"]);

    // An unknown context is named, with the ones there are.
    let out = run(&["--context", "nope", "get"]);
    let e = stderr(&out);
    assert!(
        !out.status.success() && e.contains("\"nope\"") && e.contains("prod, dead"),
        "{e}"
    );

    // A token file others may read is refused (and its token not shown).
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["whoami"]);
    let e = stderr(&out);
    assert!(!out.status.success() && e.contains("chmod 600"), "{e}");
    assert!(!e.contains(&server.token()), "{e}");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A token written in the config file: view redacts it; a readable file is refused.
    let inline = format!(
        "current-context: inline\ncontexts:\n  - name: inline\n    server: {url}\n    token: {}\n",
        server.token()
    );
    std::fs::write(&config, inline).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(ok(&["whoami"]).contains("admin"));
    let view = ok(&["config", "view"]);
    assert!(
        view.contains("REDACTED") && !view.contains(&server.token()),
        "{view}"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&["whoami"]);
    assert!(
        !out.status.success() && stderr(&out).contains("chmod 600"),
        "{}",
        stderr(&out)
    );
}
