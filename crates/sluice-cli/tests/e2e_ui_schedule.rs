//! A schedule's page in a real browser (headless Chromium in Asia/Kolkata, the schedule in
//! Asia/Tokyo) against the real `sluice` server: runs started from the page's "Run now" are
//! drawn as bars coloured by outcome, oldest first, each linking to its job; the next runs are
//! shown in the schedule's own time zone (09:00 in Tokyo, not the browser's 05:30); the jobs
//! list's schedule pick-list narrows the list to the schedule's runs.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use common::browser::{Driver, click, eval, open, screenshot, sign_in, wait_js, wait_text};

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"4g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

/// Clicks "Run now" and returns the id of the job it started.
async fn run_now(c: &fantoccini::Client) -> String {
    eval(
        c,
        "const r = document.getElementById('action-result'); if (r) r.textContent = ''; return true",
    )
    .await;
    click(c, "button[data-action=trigger]").await;
    let text = wait_text(c, &["Started job"]).await;
    text.split("Started job ")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .expect("the started job's id")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_page_shows_runs_by_outcome_and_next_runs_in_its_zone() {
    let server = Server::start(CONFIG);
    let fixed = server.dir.path().join("fixed");
    let schedule = server.write(
        "schedule.yaml",
        &format!(
            "name: tokyo-daily\nnamespace: etl\nschedule: \"0 9 * * *\"\ntimeZone: Asia/Tokyo\n\
             template:\n  command:\n    argv: [sh, -c, \"test -f {}\"]\n    cpu: 250m\n    \
             memory: 64m\n",
            fixed.display()
        ),
    );
    server.ok(&["schedule", "create", &schedule]);
    // Another job, not of the schedule, in the same namespace.
    let other = server.submit(
        &server.write(
            "other.yaml",
            "name: other\nnamespace: etl\ncommand:\n  argv: [\"true\"]\n  cpu: 250m\n  memory: 64m\n",
        ),
        &[],
    );
    assert_eq!(
        server.wait_for(&other, &["succeeded", "failed"], 60),
        "succeeded"
    );

    let driver = Driver::start_in(Some("Asia/Kolkata"));
    let c = driver.client().await;
    sign_in(&c, &server, &server.token()).await;

    // The list: the next run in the schedule's zone, and a link to its page.
    open(&c, &server, "#/schedules").await;
    wait_text(&c, &["tokyo-daily"]).await;
    let next = eval(
        &c,
        "return document.querySelector('td.next-run').textContent",
    )
    .await;
    assert!(
        next.as_str().unwrap().contains("09:00 (Asia/Tokyo, GMT+9)"),
        "{next}"
    );
    click(&c, "a[data-schedule-link='etl/tokyo-daily']").await;
    wait_js(&c, "return location.hash === '#/schedule/etl/tokyo-daily'").await;
    wait_text(
        &c,
        &[
            "Schedule etl/tokyo-daily",
            "Next runs (Asia/Tokyo)",
            "No run yet.",
        ],
    )
    .await;

    // The next five runs (the API's, in `data-at`), at 09:00 Tokyo time on their own dates.
    let items = eval(
        &c,
        "return [...document.querySelectorAll('#next-runs li')].map(li => [li.dataset.at, li.querySelector('b').textContent])",
    )
    .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 5, "{items:?}");
    for (i, item) in items.iter().enumerate() {
        let at = item[0].as_str().unwrap();
        // RFC 3339 in the zone: 2026-12-04T09:00:00+09:00.
        assert!(at.ends_with("T09:00:00+09:00"), "{at}");
        let shown = item[1].as_str().unwrap();
        assert!(
            shown.contains(&format!("{} 09:00 (Asia/Tokyo, GMT+9)", &at[..10])),
            "{shown:?} for {at}"
        );
        if i > 0 {
            assert!(at > items[i - 1][0].as_str().unwrap(), "{items:?}");
        }
    }

    // A failed run, then a successful one, both from the page's "Run now".
    let failed = run_now(&c).await;
    assert_eq!(
        server.wait_for(&failed, &["succeeded", "failed"], 60),
        "failed"
    );
    std::fs::write(&fixed, "").unwrap();
    let succeeded = run_now(&c).await;
    assert_eq!(
        server.wait_for(&succeeded, &["succeeded", "failed"], 60),
        "succeeded"
    );
    // Bars oldest first, coloured by outcome, each a link to its job.
    wait_js(
        &c,
        "return document.querySelectorAll('[data-chart=runs] rect.run').length === 2 && \
         [...document.querySelectorAll('[data-chart=runs] rect.run')].every(r => r.dataset.state === 'failed' || r.dataset.state === 'succeeded')",
    )
    .await;
    let bars = eval(
        &c,
        "return [...document.querySelectorAll('[data-chart=runs] rect.run')].map(r => \
         [r.dataset.jobId, r.dataset.state, r.getAttribute('fill'), r.parentNode.getAttribute('href')])",
    )
    .await;
    assert_eq!(
        bars,
        serde_json::json!([
            [failed, "failed", "#c23b3b", format!("#/job/{failed}")],
            [
                succeeded,
                "succeeded",
                "#1f8a4c",
                format!("#/job/{succeeded}")
            ]
        ]),
        "{bars}"
    );
    let text = wait_text(&c, &["1 failed", "1 succeeded"]).await;
    assert!(!text.contains(&other), "{text}");
    screenshot(&c, "schedule-page").await;

    // The jobs list's schedule pick-list: only the schedule's runs.
    open(&c, &server, "#/jobs").await;
    wait_text(&c, &["Jobs", "other"]).await;
    let options = eval(
        &c,
        "return [...document.querySelectorAll('#job-filters select[name=schedule] option')].map(o => o.value)",
    )
    .await;
    assert_eq!(
        options,
        serde_json::json!(["", "etl/tokyo-daily"]),
        "{options}"
    );
    eval(
        &c,
        "const f = document.getElementById('job-filters'); f.elements.schedule.value = 'etl/tokyo-daily'; f.requestSubmit(); return true",
    )
    .await;
    wait_js(
        &c,
        "return location.hash.includes('schedule=etl%2Ftokyo-daily')",
    )
    .await;
    let text = wait_text(&c, &["page 1 · 2 job(s)", &failed, &succeeded]).await;
    assert!(!text.contains(&other), "{text}");

    c.close().await.expect("close the browser");
}
