//! The workflow pages in a real browser (headless Chromium) against the real `sluice` server on
//! the local backend, with command steps: a diamond (a -> b, c -> d) whose step b fails. The run
//! page draws each step's box in the colour of its state as the API reports it (b failed, d
//! skipped), an arrow per `dependsOn`, boxes by layer; a box opens its job's page; Rerun from the
//! page runs the failed step again (running, its dependant waiting) until the run succeeds. The
//! list filters runs by workflow and state; a viewer sees the DAG but no Rerun button.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;
use common::browser::{Driver, click, eval, open, screenshot, sign_in, wait_js, wait_text};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// Room for one step at a time.
const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 1\nmemory = \"1g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

fn step(name: &str, deps: &[&str], body: &str) -> String {
    format!(
        "    - name: {name}\n      dependsOn: [{}]\n      job:\n        command:\n          argv: [sh, -c, '{body}']\n          cpu: 1\n          memory: 128m\n",
        deps.join(", ")
    )
}

fn run_json(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.ok(&["workflow", "get", id, "-o", "json"])).expect("run json")
}

fn wait_run(server: &Server, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = run_json(server, id);
        if r["state"] == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} is {}, wanted {want}\n{}",
            r["state"],
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The state a step is drawn in, from the API's step: its status, and for an active step its
/// job's state (queued; running once admitted).
fn drawn_state(step: &Value) -> String {
    let status = step["status"].as_str().unwrap();
    if status != "active" {
        return status.to_string();
    }
    match step["jobState"].as_str().unwrap_or_default() {
        "queued" => "queued".into(),
        "admitted" | "submitted" | "running" => "running".into(),
        other => other.into(),
    }
}

fn by_name(run: &Value) -> BTreeMap<String, Value> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// The legend's colour of each state, read from the page.
async fn legend(c: &Client) -> BTreeMap<String, String> {
    let v = eval(
        c,
        "return [...document.querySelectorAll('#dag-legend [data-legend]')].map(e => [e.dataset.legend, e.querySelector('i').dataset.fill])",
    )
    .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The boxes drawn: name -> [state, fill, job id].
async fn boxes(c: &Client) -> BTreeMap<String, Value> {
    let v = eval(
        c,
        "return [...document.querySelectorAll('#dag g.step')].map(g => [g.dataset.step, g.dataset.state, g.querySelector('rect').getAttribute('fill'), g.dataset.jobId])",
    )
    .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b[0].as_str().unwrap().to_string(),
                json!([b[1], b[2], b[3]]),
            )
        })
        .collect()
}

/// Waits until the API's run satisfies `ready` and the page draws every step as the API
/// reports it (state, the legend's colour for it, its job); returns the run.
async fn wait_drawn(
    c: &Client,
    server: &Server,
    id: &str,
    ready: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> Value {
    let colours = legend(c).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = run_json(server, id);
        let steps = by_name(&run);
        let want: BTreeMap<String, Value> = steps
            .iter()
            .map(|(name, s)| {
                let state = drawn_state(s);
                let fill = colours.get(&state).cloned().unwrap_or_default();
                let job = s["jobId"].as_str().unwrap_or_default().to_string();
                (name.clone(), json!([state, fill, job]))
            })
            .collect();
        let drawn = boxes(c).await;
        if ready(&steps) && drawn == want {
            return run;
        }
        if Instant::now() > deadline {
            panic!("the page draws {drawn:?}, the API says {want:?}\n{run}");
        }
        // The run page redraws itself every 3 s while the run goes on.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn state_of(steps: &BTreeMap<String, Value>, name: &str) -> String {
    drawn_state(&steps[name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_draws_the_dag_by_state_links_jobs_and_reruns_the_failed_step() {
    let server = Server::start(CONFIG);
    let dir = server.dir.path().to_path_buf();
    let marker = dir.join("fixed");
    let go = dir.join("go");
    // b fails until `fixed` exists; then it runs until `go` exists.
    let b_body = format!(
        "test -e {} && while [ ! -e {} ]; do sleep 0.1; done",
        marker.display(),
        go.display()
    );
    let doc = format!(
        "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {{name: diamond, namespace: etl}}\nspec:\n  priority: normal\n  steps:\n{}{}{}{}",
        step("a", &[], "true"),
        step("b", &["a"], &b_body),
        step("c", &["a"], "true"),
        step("d", &["b", "c"], "true"),
    );
    let file = server.write("diamond.yaml", &doc);
    server.ok(&["apply", "-f", &file]);
    let id = server
        .ok(&["workflow", "run", "diamond", "-n", "etl"])
        .trim()
        .to_string();
    let run = wait_run(&server, &id, "failed");
    let steps = by_name(&run);
    let failed_job = steps["b"]["jobId"].as_str().unwrap().to_string();
    let c_job = steps["c"]["jobId"].clone();

    let driver = Driver::start();
    let c = driver.client().await;
    sign_in(&c, &server, &server.token()).await;

    // The list: the run with its workflow and state; the pick-lists narrow it.
    click(&c, "header nav a[data-nav=workflows]").await;
    wait_js(&c, "return location.hash === '#/workflows'").await;
    wait_text(&c, &["Workflow runs", &id, "diamond"]).await;
    let row = eval(
        &c,
        &format!("return document.querySelector('tr[data-run=\"{id}\"]').textContent"),
    )
    .await;
    let row = row.as_str().unwrap();
    assert!(
        row.contains("etl") && row.contains("failed") && row.contains("1 skipped"),
        "{row}"
    );
    let options = eval(
        &c,
        "return [...document.querySelectorAll('#run-filters select[name=workflow] option')].map(o => o.value)",
    )
    .await;
    assert_eq!(options, json!(["", "etl/diamond"]), "{options}");
    eval(
        &c,
        "const f = document.getElementById('run-filters'); f.elements.workflow.value = 'etl/diamond'; f.elements.state.value = 'succeeded'; f.requestSubmit(); return true",
    )
    .await;
    wait_js(&c, "return location.hash.includes('state=succeeded')").await;
    wait_text(&c, &["No workflow run matches"]).await;
    open(
        &c,
        &server,
        "#/workflows?workflow=etl%2Fdiamond&state=failed",
    )
    .await;
    wait_text(&c, &[&id]).await;
    click(&c, &format!("a[data-run-id='{id}']")).await;
    wait_js(
        &c,
        &format!("return location.hash === '#/workflow-run/{id}'"),
    )
    .await;
    wait_text(&c, &["Workflow etl/diamond", "Graph"]).await;

    // Every state has its own colour in the legend.
    let colours = legend(&c).await;
    let names: Vec<&str> = colours.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "cancelled",
            "failed",
            "queued",
            "running",
            "skipped",
            "succeeded",
            "waiting"
        ]
    );
    let distinct: std::collections::BTreeSet<&String> = colours.values().collect();
    assert_eq!(distinct.len(), colours.len(), "{colours:?}");

    // Each box as the API reports its step: a and c succeeded, b failed, d skipped.
    let run = wait_drawn(&c, &server, &id, |_| true).await;
    let steps = by_name(&run);
    assert_eq!(
        ["a", "b", "c", "d"].map(|s| state_of(&steps, s)),
        ["succeeded", "failed", "succeeded", "skipped"],
        "{run}"
    );
    assert!(
        steps["d"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream step b failed"),
        "{run}"
    );
    // An arrow per dependsOn; boxes laid out by layer (a, then b and c, then d).
    let edges = eval(
        &c,
        "return [...document.querySelectorAll('#dag path.edge')].map(p => p.dataset.from + '->' + p.dataset.to).sort()",
    )
    .await;
    assert_eq!(edges, json!(["a->b", "a->c", "b->d", "c->d"]));
    let xs = eval(
        &c,
        "const x = n => +document.querySelector(`#dag g.step[data-step=${n}] rect`).getAttribute('x'); return [x('a'), x('b'), x('c'), x('d')]",
    )
    .await;
    let xs: Vec<f64> = xs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(xs[0] < xs[1] && xs[1] == xs[2] && xs[2] < xs[3], "{xs:?}");
    // A failed run: Rerun, no Cancel; the skipped step has no job to open.
    assert!(c.find(Locator::Css("#cancel-run")).await.is_err());
    assert!(
        c.find(Locator::Css("a.step-link[data-step=d]"))
            .await
            .is_err()
    );
    screenshot(&c, "workflow-run-failed").await;

    // A box opens its job's page, which links back to the run.
    click(&c, "a.step-link[data-step=b]").await;
    wait_js(
        &c,
        &format!("return location.hash === '#/job/{failed_job}'"),
    )
    .await;
    wait_text(&c, &[&failed_job, "Workflow run", &id]).await;
    click(&c, "#job-workflow-run").await;
    wait_js(
        &c,
        &format!("return location.hash === '#/workflow-run/{id}'"),
    )
    .await;
    wait_text(&c, &["Workflow etl/diamond"]).await;

    // A viewer of the namespace sees the failed run's DAG but no Rerun button.
    let viewer = server
        .ok(&["token", "create", "--namespace", "etl", "--role", "viewer"])
        .trim()
        .to_string();
    click(&c, "#sign-out").await;
    sign_in(&c, &server, &viewer).await;
    open(&c, &server, &format!("#/workflow-run/{id}")).await;
    wait_text(&c, &["Workflow etl/diamond", "Graph"]).await;
    wait_js(
        &c,
        "return document.querySelectorAll('#dag g.step').length === 4",
    )
    .await;
    assert!(c.find(Locator::Css("#rerun-run")).await.is_err());
    click(&c, "#sign-out").await;
    sign_in(&c, &server, &server.token()).await;
    open(&c, &server, &format!("#/workflow-run/{id}")).await;
    wait_text(&c, &["Workflow etl/diamond", "Graph"]).await;

    // Rerun from the page: b runs again (a new job), d waits for it, a and c keep their jobs.
    std::fs::write(&marker, "").unwrap();
    click(&c, "#rerun-run").await;
    let run = wait_drawn(&c, &server, &id, |s| {
        state_of(s, "b") == "running" && s["b"]["jobState"] == "running"
    })
    .await;
    let steps = by_name(&run);
    assert_eq!(run["attempt"], 2, "{run}");
    assert_eq!(steps["b"]["previousJobs"], json!([failed_job]));
    assert_ne!(steps["b"]["jobId"], json!(failed_job));
    assert_eq!(steps["c"]["jobId"], c_job);
    assert_eq!(state_of(&steps, "d"), "waiting");
    assert_eq!(state_of(&steps, "a"), "succeeded");
    // A running run: Cancel, no Rerun.
    wait_js(
        &c,
        "return document.getElementById('cancel-run') !== null && document.getElementById('rerun-run') === null",
    )
    .await;
    screenshot(&c, "workflow-run-rerunning").await;

    std::fs::write(&go, "").unwrap();
    wait_run(&server, &id, "succeeded");
    let run = wait_drawn(&c, &server, &id, |s| {
        s.values().all(|x| x["status"] == "succeeded")
    })
    .await;
    assert_eq!(run["state"], "succeeded");
    wait_text(&c, &[&failed_job]).await;
    assert!(c.find(Locator::Css("#rerun-run")).await.is_err());
    assert!(c.find(Locator::Css("#cancel-run")).await.is_err());

    c.close().await.expect("close the browser");
}
