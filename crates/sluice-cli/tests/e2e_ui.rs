//! The web UI in a real browser: headless Chromium driven through chromedriver (WebDriver, with
//! fantoccini) against the real `sluice` server running real local command jobs.
//!
//! The overview, a job page, the jobs list and the history page load and show the jobs of the
//! run; a queued job's page and the list of queued jobs show when it is expected to start; a
//! dead-lettered job is requeued from the DLQ page and then succeeds; a running job is
//! cancelled from its job page; a schedule is run from the schedules page. Screenshots of the
//! pages are saved to `target/ui-screenshots/*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them). chromedriver
//! runs on a free loopback port in its own process group, which is killed when the test ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"4g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

/// chromedriver on a free port, in its own process group (Chromium runs inside it).
struct Driver {
    child: Option<Child>,
    port: u16,
    _profile: tempfile::TempDir,
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.is_file())
    })
}

impl Driver {
    fn start() -> Driver {
        let chromedriver = which("chromedriver").unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the browser tests need Debian's chromium and \
                 chromium-driver (apt-get install chromium chromium-driver; scripts/test.sh does)"
            )
        });
        let port = common::free_port();
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child: Some(child),
            port,
            _profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    async fn client(&self) -> Client {
        let chromium = which("chromium").expect("chromium is not installed");
        let profile = self._profile.path().display().to_string();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1440,1000",
            &format!("--user-data-dir={profile}"),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("connect to chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/ui-screenshots");
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// The text of the page's main element.
async fn page_text(c: &Client) -> String {
    match c.find(Locator::Css("#app")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's main text contains every needle (at most 30 s).
async fn wait_text(c: &Client, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = page_text(c).await;
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("the page never showed {needles:?}; it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clicks the element `css` is for. Pages refresh themselves every few seconds, which can
/// replace an element between finding and clicking it: then it is found again (up to 5 times).
async fn click(c: &Client, css: &str) {
    let mut last = String::new();
    for _ in 0..5 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.click().await {
                Ok(()) => return,
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("cannot click {css}: {last}\n{}", page_text(c).await);
}

async fn open(c: &Client, server: &Server, hash: &str) {
    c.goto(&format!("{}/{hash}", server.url()))
        .await
        .unwrap_or_else(|e| panic!("open {hash}: {e}"));
}

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
