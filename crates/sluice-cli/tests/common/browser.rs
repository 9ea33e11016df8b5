//! The browser tests' harness: chromedriver (with Debian's headless Chromium) on a free loopback
//! port in its own process group, killed when the test ends; helpers to open pages, wait for
//! text, click, sign in and take screenshots (saved to `target/ui-screenshots/*.png`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::Server;

/// chromedriver on a free port, in its own process group (Chromium runs inside it).
pub struct Driver {
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
    /// chromedriver and Chromium in the machine's time zone.
    pub fn start() -> Driver {
        Driver::start_in(None)
    }

    /// chromedriver and Chromium in the time zone `tz` (an IANA name), when given: the browser's
    /// local time is then not UTC, which the date pickers' conversion must handle.
    pub fn start_in(tz: Option<&str>) -> Driver {
        let chromedriver = which("chromedriver").unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the browser tests need Debian's chromium and \
                 chromium-driver (apt-get install chromium chromium-driver; scripts/test.sh does)"
            )
        });
        let port = super::free_port();
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tz) = tz {
            cmd.env("TZ", tz);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !super::listening(port) {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child: Some(child),
            port,
            _profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    pub async fn client(&self) -> Client {
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

pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// The text of the page's main element.
pub async fn page_text(c: &Client) -> String {
    match c.find(Locator::Css("#app")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's main text contains every needle (at most 30 s).
pub async fn wait_text(c: &Client, needles: &[&str]) -> String {
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
pub async fn click(c: &Client, css: &str) {
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

pub async fn open(c: &Client, server: &Server, hash: &str) {
    c.goto(&format!("{}/{hash}", server.url()))
        .await
        .unwrap_or_else(|e| panic!("open {hash}: {e}"));
}

/// Signs in on the page with `token`.
pub async fn sign_in(c: &Client, server: &Server, token: &str) {
    open(c, server, "#/").await;
    wait_text(c, &["Sign in", "API token"]).await;
    c.find(Locator::Css("#token-input"))
        .await
        .expect("the token field")
        .send_keys(token)
        .await
        .expect("type the token");
    click(c, "#login button[type=submit]").await;
    // Signed in: the header names the caller.
    let deadline = Instant::now() + Duration::from_secs(30);
    while eval(c, "return document.getElementById('sign-out') !== null")
        .await
        .as_bool()
        != Some(true)
    {
        assert!(
            Instant::now() < deadline,
            "not signed in: {}",
            page_text(c).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `script` (a function body that may `return` a value) in the page.
pub async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
}

/// Waits until `script` returns true in the page (at most 30 s).
pub async fn wait_js(c: &Client, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if eval(c, script).await.as_bool() == Some(true) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "never true: {script}\nthe page shows:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of the element `css` is for (waits for it, at most 30 s).
pub async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            return t;
        }
        if Instant::now() > deadline {
            panic!("no element {css}; the page shows:\n{}", page_text(c).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
