//! Test harness: starts the real `sluice` binary as a server on a free loopback port with a temp
//! data directory, runs CLI commands against it, and stops every process it started (the server
//! and every job's process group) by PID when dropped.

#![allow(dead_code)]

pub mod browser;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// True when something listens on 127.0.0.1:`port`. A connect to a free port of the ephemeral
/// range can take that same port as its own and connect the socket to itself (TCP simultaneous
/// open): then nothing listens, and a test that took it for the server read a token file the
/// server had not written yet.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
}

/// pyspark's Spark home and python, installing pyspark into the repo's .venv on first use.
pub fn pyspark() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/ensure-pyspark.sh"))
        .output()
        .expect("run scripts/ensure-pyspark.sh");
    assert!(
        out.status.success(),
        "ensure-pyspark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let python = bin.join("python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .expect("python");
    let home = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    assert!(
        home.join("bin/spark-submit").exists(),
        "no spark-submit in {}",
        home.display()
    );
    (home, python)
}

/// dbt from scripts/ensure-dbt.sh (installed on first use).
pub fn dbt() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/ensure-dbt.sh"))
        .output()
        .expect("run scripts/ensure-dbt.sh");
    assert!(
        out.status.success(),
        "ensure-dbt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies a directory tree, leaving out dbt's `logs` and `target` directories.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        if name == "logs" || name == "target" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(name));
        } else {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Writes `config_body` (plus listen and data_dir) and starts the server.
    pub fn start(config_body: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("sluice.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{config_body}",
            dir.path().join("data").display()
        );
        std::fs::write(&config, text).expect("write config");
        let mut s = Server {
            dir,
            port,
            config,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let child = Command::new(BIN)
            .args(["server", "--config"])
            .arg(&self.config)
            .env_remove("SLUICE_SERVER")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start sluice server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if listening(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not listen; log:\n{}", self.log());
    }

    /// SIGKILL the server (its jobs keep running in their own process groups).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
        }
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Sends `signal` to the server process (SIGSTOP, SIGCONT...).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin token file the server wrote in its data directory on its first start.
    pub fn token_path(&self) -> PathBuf {
        self.dir.path().join("data/admin.token")
    }

    /// The server's bootstrap admin token (what the CLI on the same host reads).
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.token_path())
            .unwrap_or_else(|e| {
                panic!(
                    "no token file {} ({e}); server log:\n{}",
                    self.token_path().display(),
                    self.log()
                )
            })
            .trim()
            .to_string()
    }

    /// Runs a CLI command against this server, with its admin token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(args, &self.token())
    }

    /// Runs a CLI command against this server with the given token.
    pub fn cli_as(&self, args: &[&str], token: &str) -> Output {
        Command::new(BIN)
            .args(args)
            .env("SLUICE_SERVER", self.url())
            .env("SLUICE_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("run sluice")
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "sluice {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write job file");
        p.display().to_string()
    }

    pub fn submit(&self, file: &str, extra: &[&str]) -> String {
        let mut args = vec!["submit", file];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_string()
    }

    pub fn job(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", id, "-o", "json"])).expect("job json")
    }

    pub fn state(&self, id: &str) -> String {
        self.job(id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls until the job is in `want` (or a terminal state), at most `secs`.
    pub fn wait_for(&self, id: &str, want: &[&str], secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.state(id);
            if want.contains(&s.as_str()) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "job {id} is {s}, wanted {want:?} within {secs}s\n{}\nserver log:\n{}",
                    self.ok(&["describe", id]),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Process ids of every run the local backend started.
    pub fn run_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        let runs = self.dir.path().join("data/runs");
        let Ok(jobs) = std::fs::read_dir(runs) else {
            return pids;
        };
        for job in jobs.flatten() {
            let Ok(attempts) = std::fs::read_dir(job.path()) else {
                continue;
            };
            for a in attempts.flatten() {
                if let Ok(t) = std::fs::read_to_string(a.path().join("pid"))
                    && let Ok(p) = t.trim().parse()
                {
                    pids.push(p);
                }
            }
        }
        pids
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        // Every job ran in its own process group led by the pid in its run directory.
        for pid in self.run_pids() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
