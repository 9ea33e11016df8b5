//! Command jobs are a privilege, and no user string reaches a shell or spark-submit's options:
//! the real router (`app(state)` with `oneshot`) over a real SQLite store and the real local
//! backend (with a stand-in `spark-submit` that prints its argv).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::app;
use common::call;
use serde_json::Value;
use sluice_backend::local::{LocalBackend, LocalConfig};
use sluice_server::AppState;
use sluice_server::config::{CommandJobsConfig, Config};
use sluice_server::tick::tick;

async fn state_with(dir: &Path, config: Config, spark_home: Option<&Path>) -> AppState {
    let mut config = config;
    config.data_dir = dir.to_path_buf();
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let backend = LocalBackend::new(LocalConfig {
        cores_milli: 4000,
        memory_mib: 8192,
        data_dir: dir.to_path_buf(),
        spark_home: spark_home.map(Path::to_path_buf),
        python: None,
        dbt: None,
        image_spark_home: "/opt/spark".into(),
        kill_grace: Duration::from_secs(2),
        run_as: None,
    })
    .await
    .unwrap();
    let state = AppState::new(store, Arc::new(backend), config);
    common::bootstrap(&state).await;
    state
}

fn allow(namespaces: &[&str], executables: Option<&[&str]>, dirs: &[&str]) -> Config {
    let mut c = Config::default();
    c.security.command_jobs = Some(CommandJobsConfig {
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        executables: executables.map(|e| e.iter().map(|s| s.to_string()).collect()),
        working_dirs: dirs.iter().map(|s| s.to_string()).collect(),
    });
    c
}

const HELLO: &str =
    "name: hello\nnamespace: default\ncommand:\n  argv: [id]\n  cpu: 100m\n  memory: 32m\n";

async fn job_count(r: &axum::Router) -> usize {
    let (st, v) = call(r, "GET", "/v1/jobs", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["jobs"].as_array().unwrap().len()
}

#[tokio::test]
async fn command_jobs_are_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let r = app(state_with(dir.path(), Config::default(), None).await);
    let (st, v) = call(&r, "POST", "/v1/jobs", HELLO).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("field `command`"), "{msg}");
    assert!(msg.contains("security.command_jobs"), "{msg}");
    // A schedule whose runs would be command jobs is refused the same way.
    let sched = "name: s\nnamespace: default\nschedule: \"@every 1h\"\ntemplate:\n  command: {argv: [id], cpu: 100m, memory: 32m}\n";
    let (st, v) = call(&r, "POST", "/v1/schedules", sched).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("schedule default/s"),
        "{v}"
    );
    // Nothing was stored.
    assert_eq!(job_count(&r).await, 0);
    let (_, v) = call(&r, "GET", "/v1/schedules", "").await;
    assert_eq!(v.as_array().unwrap().len(), 0, "{v}");
    // A Spark job is not a command job.
    let spark = "name: pi\nspark: {type: Python, mainApplicationFile: /x/pi.py}\n";
    let (st, v) = call(&r, "POST", "/v1/jobs", spark).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn command_jobs_only_where_and_what_the_config_allows() {
    let dir = tempfile::tempdir().unwrap();
    let config = allow(&["etl"], Some(&["id", "/usr/bin/env"]), &["/srv/jobs"]);
    let r = app(state_with(dir.path(), config, None).await);
    // The wrong namespace.
    let (st, v) = call(&r, "POST", "/v1/jobs", HELLO).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("\"default\""), "{v}");
    let job = |extra: &str, argv: &str| {
        format!(
            "name: a\nnamespace: etl\ncommand:\n  argv: {argv}\n  cpu: 100m\n  memory: 32m\n{extra}"
        )
    };
    let cases = [
        (job("", "[sh, -c, id]"), "command.argv[0]"),
        (job("", "[/bin/id]"), "command.argv[0]"),
        (
            job("  env: {PATH: /tmp/evil}\n", "[id]"),
            "command.env.PATH",
        ),
        (job("  workingDir: /etc\n", "[id]"), "command.workingDir"),
        (
            job("  workingDir: /srv/jobsx\n", "[id]"),
            "command.workingDir",
        ),
    ];
    for (doc, field) in &cases {
        let (st, v) = call(&r, "POST", "/v1/jobs", doc).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{doc}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{field}: {v}");
    }
    assert_eq!(job_count(&r).await, 0);
    for doc in [
        job("", "[id]"),
        job("  workingDir: /srv/jobs/a\n", "[/usr/bin/env]"),
        job("  workingDir: out\n", "[id, -u]"),
    ] {
        let (st, v) = call(&r, "POST", "/v1/jobs", &doc).await;
        assert_eq!(st, StatusCode::CREATED, "{doc}: {v}");
    }
}

#[tokio::test]
async fn loader_variables_and_the_root_directory_are_refused_even_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let r = app(state_with(dir.path(), allow(&["*"], None, &["/tmp"]), None).await);
    let job = |extra: &str| {
        format!("name: a\ncommand:\n  argv: [id]\n  cpu: 100m\n  memory: 32m\n{extra}")
    };
    for (extra, field) in [
        ("  workingDir: /\n", "command.workingDir"),
        ("  workingDir: /tmp/../etc\n", "command.workingDir"),
        ("  workingDir: ../../x\n", "command.workingDir"),
        ("  env: {LD_PRELOAD: /tmp/x.so}\n", "command.env.LD_PRELOAD"),
        (
            "  env: {LD_LIBRARY_PATH: /tmp}\n",
            "command.env.LD_LIBRARY_PATH",
        ),
        ("  env: {BASH_ENV: /tmp/x}\n", "command.env.BASH_ENV"),
        ("  env: {SLUICE_RUN_DIR: /}\n", "command.env.SLUICE_RUN_DIR"),
    ] {
        let (st, v) = call(&r, "POST", "/v1/jobs", &job(extra)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{extra}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{field}: {v}");
    }
    assert_eq!(job_count(&r).await, 0);
}

async fn wait_ended(state: &AppState, r: &axum::Router, id: &str) -> Value {
    for _ in 0..100 {
        tick(state).await.unwrap();
        let (_, v) = call(r, "GET", &format!("/v1/jobs/{id}"), "").await;
        if matches!(v["state"].as_str(), Some("succeeded" | "failed")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end");
}

async fn log_of(r: &axum::Router, id: &str) -> String {
    let (_, v) = call(r, "GET", &format!("/v1/jobs/{id}/logs"), "").await;
    v["data"].as_str().unwrap().to_string()
}

/// Shell metacharacters in a command's argv and environment, and in a Spark job's arguments,
/// conf values and name-like fields, arrive as they were written: nothing interprets them.
#[tokio::test]
async fn no_user_string_reaches_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display().to_string();
    // A stand-in spark-submit that prints each argument on its own line.
    let home = dir.path().join("spark");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    let submit = home.join("bin/spark-submit");
    std::fs::write(
        &submit,
        "#!/bin/sh\nfor a in \"$@\"; do printf 'ARG<%s>\\n' \"$a\"; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&submit, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = state_with(dir.path(), allow(&["*"], None, &[]), Some(&home)).await;
    let r = app(state.clone());
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("; touch {m}"),
        format!("| touch {m}"),
        format!("&& touch {m}"),
        "\"'\\".to_string(),
        "a\nb".to_string(),
    ];
    let yaml_list = serde_json::to_string(&hostile).unwrap();
    let cmd = format!(
        "name: shell\ncommand:\n  argv: [printf, \"ARG<%s>\\\\n\", {}]\n  env: {{X: {}}}\n  cpu: 100m\n  memory: 32m\n",
        &yaml_list[1..yaml_list.len() - 1],
        serde_json::to_string(&format!("$(touch {m})")).unwrap()
    );
    let (st, v) = call(&r, "POST", "/v1/jobs", &cmd).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_ended(&state, &r, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let log = log_of(&r, &id).await;
    for h in &hostile {
        assert!(
            log.contains(&format!("ARG<{h}>")),
            "{h:?} not passed as is: {log}"
        );
    }
    let spark = format!(
        "name: sparky\nspark:\n  type: Python\n  mainApplicationFile: app.py\n  arguments: {yaml_list}\n  sparkConf: {{spark.app.x: {}}}\n",
        serde_json::to_string(&format!("$(touch {m}); `touch {m}`")).unwrap()
    );
    let (st, v) = call(&r, "POST", "/v1/jobs", &spark).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_ended(&state, &r, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let log = log_of(&r, &id).await;
    for h in &hostile {
        assert!(
            log.contains(&format!("ARG<{h}>")),
            "{h:?} not passed as is: {log}"
        );
    }
    assert!(
        log.contains(&format!("ARG<spark.app.x=$(touch {m}); `touch {m}`>")),
        "{log}"
    );
    assert!(!marker.exists(), "a shell ran a user's string");
}

#[test]
fn the_store_password_is_not_logged() {
    let line = sluice_server::listening_line(
        "127.0.0.1:7467".parse().unwrap(),
        false,
        "postgres://sluice:hunter2@db.internal:5432/sluice?password=hunter3",
        "local",
    );
    assert!(
        !line.contains("hunter2") && !line.contains("hunter3"),
        "{line}"
    );
    assert!(
        line.contains("postgres://sluice:***@db.internal:5432/sluice"),
        "{line}"
    );
}

/// Secret-looking env values and Spark confs are hidden in every answer (job, list, the
/// resubmittable document, schedules, dead letters), and the job still runs with them.
#[tokio::test]
async fn secret_values_are_hidden_in_answers_but_the_job_runs_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(dir.path(), allow(&["*"], None, &[]), None).await;
    let r = app(state.clone());
    let cmd = "name: s\ncommand:\n  argv: [printenv, DB_PASSWORD]\n  env: {DB_PASSWORD: hunter2, GREETING: hello}\n  cpu: 100m\n  memory: 32m\n";
    let (st, v) = call(&r, "POST", "/v1/jobs", cmd).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let spark = "name: p\nspark:\n  type: Python\n  mainApplicationFile: /x/p.py\n  sparkConf:\n    spark.hadoop.fs.s3a.secret.key: s3cr3t\n    spark.ssl.keyPassword: kp4ss\n    spark.executor.memory: 1g\n";
    let (st, v) = call(&r, "POST", "/v1/jobs", spark).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let app_doc = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata: {name: a}\nspec:\n  type: Python\n  mainApplicationFile: local:///x.py\n  driver:\n    env:\n      - {name: API_TOKEN, value: t0k3n}\n";
    let (st, v) = call(&r, "POST", "/v1/jobs", app_doc).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let sched = "name: nightly\nschedule: \"@every 1h\"\ntemplate:\n  command: {argv: [id], env: {API_KEY: k3y}, cpu: 100m, memory: 32m}\n";
    let (st, v) = call(&r, "POST", "/v1/schedules", sched).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let secrets = ["hunter2", "s3cr3t", "kp4ss", "t0k3n", "k3y"];
    let mut seen = Vec::new();
    let (_, list) = call(&r, "GET", "/v1/jobs", "").await;
    seen.push(list.to_string());
    for j in list["jobs"].as_array().unwrap() {
        let (_, one) = call(
            &r,
            "GET",
            &format!("/v1/jobs/{}", j["id"].as_str().unwrap()),
            "",
        )
        .await;
        let view: sluice_server::api::JobView = serde_json::from_value(one.clone()).unwrap();
        let doc = sluice_server::api::views::resubmittable(&view).unwrap();
        seen.push(one.to_string());
        seen.push(doc.to_string());
    }
    let (_, schedules) = call(&r, "GET", "/v1/schedules", "").await;
    seen.push(schedules.to_string());
    let (_, one) = call(&r, "GET", "/v1/schedules/default/nightly", "").await;
    seen.push(one.to_string());
    for text in &seen {
        for s in secrets {
            assert!(!text.contains(s), "{s} shown: {text}");
        }
    }
    assert!(
        seen[0].contains("<redacted>") && seen[0].contains("hello"),
        "{}",
        seen[0]
    );
    // The job ran with the real value.
    let done = wait_ended(&state, &r, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(log_of(&r, &id).await.trim(), "hunter2");
}

/// A job names a secret instead of holding it: a file or an environment variable of the server
/// is read only where `[security.secrets]` allows, only when the run starts, and the value is
/// never stored or shown.
#[tokio::test]
async fn secret_references_are_resolved_at_the_start_only_where_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("db"), "s3cr3t-from-file\n").unwrap();
    let home = std::env::var("HOME").unwrap();
    let job = |name: &str, argv: &str, reference: &str| {
        format!(
            "name: {name}\ncommand:\n  argv: {argv}\n  secretEnv: {{DB_PASSWORD: {reference}}}\n  cpu: 100m\n  memory: 32m\n"
        )
    };
    let file_ref = format!("{{file: {}}}", secrets.join("db").display());
    // Not allowed by default.
    let r = app(state_with(dir.path(), allow(&["*"], None, &[]), None).await);
    for (reference, field) in [
        (file_ref.as_str(), "command.secretEnv.DB_PASSWORD.file"),
        ("{env: HOME}", "command.secretEnv.DB_PASSWORD.env"),
    ] {
        let (st, v) = call(&r, "POST", "/v1/jobs", &job("a", "[id]", reference)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
    }
    for (reference, field) in [
        ("{file: relative/db}", "command.secretEnv.DB_PASSWORD.file"),
        (
            "{file: /run/../etc/shadow}",
            "command.secretEnv.DB_PASSWORD.file",
        ),
        ("{env: \"A B\"}", "command.secretEnv.DB_PASSWORD.env"),
        (
            "{secretKeyRef: {name: db, key: password}}",
            "command.secretEnv.DB_PASSWORD.secretKeyRef",
        ),
        ("{file: /x, env: Y}", "command.secretEnv"),
    ] {
        let (st, v) = call(&r, "POST", "/v1/jobs", &job("a", "[id]", reference)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{reference}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{field}: {v}");
    }
    assert_eq!(job_count(&r).await, 0);
    // Allowed: resolved when the run starts.
    let dir2 = tempfile::tempdir().unwrap();
    let mut config = allow(&["*"], None, &[]);
    config.security.secrets.files = vec![secrets.display().to_string()];
    config.security.secrets.env = vec!["HOM*".into()];
    let state = state_with(dir2.path(), config, None).await;
    let r = app(state.clone());
    let mut ids = Vec::new();
    for (name, reference) in [("f", file_ref.clone()), ("e", "{env: HOME}".to_string())] {
        let (st, v) = call(
            &r,
            "POST",
            "/v1/jobs",
            &job(name, "[printenv, DB_PASSWORD]", &reference),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert!(!v.to_string().contains("s3cr3t"), "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let done = wait_ended(&state, &r, &ids[0]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(log_of(&r, &ids[0]).await, "s3cr3t-from-file\n");
    let done = wait_ended(&state, &r, &ids[1]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(log_of(&r, &ids[1]).await.trim(), home);
    // A file that is gone when the run starts fails the run, naming the field, not the value.
    std::fs::remove_file(secrets.join("db")).unwrap();
    let (_, v) = call(
        &r,
        "POST",
        "/v1/jobs",
        &job("g", "[printenv, DB_PASSWORD]", &file_ref),
    )
    .await;
    let done = wait_ended(&state, &r, v["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains("command.secretEnv.DB_PASSWORD.file"),
        "{done}"
    );
    // Nothing of the file's content was stored.
    for f in ["s.db", "s.db-wal"] {
        if let Ok(db) = std::fs::read(dir2.path().join(f)) {
            assert!(!db.windows(6).any(|w| w == b"s3cr3t"), "{f}");
        }
    }
}
