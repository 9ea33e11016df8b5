//! The cost page (issue 17) in a real browser against the real `sluice` server running real
//! local command jobs, whose usage the local backend measures (peak RSS and CPU time): the top
//! wasters are the jobs in the order of their waste as `GET /v1/cost` gives it; the cost per
//! namespace per day is drawn; a job's chart puts, for each of its runs, the core-hours held
//! next to those used (the figures of `GET /v1/cost/runs`); picking another job or a namespace
//! from the pick-lists redraws the page for it.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::browser::{Driver, eval, open, screenshot, sign_in, text_of, wait_js, wait_text};
use serde_json::{Value, json};

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"4g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n[cost]\ncore_hour_price = 0.05\ngib_hour_price = 0.01\n";

fn job_yaml(name: &str, ns: &str, cpu: &str, memory: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: {cpu:?}\n  memory: {memory}\n"
    )
}

/// Runs that many jobs to success; then waits until every run's usage is recorded.
fn run_all(server: &Server, jobs: &[(&str, &str, &str, &str, &str)]) -> Vec<Value> {
    let mut ids = Vec::new();
    for (i, (name, ns, cpu, memory, script)) in jobs.iter().enumerate() {
        let file = server.write(
            &format!("job{i}.yaml"),
            &job_yaml(name, ns, cpu, memory, script),
        );
        ids.push(server.submit(&file, &[]));
    }
    for id in &ids {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed"], 120),
            "succeeded"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = server.ok(&["cost", "--by", "run", "-o", "json"]);
        let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
        if runs.len() == ids.len() && runs.iter().all(|r| !r["run"]["measured"].is_null()) {
            return runs;
        }
        assert!(Instant::now() < deadline, "usage not recorded: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_page_shows_wasters_cost_per_namespace_and_requested_vs_used() {
    let server = Server::start(CONFIG);
    let burn = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
    let runs = run_all(
        &server,
        &[
            // Holds 2 cores and 1 GiB, uses next to nothing: the top waster.
            ("waster", "team-a", "2", "1g", "sleep 1.5"),
            ("waster", "team-a", "2", "1g", "sleep 1.5"),
            // Holds half a core and keeps it busy.
            ("worker", "team-a", "500m", "64m", burn),
            ("small", "team-b", "250m", "64m", "sleep 0.5"),
        ],
    );
    let by_job: Value =
        serde_json::from_str(&server.ok(&["cost", "--by", "job", "-o", "json"])).unwrap();
    let mut groups: Vec<Value> = by_job["groups"]
        .as_array()
        .or_else(|| by_job.as_array())
        .unwrap()
        .clone();
    groups.sort_by(|a, b| {
        b["waste"]
            .as_f64()
            .unwrap()
            .partial_cmp(&a["waste"].as_f64().unwrap())
            .unwrap()
    });
    let order: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["namespace"].as_str().unwrap(),
                g["key"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(order[0], "team-a/waster", "{by_job}");

    let driver = Driver::start();
    let c = driver.client().await;
    sign_in(&c, &server, &server.token()).await;

    // Top wasters, in the API's order of waste.
    open(&c, &server, "#/cost").await;
    wait_text(&c, &["Cost", "Top wasters", "waster", "worker", "small"]).await;
    let rows = eval(
        &c,
        "return [...document.querySelectorAll('#wasters tbody tr')].map(tr => tr.dataset.job)",
    )
    .await;
    assert_eq!(rows, json!(order), "{rows}");

    // Cost per namespace per day: a bar for today, a colour per namespace.
    let legend = text_of(&c, "[data-chart=ns-cost] .legend").await;
    assert!(
        legend.contains("team-a") && legend.contains("team-b"),
        "{legend}"
    );
    let bars = eval(
        &c,
        "return document.querySelectorAll('[data-chart=ns-cost] svg rect').length",
    )
    .await;
    assert_eq!(bars, 2, "one stack of two namespaces");

    // The top waster's runs: held next to used, as the API measured them, held above used.
    wait_js(
        &c,
        "return document.getElementById('job-cost')?.dataset.job === 'team-a/waster'",
    )
    .await;
    let drawn = eval(
        &c,
        "return [...document.querySelectorAll('[data-chart=job-cpu] rect')].map(r => [r.dataset.series, +r.dataset.value])",
    )
    .await;
    let drawn = drawn.as_array().unwrap();
    let mut waster_runs: Vec<&Value> = runs
        .iter()
        .filter(|r| r["run"]["name"] == "waster")
        .collect();
    waster_runs.sort_by_key(|r| r["run"]["ended_at_ms"].as_i64().unwrap());
    assert_eq!(drawn.len(), 2 * waster_runs.len(), "{drawn:?}");
    for (i, r) in waster_runs.iter().enumerate() {
        let e = &r["efficiency"];
        let held = e["held_core_hours"].as_f64().unwrap();
        let used = e["used_core_hours"].as_f64().unwrap();
        for (bar, series, want) in [
            (&drawn[2 * i], "requested (held)", held),
            (&drawn[2 * i + 1], "used", used),
        ] {
            assert_eq!(bar[0], series, "{drawn:?}");
            let v = bar[1].as_f64().unwrap();
            assert!(
                (v - want).abs() <= want.abs() * 1e-9,
                "{series}: {v} vs {want}"
            );
        }
        assert!(held > 10.0 * used, "a waster: {e}");
    }
    assert_eq!(text_of(&c, "#advice-status").await, "not spark");
    screenshot(&c, "cost").await;

    // Another job from the pick-list.
    eval(
        &c,
        "const f = document.getElementById('cost-filters'); f.elements.job.value = 'team-a/worker'; f.requestSubmit(); return true",
    )
    .await;
    wait_js(
        &c,
        "return document.getElementById('job-cost')?.dataset.job === 'team-a/worker'",
    )
    .await;
    let series = eval(
        &c,
        "return [...document.querySelectorAll('[data-chart=job-mem] rect')].map(r => r.dataset.series)",
    )
    .await;
    assert_eq!(series, json!(["requested (held)", "used"]), "{series}");

    // A namespace from the pick-list: only its jobs.
    let namespaces = eval(
        &c,
        "return [...document.querySelectorAll('#cost-filters select[name=namespace] option')].map(o => o.value)",
    )
    .await;
    assert_eq!(namespaces, json!(["", "team-a", "team-b"]), "{namespaces}");
    eval(
        &c,
        "const f = document.getElementById('cost-filters'); f.elements.namespace.value = 'team-b'; f.elements.job.value = ''; f.requestSubmit(); return true",
    )
    .await;
    wait_js(&c, "return location.hash === '#/cost?namespace=team-b'").await;
    wait_js(
        &c,
        "return document.getElementById('job-cost')?.dataset.job === 'team-b/small'",
    )
    .await;
    let rows = eval(
        &c,
        "return [...document.querySelectorAll('#wasters tbody tr')].map(tr => tr.dataset.job)",
    )
    .await;
    assert_eq!(rows, json!(["team-b/small"]), "{rows}");

    c.close().await.expect("close the browser");
}
