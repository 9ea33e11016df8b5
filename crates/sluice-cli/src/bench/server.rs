//! The server under test: a `sluice server` child process (this very binary) with the simulated
//! backend, on a free loopback port and a temporary directory, on SQLite or on a fresh
//! PostgreSQL database that is dropped afterwards. Stopped by its PID (SIGTERM, then SIGKILL).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::{Connection, Executor};

/// Which database the server keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A SQLite file in the temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `--postgres-url`.
    Postgres,
}

impl StoreKind {
    /// The name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh PostgreSQL database, dropped by [`Database::drop_now`].
pub struct Database {
    admin_url: String,
    name: String,
    /// The URL of the database itself.
    pub url: String,
}

impl Database {
    /// Creates `sluice_bench_<pid>_<ms>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Database> {
        sqlx::any::install_default_drivers();
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let name = format!("sluice_bench_{}_{ms}", std::process::id());
        let mut admin = sqlx::AnyConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let _ = admin.close().await;
        let url = with_database(admin_url, &name);
        Ok(Database {
            admin_url: admin_url.to_string(),
            name,
            url,
        })
    }

    /// Drops the database (after the server using it has stopped).
    pub async fn drop_now(self) -> Result<()> {
        let mut admin = sqlx::AnyConnection::connect(&self.admin_url)
            .await
            .context("connecting to PostgreSQL to drop the bench database")?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .with_context(|| format!("DROP DATABASE {}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// A running server process.
pub struct Server {
    child: tokio::process::Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's log file.
    pub log: PathBuf,
    /// The admin token the server made for itself at its first start (its token file).
    pub token: String,
}

/// The configuration of the server under test: the simulated backend with `nodes` nodes of 64
/// cores and 256 GiB, no start delay, runs of an hour unless a job says otherwise; command
/// jobs allowed (the simulated backend runs nothing) and no per-client rate limit (the bench
/// is one client, the admin token, at thousands of requests a second).
fn config_text(data_dir: &Path, store_url: Option<&str>, nodes: u32, interval_ms: u64) -> String {
    let store = match store_url {
        Some(u) => format!("[store]\nurl = \"{u}\"\n"),
        None => String::new(),
    };
    format!(
        "data_dir = \"{}\"\n{store}\n[backend]\nkind = \"simulated\"\nseed = 42\nstart_delay = \"0s\"\n\
         nodes = [ {{ prefix = \"node\", count = {nodes}, cpu = \"64\", memory = \"256g\" }} ]\n\
         duration = {{ dist = \"fixed\", value = \"1h\" }}\n\n[scheduler]\ninterval_ms = {interval_ms}\n\n\
         [security.command_jobs]\nnamespaces = [\"*\"]\n\n[limits]\nrate_per_sec = 0\n",
        data_dir.display()
    )
}

impl Server {
    /// Starts `exe server` in `dir` and waits until `/healthz` answers.
    pub async fn start(
        exe: &Path,
        dir: &Path,
        store_url: Option<&str>,
        nodes: u32,
        interval_ms: u64,
    ) -> Result<Server> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            l.local_addr()?.port()
        };
        let config = dir.join("sluice.toml");
        std::fs::write(
            &config,
            config_text(&dir.join("data"), store_url, nodes, interval_ms),
        )
        .context("writing the server's configuration")?;
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).context("creating the server's log")?;
        let err = out.try_clone()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("server")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            // The server's log level: warnings unless `SLUICE_BENCH_LOG` says otherwise (e.g.
            // `sluice_server=debug` to see each tick's steps in the kept log).
            .env(
                "SLUICE_LOG",
                std::env::var("SLUICE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true);
        // The server must read only the bench's configuration.
        for (k, _) in std::env::vars() {
            if k.starts_with("SLUICE_") && k != "SLUICE_LOG" {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = Server {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
            token: String::new(),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                let file = dir.join("data").join(sluice_server::config::TOKEN_FILE);
                server.token = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading the server's token {}", file.display()))?
                    .trim()
                    .to_string();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before answering; see {}",
                    server.log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                server.stop().await;
                bail!("the server did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An HTTP client that sends the server's admin token.
    pub fn client(&self) -> Result<reqwest::Client> {
        super::load::client(&self.token, 64)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory now and at its peak, in MiB, from `/proc/PID/status`.
    pub fn rss_mib(&self) -> (f64, f64) {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Stops the server by its PID: SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
