//! The web UI in a real browser: headless Chromium driven through chromedriver (WebDriver, with
//! fantoccini) against the real `sluice` server running real local command jobs.
//!
//! The overview, a job page, the jobs list and the history page load and show the jobs of the
//! run; a queued job's page and the list of queued jobs show when it is expected to start; a
//! dead-lettered job is requeued from the DLQ page and then succeeds; a running job is
//! cancelled from its job page; a schedule is run from the schedules page. Screenshots of the
//! pages are saved to `target/ui-screenshots/*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them); the harness
//! is `tests/common/browser.rs`. The additions of issues 17 and 18 are tested in
//! `e2e_ui_overview.rs`, `e2e_ui_schedule.rs` and `e2e_ui_cost.rs`.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::browser::{Driver, click, open, screenshot, wait_text};
use fantoccini::Locator;

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"4g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

fn job_yaml(name: &str, ns: &str, extra: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\n{extra}command:\n  argv: [sh, -c, {script:?}]\n  cpu: 500m\n  memory: 128m\n"
    )
}

fn wait_dead_lettered(server: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = server.job(id);
        if !j["orchestration"]["dead_lettered_at"].is_null() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} was not dead-lettered: {j}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_the_run_and_acts_on_it() {
    let server = Server::start(CONFIG);
    let fixed = server.dir.path().join("fixed");
    let hello = server.submit(
        &server.write(
            "hello.yaml",
            &job_yaml("hello-ui", "web", "", "echo hello from sluice; sleep 0.5"),
        ),
        &[],
    );
    let count = server.submit(
        &server.write(
            "count.yaml",
            &job_yaml("count", "web", "", "for i in 1 2 3; do echo line $i; done"),
        ),
        &["--priority", "high"],
    );
    let train = server.submit(
        &server.write(
            "train.yaml",
            &job_yaml("train", "ml", "", "sleep 0.3; echo trained"),
        ),
        &[],
    );
    // Fails until a file appears; one attempt, so it is dead-lettered at once.
    let broken = server.submit(
        &server.write(
            "broken.yaml",
            &job_yaml(
                "broken",
                "web",
                "retry: {maxAttempts: 1}\n",
                &format!(
                    "echo checking attempt $SLUICE_ATTEMPT; test -f {}",
                    fixed.display()
                ),
            ),
        ),
        &[],
    );
    let sleeper = server.submit(
        &server.write(
            "sleeper.yaml",
            &job_yaml("sleeper", "ml", "", "echo sleeping; sleep 300"),
        ),
        &[],
    );
    let schedule = server.write(
        "schedule.yaml",
        "name: hourly-ui\nnamespace: web\nschedule: \"@hourly\"\ntemplate:\n  command:\n    \
         argv: [sh, -c, \"echo scheduled run\"]\n    cpu: 250m\n    memory: 64m\n",
    );
    server.ok(&["schedule", "create", &schedule]);
    for id in [&hello, &count, &train] {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed"], 60),
            "succeeded"
        );
    }
    server.wait_for(&sleeper, &["running"], 60);
    wait_dead_lettered(&server, &broken);
    // Needs the whole budget: it waits (in a namespace of its own) while the sleeper runs.
    let waiter = server.submit(
        &server.write(
            "waiter.yaml",
            "name: waiter\nnamespace: big\ncommand:\n  argv: [sh, -c, \"echo started\"]\n  \
             cpu: \"4\"\n  memory: 128m\n",
        ),
        &[],
    );

    let driver = Driver::start();
    let c = driver.client().await;

    // The page asks for a token first; signed in, it keeps it for the tab.
    open(&c, &server, "#/").await;
    wait_text(&c, &["Sign in", "API token"]).await;
    c.find(Locator::Css("#token-input"))
        .await
        .expect("the token field")
        .send_keys(&server.token())
        .await
        .expect("type the token");
    click(&c, "#login button[type=submit]").await;
    screenshot(&c, "signed-in").await;

    // Overview: queues, allocation, running jobs (the sleeper), charts.
    open(&c, &server, "#/").await;
    let text = wait_text(&c, &["Overview", "Running jobs", "sleeper", "ml"]).await;
    assert!(text.contains("Queues by namespace and level"), "{text}");
    assert!(text.contains("CPU allocated"), "{text}");
    c.find(Locator::Css("#running a[data-job-id]"))
        .await
        .expect("a running job links to its page");
    c.find(Locator::Css("[data-chart=ov-queue] svg"))
        .await
        .expect("queue chart");
    screenshot(&c, "overview").await;

    // A job page: spec, timeline, log.
    open(&c, &server, &format!("#/job/{hello}")).await;
    let text = wait_text(&c, &["hello-ui", "Timeline", "hello from sluice"]).await;
    for needle in [
        "succeeded",
        "admitted",
        "Demand",
        "echo hello from sluice",
        &hello,
    ] {
        assert!(text.contains(needle), "job page lacks {needle:?}:\n{text}");
    }
    screenshot(&c, "job").await;

    // A queued job's page and the list of waiting jobs show when it is expected to start.
    open(&c, &server, &format!("#/job/{waiter}")).await;
    let text = wait_text(
        &c,
        &[
            "waiter",
            "Expected start",
            "if jobs run as long as expected",
        ],
    )
    .await;
    assert!(text.contains("Why it waits"), "{text}");
    open(&c, &server, "#/jobs?namespace=big&state=queued").await;
    // (The table's headers are shown in capitals.)
    wait_text(&c, &["waiter", "EXPECTED START"]).await;
    let eta = c
        .find(Locator::Css("#jobs td.eta"))
        .await
        .expect("the expected start cell")
        .text()
        .await
        .unwrap();
    assert!(eta.starts_with("in "), "{eta:?}");

    // The jobs list: filtered to a namespace, every job of the run there.
    open(&c, &server, "#/jobs?namespace=web").await;
    let text = wait_text(&c, &["hello-ui", "count", "broken"]).await;
    assert!(!text.contains("sleeper"), "{text}");
    screenshot(&c, "jobs").await;
    // Pages of two, newest first: broken and count, then hello-ui; and back.
    open(&c, &server, "#/jobs?namespace=web&limit=2").await;
    // The footer names the page's size: the unpaged list above says "page 1" too, and may
    // still be on screen.
    let text = wait_text(&c, &["broken", "count", "page 1 · 2 job(s)"]).await;
    assert!(!text.contains("hello-ui"), "{text}");
    click(&c, "#next-page").await;
    let text = wait_text(&c, &["hello-ui", "page 2"]).await;
    assert!(!text.contains("broken"), "{text}");
    assert!(c.find(Locator::Css("#next-page")).await.is_err(), "{text}");
    click(&c, "#prev-page").await;
    wait_text(&c, &["broken", "count", "page 1"]).await;

    // History: the run's namespaces and jobs in the totals, charts drawn.
    open(&c, &server, "#/history?range=1h").await;
    let text = wait_text(&c, &["History", "Per namespace and level", "web", "ml"]).await;
    let totals = c
        .find(Locator::Css("#history-totals"))
        .await
        .expect("totals table")
        .text()
        .await
        .unwrap();
    // web/normal admitted hello-ui and broken, web/high admitted count.
    assert!(
        totals.contains("web normal 2") || totals.contains("web\tnormal\t2"),
        "{totals}"
    );
    assert!(text.contains("Jobs finished per step"), "{text}");
    for chart in ["queue", "wait", "cpu", "finished"] {
        c.find(Locator::Css(&format!("[data-chart={chart}] svg")))
            .await
            .unwrap_or_else(|_| panic!("chart {chart}"));
    }
    // Taller, to show the totals under the charts.
    c.set_window_size(1440, 1300).await.expect("resize");
    screenshot(&c, "history").await;
    c.set_window_size(1440, 1000).await.expect("resize");

    // Dead letters: requeue the broken job once it can succeed.
    std::fs::write(&fixed, "").expect("create the fixed file");
    open(&c, &server, "#/dlq").await;
    wait_text(&c, &["Dead letters", "broken", &broken]).await;
    screenshot(&c, "dlq").await;
    click(
        &c,
        &format!("button[data-action=requeue][data-id='{broken}']"),
    )
    .await;
    wait_text(&c, &[&format!("Requeued {broken}")]).await;
    assert_eq!(
        server.wait_for(&broken, &["succeeded", "failed"], 60),
        "succeeded"
    );
    let j = server.job(&broken);
    assert_eq!(j["attempt"], 2, "{j}");
    assert!(j["orchestration"]["dead_lettered_at"].is_null(), "{j}");
    // Its page shows the log of attempt 2 and links to the log of attempt 1.
    open(&c, &server, &format!("#/job/{broken}")).await;
    let text = wait_text(&c, &["Log of attempt 2", "checking attempt 2"]).await;
    assert!(!text.contains("checking attempt 1"), "{text}");
    click(&c, "#log-attempts a").await;
    let text = wait_text(&c, &["Log of attempt 1", "checking attempt 1"]).await;
    assert!(!text.contains("checking attempt 2"), "{text}");

    // Cancel the sleeper from its page.
    open(&c, &server, &format!("#/job/{sleeper}")).await;
    wait_text(&c, &["sleeper", "running"]).await;
    click(&c, "#cancel-job").await;
    assert_eq!(
        server.wait_for(&sleeper, &["cancelled", "failed", "succeeded"], 30),
        "cancelled"
    );
    wait_text(&c, &["cancelled by a user"]).await;

    // Schedules: run the schedule now.
    open(&c, &server, "#/schedules").await;
    wait_text(&c, &["Schedules", "hourly-ui", "@hourly"]).await;
    screenshot(&c, "schedules").await;
    click(&c, "button[data-action=trigger]").await;
    let text = wait_text(&c, &["Started job"]).await;
    let started = text
        .split("Started job ")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .expect("the started job's id")
        .trim()
        .to_string();
    assert_eq!(
        server.wait_for(&started, &["succeeded", "failed"], 60),
        "succeeded"
    );

    // A viewer sees the schedules and dead letters but no button to act on them (the server
    // refuses those calls anyway: tests/auth.rs in sluice-server).
    let viewer = server
        .ok(&["token", "create", "--namespace", "*", "--role", "viewer"])
        .trim()
        .to_string();
    click(&c, "#sign-out").await;
    wait_text(&c, &["Sign in"]).await;
    c.find(Locator::Css("#token-input"))
        .await
        .expect("the token field")
        .send_keys(&viewer)
        .await
        .expect("type the token");
    click(&c, "#login button[type=submit]").await;
    open(&c, &server, "#/schedules").await;
    wait_text(&c, &["Schedules", "hourly-ui"]).await;
    assert!(
        c.find(Locator::Css("button[data-action=trigger]"))
            .await
            .is_err()
    );
    open(&c, &server, "#/dlq").await;
    wait_text(&c, &["Dead letters"]).await;
    assert!(
        c.find(Locator::Css("button[data-action=requeue]"))
            .await
            .is_err()
    );
    screenshot(&c, "viewer-dlq").await;

    c.close().await.expect("close the browser");
}
