//! The web UI's additions of issue 18 (item 5) in a real browser (headless Chromium in the time
//! zone Asia/Kolkata, UTC+05:30, so that local time is not UTC) against the real `sluice`
//! server running real local command jobs:
//!
//! - the overview lists the waiting jobs with the position, reason and expected start the API
//!   gives, in queue order, and a row leads to the job's page;
//! - the filters are pick-lists filled from `GET /v1/choices` (the configured levels, the
//!   states, the namespaces) and date pickers whose local time is sent as RFC 3339 UTC;
//! - a job's log is read with `tail` first, then only the bytes added (`offset`), and shows
//!   lines written after the page opened;
//! - the timeline shows the time between its rows ("waited 3.4 s").

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant, UNIX_EPOCH};

use common::Server;
use common::browser::{
    Driver, click, eval, open, screenshot, sign_in, text_of, wait_js, wait_text,
};
use serde_json::Value;

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"4g\"\n[scheduler]\ninterval_ms = 100\nlevels = [\"urgent\", \"normal\", \"batch\"]\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

fn job_yaml(name: &str, ns: &str, cpu: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: {cpu:?}\n  memory: 64m\n"
    )
}

/// Waits until the queued job has a position from the scheduling cycle; returns its wait.
fn wait_placed(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = server.job(id);
        if j["wait"]["position"].is_u64() && j["wait"]["estimated_start"].is_string() {
            return j["wait"].clone();
        }
        assert!(Instant::now() < deadline, "job {id} never placed: {j}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ms(rfc3339: &str) -> i64 {
    let t = humantime::parse_rfc3339_weak(rfc3339).unwrap();
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The seconds of a duration the page wrote under a minute ("340 ms", "3.4 s", "12 s").
fn secs_of(text: &str) -> Option<f64> {
    let mut words = text.rsplit(' ');
    let unit = words.next()?;
    let n: f64 = words.next()?.parse().ok()?;
    match unit {
        "ms" => Some(n / 1000.0),
        "s" => Some(n),
        _ => None,
    }
}

/// Sets a form field by name in the page and submits the form.
async fn submit_form(c: &fantoccini::Client, form: &str, fields: &[(&str, &str)]) {
    let mut js = format!("const f = document.querySelector('{form}');");
    for (k, v) in fields {
        js.push_str(&format!("f.elements[{k:?}].value = {v:?};"));
    }
    js.push_str("f.requestSubmit(); return true;");
    eval(c, &js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_waiting_jobs_pick_lists_date_pickers_log_tail_and_durations() {
    let server = Server::start(CONFIG);
    let go = server.dir.path().join("go");
    // Writes 2000 lines, then one more once the test says so, then sleeps.
    let chatty = server.submit(
        &server.write(
            "chatty.yaml",
            &job_yaml(
                "chatty",
                "logs",
                "500m",
                &format!(
                    "i=1; while [ $i -le 2000 ]; do echo line $i; i=$((i+1)); done; \
                     while [ ! -f {} ]; do sleep 0.2; done; echo late line; sleep 300",
                    go.display()
                ),
            ),
        ),
        &[],
    );
    server.wait_for(&chatty, &["running"], 60);
    // Takes the rest of the cores: whatever comes next waits.
    let blocker = server.submit(
        &server.write(
            "blocker.yaml",
            &job_yaml("blocker", "ml", "3500m", "sleep 300"),
        ),
        &[],
    );
    server.wait_for(&blocker, &["running"], 60);
    let w1 = server.submit(
        &server.write("w1.yaml", &job_yaml("waiter-1", "big", "1", "true")),
        &[],
    );
    let w2 = server.submit(
        &server.write("w2.yaml", &job_yaml("waiter-2", "big", "1", "true")),
        &[],
    );
    let urgent = server.submit(
        &server.write("u.yaml", &job_yaml("urgent-one", "web", "1", "true")),
        &["--priority", "urgent"],
    );
    let waits: Vec<(String, Value)> = [&w1, &w2, &urgent]
        .iter()
        .map(|id| (id.to_string(), wait_placed(&server, id)))
        .collect();
    assert_eq!(waits[0].1["position"], 1, "{waits:?}");
    assert_eq!(waits[1].1["position"], 2, "{waits:?}");

    let driver = Driver::start_in(Some("Asia/Kolkata"));
    let c = driver.client().await;
    sign_in(&c, &server, &server.token()).await;

    // 1. The overview's waiting jobs: every waiting job, in queue order (namespace, position),
    // with the API's position, reason and an expected start.
    open(&c, &server, "#/").await;
    wait_text(&c, &["Waiting jobs", "waiter-1", "waiter-2", "urgent-one"]).await;
    let rows = eval(
        &c,
        "return [...document.querySelectorAll('#waiting tbody tr')].map(tr => \
         [tr.dataset.jobId, tr.querySelector('.pos').textContent.trim(), \
          tr.querySelector('.reason-cell').textContent.trim(), \
          tr.querySelector('.eta').textContent.trim(), tr.children[1].textContent.trim(), \
          tr.children[2].textContent.trim()])",
    )
    .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(ids, [w1.as_str(), w2.as_str(), urgent.as_str()], "{rows:?}");
    for (row, (id, wait)) in rows.iter().zip(&waits) {
        let pos = row[1].as_str().unwrap();
        let want = format!(
            "{} ({} in ",
            wait["position"].as_u64().unwrap(),
            wait["level_position"].as_u64().unwrap()
        );
        assert!(pos.starts_with(&want), "{id}: {pos:?} vs {want:?}");
        let reason = row[2].as_str().unwrap();
        let now = server.job(id)["wait"].clone();
        let want = format!(
            "{}: {}",
            now["reason_kind"].as_str().unwrap(),
            now["reason"].as_str().unwrap()
        );
        assert_eq!(reason, want, "{id}");
        assert!(row[3].as_str().unwrap().starts_with("in "), "{row:?}");
    }
    assert_eq!(rows[2][4], "web");
    assert_eq!(rows[2][5], "urgent");
    screenshot(&c, "overview-waiting").await;
    // A row (not only its link) leads to the job's page.
    click(
        &c,
        &format!("#waiting tr[data-job-id='{w2}'] td.reason-cell"),
    )
    .await;
    wait_js(&c, &format!("return location.hash === '#/job/{w2}'")).await;
    wait_text(&c, &["waiter-2", "Why it waits"]).await;

    // 2. Pick-lists: the configured levels, the states, the namespaces sluice knows of.
    open(&c, &server, "#/history").await;
    wait_text(&c, &["History"]).await;
    let options = |css: &str| {
        format!("return [...document.querySelectorAll('{css} option')].map(o => o.value)")
    };
    let levels = eval(&c, &options("#history-filters select[name=level]")).await;
    assert_eq!(
        levels,
        serde_json::json!(["", "urgent", "normal", "batch"]),
        "{levels}"
    );
    open(&c, &server, "#/jobs").await;
    wait_text(&c, &["Jobs", "waiter-1", "blocker"]).await;
    let states = eval(&c, &options("#job-filters select[name=state]")).await;
    assert_eq!(
        states,
        serde_json::json!([
            "",
            "queued",
            "admitted",
            "submitted",
            "running",
            "succeeded",
            "failed",
            "cancelled"
        ]),
        "{states}"
    );
    let namespaces = eval(&c, &options("#job-filters select[name=namespace]")).await;
    assert_eq!(
        namespaces,
        serde_json::json!(["", "big", "logs", "ml", "web"]),
        "{namespaces}"
    );
    // Picking a namespace filters the list.
    submit_form(&c, "#job-filters", &[("namespace", "big")]).await;
    wait_js(&c, "return location.hash.includes('namespace=big')").await;
    let text = wait_text(&c, &["waiter-1", "waiter-2", "page 1 · 2 job(s)"]).await;
    assert!(!text.contains("blocker"), "{text}");
    let picked = eval(
        &c,
        "return document.querySelector('#job-filters select[name=namespace]').value",
    )
    .await;
    assert_eq!(picked, "big");

    // Date pickers: 10:00 in Kolkata is 04:30 UTC, in the address and the API call; the
    // picker shows the local time again.
    submit_form(
        &c,
        "#job-filters",
        &[("namespace", ""), ("since", "2030-01-01T10:00:00")],
    )
    .await;
    wait_js(
        &c,
        "return location.hash === '#/jobs?since=2030-01-01T04%3A30%3A00Z'",
    )
    .await;
    wait_text(&c, &["No job matches."]).await;
    let shown = eval(
        &c,
        "return document.querySelector('#job-filters input[name=since]').value",
    )
    .await;
    // (The browser leaves out zero seconds.)
    assert_eq!(shown, "2030-01-01T10:00");
    let input_type = eval(
        &c,
        "return document.querySelector('#job-filters input[name=since]').type",
    )
    .await;
    assert_eq!(input_type, "datetime-local");
    submit_form(
        &c,
        "#job-filters",
        &[("since", ""), ("until", "2000-01-01T05:30:00")],
    )
    .await;
    wait_js(
        &c,
        "return location.hash === '#/jobs?until=2000-01-01T00%3A00%3A00Z'",
    )
    .await;
    wait_text(&c, &["No job matches."]).await;
    submit_form(
        &c,
        "#job-filters",
        &[("since", "2000-01-01T00:00:00"), ("until", "")],
    )
    .await;
    wait_text(&c, &["waiter-1", "blocker", "chatty"]).await;
    screenshot(&c, "jobs-pick-lists").await;

    // 3. The log: the last 500 lines first (tail), then only what was added (offset).
    eval(
        &c,
        "performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings(); \
         return true",
    )
    .await;
    open(&c, &server, &format!("#/job/{chatty}")).await;
    let text = wait_text(&c, &["chatty", "line 2000"]).await;
    assert!(text.contains("line 1501\n"), "the last 500 lines");
    assert!(!text.contains("line 1500\n"), "only the last 500 lines");
    assert!(
        text_of(&c, "#log-cut").await.contains("last 500 lines"),
        "{text}"
    );
    std::fs::write(&go, "").unwrap();
    // (The spec on the page names the line too: the log itself must show it.)
    wait_js(
        &c,
        "return document.getElementById('log').textContent.endsWith('late line\\n')",
    )
    .await;
    let urls = eval(
        &c,
        &format!(
            "return performance.getEntriesByType('resource').map(e => e.name)\
             .filter(n => n.includes('/v1/jobs/{chatty}/logs'))"
        ),
    )
    .await;
    let urls: Vec<&str> = urls
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(urls.len() >= 2, "{urls:?}");
    assert!(
        urls[0].contains("tail=500") && !urls[0].contains("offset="),
        "{urls:?}"
    );
    // 2000 lines of "line N\n" are 16 893 bytes: every later read starts past them.
    for u in &urls[1..] {
        let offset: u64 = u
            .split("offset=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or_else(|| panic!("{u} reads no offset"))
            .parse()
            .unwrap();
        assert!(offset >= 16_893, "{u} reads from {offset}");
        assert!(!u.contains("tail="), "{u}");
    }
    let log = text_of(&c, "#log").await;
    assert!(log.ends_with("late line"), "{}", &log[log.len() - 40..]);
    assert_eq!(log.matches("line 2000").count(), 1, "nothing read twice");
    screenshot(&c, "job-log-tail").await;

    // 4. The timeline: the time between rows, from the API's times.
    let timeline = server.job(&chatty)["timeline"].clone();
    let events = timeline.as_array().unwrap();
    assert!(events.len() >= 4, "{timeline}");
    let gaps = eval(
        &c,
        "return [...document.querySelectorAll('#timeline td.gap')].map(td => td.textContent)",
    )
    .await;
    let gaps = gaps.as_array().unwrap();
    assert_eq!(gaps.len(), events.len(), "{gaps:?}");
    assert_eq!(gaps[0], "–");
    for (i, gap) in gaps.iter().enumerate().skip(1) {
        let d = ms(events[i]["at"].as_str().unwrap()) - ms(events[i - 1]["at"].as_str().unwrap());
        let gap = gap.as_str().unwrap();
        if d < 60_000 {
            // Shown to 1 ms under a second, 0.1 s under ten, 1 s above.
            let shown = secs_of(gap).unwrap_or_else(|| panic!("row {i}: {gap:?}"));
            let within = if d < 1000 {
                0.0006
            } else if d < 10_000 {
                0.051
            } else {
                0.51
            };
            assert!(
                (shown - d as f64 / 1000.0).abs() <= within,
                "row {i}: {gap:?}, {d} ms"
            );
        }
        if events[i]["from"] == "queued" {
            assert!(gap.starts_with("waited "), "row {i}: {gap:?}");
        }
    }
    assert!(
        gaps.iter()
            .any(|g| g.as_str().unwrap().starts_with("waited ")),
        "{gaps:?}"
    );

    c.close().await.expect("close the browser");
}
