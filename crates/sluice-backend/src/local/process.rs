//! Processes: starting a run (spawn), re-attaching the runs of an earlier server, their status
//! and cancelling them (SIGTERM, then SIGKILL).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;

use sluice_core::secretref::SecretRef;
use sluice_core::spec::{JobKind, PythonSpec, Text};
use tokio::sync::watch;

use super::os::{is_our_run, signal_group, wait_group_gone};
use super::rundir::{
    EVENT_LOG, EXIT_CODE, KILLED_BY, LOG, META, PID, RUSAGE, RunMeta, alive_unfinished,
    ended_status, read_pid,
};
use super::state::{LiveRun, LocalBackend, RunKey, Shared};
use crate::fsutil::{io_err, now_ms, write_atomic};
use crate::kinds::{
    RunFile, dbt_argv, python_command, run_files, venvs_dir, with_python_env, write_run_files,
};
use crate::secrets::resolve_here;
use crate::spark_submit::spark_submit_argv_logged;
use crate::{BackendError, RunStatus, SubmitRequest};

/// The wrapper run by `/bin/sh -c SCRIPT <run dir> <argv...>`. It records the command's exit code
/// in the run directory whatever happens to sluice. `trap : TERM` makes the shell wait for the
/// command on SIGTERM (sent to the whole group by a cancel) and still record its code; a handled
/// (not ignored) signal is reset to its default in the command, so the command itself stops.
pub(super) const WRAPPER: &str = r#"trap : TERM
"$@"
code=$?
printf '%s\n' "$code" > "$SLUICE_RUN_DIR/exit_code.tmp" && mv -f "$SLUICE_RUN_DIR/exit_code.tmp" "$SLUICE_RUN_DIR/exit_code"
exit $code"#;

/// How long to wait for the waiter task to record the end of a child that is seen dead.
pub(super) const WAITER_WAIT: Duration = Duration::from_secs(5);
/// How long a cancel waits for the process group to disappear after SIGKILL.
pub(super) const AFTER_KILL_WAIT: Duration = Duration::from_secs(5);

impl LocalBackend {
    pub(super) async fn reattach(&self) -> Result<(), BackendError> {
        let runs_dir = &self.shared.runs_dir;
        let mut jobs = tokio::fs::read_dir(runs_dir)
            .await
            .map_err(io_err(format!("reading {}", runs_dir.display())))?;
        while let Some(job) = jobs
            .next_entry()
            .await
            .map_err(io_err(format!("reading {}", runs_dir.display())))?
        {
            let Ok(mut attempts) = tokio::fs::read_dir(job.path()).await else {
                continue;
            };
            while let Ok(Some(att)) = attempts.next_entry().await {
                let dir = att.path();
                if let Some((meta, pid)) = alive_unfinished(&dir).await {
                    tracing::info!(
                        job_id = %meta.job_id, attempt = meta.attempt, pid,
                        "local backend: re-attached a run still alive"
                    );
                    self.shared.live().insert(
                        (meta.job_id, meta.attempt),
                        LiveRun {
                            pid,
                            demand: meta.demand,
                            dir,
                            ended: None,
                            waiter: None,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Builds the program, arguments, environment, working directory and files of a run.
    pub(super) fn command_for(
        &self,
        req: &SubmitRequest,
        dir: &Path,
    ) -> Result<Launch, BackendError> {
        let files = run_files(&req.job)?;
        let mut launch = match &req.job.kind {
            JobKind::Spark { .. } | JobKind::SparkSql(_) => self.spark_launch(req, dir)?,
            JobKind::Python(p) if p.spark => {
                let mut l = self.spark_launch(req, dir)?;
                if let Some(i) = &p.interpreter {
                    l.env.retain(|(k, _)| k != "PYSPARK_PYTHON");
                    l.env.push(("PYSPARK_PYTHON".into(), i.clone()));
                }
                l.env
                    .extend(p.env.iter().map(|(k, v)| (k.clone(), v.0.clone())));
                if let Some(w) = &p.working_dir {
                    l.cwd = working_dir("python.workingDir", w, dir)?;
                }
                let python = self.python_of(p);
                l.argv = with_python_env(p, &python, dir, &self.venvs(), l.argv)?;
                l
            }
            JobKind::Python(p) => {
                let python = self.python_of(p);
                let argv = with_python_env(p, &python, dir, &self.venvs(), python_command(p))?;
                process_launch(
                    argv,
                    &p.env,
                    ("python.secretEnv", &p.secret_env),
                    p.working_dir.as_deref().map(|w| ("python.workingDir", w)),
                    dir,
                )?
            }
            JobKind::Dbt(d) => {
                let dbt = self.dbt_executable();
                let argv = dbt_argv(d, &dbt, dir)?;
                let mut l = process_launch(
                    argv,
                    &d.env,
                    ("dbt.secretEnv", &d.secret_env),
                    d.project_dir.as_deref().map(|w| ("dbt.projectDir", w)),
                    dir,
                )?;
                // dbt's own log goes into the run directory, not the project.
                l.env.push((
                    "DBT_LOG_PATH".into(),
                    dir.join("dbt-logs").to_string_lossy().into_owned(),
                ));
                l
            }
            JobKind::Command(c) => {
                let argv: Vec<String> = c.argv.iter().map(|a| a.0.clone()).collect();
                if argv.is_empty() {
                    return Err(BackendError::Rejected(format!(
                        "job {} has an empty command.argv",
                        req.job.name
                    )));
                }
                process_launch(
                    argv,
                    &c.env,
                    ("command.secretEnv", &c.secret_env),
                    c.working_dir.as_deref().map(|w| ("command.workingDir", w)),
                    dir,
                )?
            }
        };
        launch.files = files;
        Ok(launch)
    }

    /// A run of `spark-submit` in local mode for a job run by Spark.
    fn spark_launch(&self, req: &SubmitRequest, dir: &Path) -> Result<Launch, BackendError> {
        let home = self.shared.spark_home.as_deref().ok_or_else(|| {
            BackendError::Config(
                "spark-submit not found: run scripts/ensure-pyspark.sh (it installs \
                 pyspark into .venv) or set [backend] spark_home (or $SPARK_HOME)"
                    .into(),
            )
        })?;
        let event_log = dir.join(EVENT_LOG);
        let argv = spark_submit_argv_logged(
            home,
            &self.shared.cfg.image_spark_home,
            &req.job,
            &event_log,
        )?;
        let mut env = vec![
            (
                "SPARK_HOME".to_string(),
                home.to_string_lossy().into_owned(),
            ),
            ("SPARK_LOCAL_IP".to_string(), "127.0.0.1".to_string()),
        ];
        if let Some(py) = &self.shared.python {
            env.push((
                "PYSPARK_PYTHON".to_string(),
                py.to_string_lossy().into_owned(),
            ));
        }
        if let Some(spec) = req.job.kind.spark_spec() {
            let field = format!("{}.secretEnv", req.job.kind.section());
            env.extend(resolve_here(&field, &spec.secret_env)?);
        }
        Ok(Launch {
            argv,
            env,
            cwd: dir.to_path_buf(),
            event_log: Some(event_log),
            files: Vec::new(),
        })
    }

    /// The Python a `python` job runs with (or makes its environment from): its
    /// `interpreter`, else the backend's python, else `python3` on the `PATH`.
    fn python_of(&self, p: &PythonSpec) -> String {
        p.interpreter.clone().unwrap_or_else(|| {
            self.shared
                .python
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "python3".into())
        })
    }

    /// Where the virtual environments of `python` jobs are kept.
    fn venvs(&self) -> PathBuf {
        venvs_dir(&self.shared.cfg.data_dir)
    }

    /// The `dbt` executable: configured, else next to the backend's python, else `dbt`.
    fn dbt_executable(&self) -> String {
        if let Some(d) = &self.shared.cfg.dbt {
            return d.to_string_lossy().into_owned();
        }
        if let Some(py) = &self.shared.python
            && let Some(bin) = py.parent()
            && bin.join("dbt").is_file()
        {
            return bin.join("dbt").to_string_lossy().into_owned();
        }
        "dbt".into()
    }

    pub(super) async fn start(
        &self,
        req: &SubmitRequest,
        dir: &Path,
        launch: Launch,
    ) -> Result<u32, BackendError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_err(format!("creating {}", dir.display())))?;
        // Spark refuses to start without its event log directory.
        let inside = [Some(&launch.cwd), launch.event_log.as_ref()];
        for d in inside.into_iter().flatten().filter(|d| d.starts_with(dir)) {
            tokio::fs::create_dir_all(d)
                .await
                .map_err(io_err(format!("creating {}", d.display())))?;
        }
        if let Some(user) = &self.shared.cfg.run_as {
            // The run's user writes its run directory (exit code, Spark's scratch space and
            // event log).
            let log_dir = launch.event_log.as_deref().unwrap_or(dir);
            for d in [dir, launch.cwd.as_path(), log_dir] {
                if d.starts_with(dir) {
                    std::os::unix::fs::chown(d, Some(user.uid), Some(user.gid))
                        .map_err(io_err(format!("giving {} to {}", d.display(), user.name)))?;
                }
            }
        }
        write_run_files(dir, &launch.files).await?;
        let log_path = dir.join(LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg(dir)
            .args(&launch.argv)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .env("SLUICE_RUN_DIR", dir)
            .env("SLUICE_JOB_ID", &req.job_id)
            .env("SLUICE_ATTEMPT", req.attempt.to_string())
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0);
        if let Some(user) = &self.shared.cfg.run_as {
            // std drops the supplementary groups when root switches users.
            cmd.uid(user.uid)
                .gid(user.gid)
                .env("HOME", dir)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
        }
        // meta.json marks the attempt as started: written last before the spawn, and removed
        // again if the spawn fails, so that a failed start can be submitted again.
        let meta = RunMeta {
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            demand: req.demand.clone(),
            argv: launch.argv.clone(),
            started_ms: now_ms(),
        };
        let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| BackendError::Io {
            context: "encoding meta.json".into(),
            source: e.into(),
        })?;
        write_atomic(&dir.join(META), &meta_json).await?;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                // Nothing runs: forget the attempt so that it can be submitted again.
                let _ = tokio::fs::remove_file(dir.join(META)).await;
                return Err(BackendError::Io {
                    context: format!("starting {}", launch.argv.join(" ")),
                    source: e,
                });
            }
        };
        let Some(pid) = child.id() else {
            // invariant: a child not yet waited for has an id; if not, reap it and report.
            let _ = child.wait().await;
            return Err(BackendError::Io {
                context: "starting the run".into(),
                source: std::io::Error::other("the process ended before its pid was known"),
            });
        };
        if let Err(e) = write_atomic(&dir.join(PID), format!("{pid}\n").as_bytes()).await {
            // Without its pid file the run could not be found again: stop it and undo.
            if let Ok(raw) = i32::try_from(pid) {
                let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            let _ = tokio::fs::remove_file(dir.join(META)).await;
            return Err(e);
        }
        let key = (req.job_id.clone(), req.attempt);
        let (tx, rx) = watch::channel(false);
        // Hold the map lock while spawning so the waiter cannot remove the entry before it is in.
        let mut live = self.shared.live();
        let waiter = tokio::spawn(wait_child(
            Arc::clone(&self.shared),
            key.clone(),
            dir.to_path_buf(),
            child,
            tx,
        ));
        live.insert(
            key,
            LiveRun {
                pid,
                demand: req.demand.clone(),
                dir: dir.to_path_buf(),
                ended: Some(rx),
                waiter: Some(waiter.abort_handle()),
            },
        );
        Ok(pid)
    }

    pub(super) async fn status_of(
        &self,
        job_id: &str,
        attempt: u32,
    ) -> Result<RunStatus, BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        let key = (job_id.to_string(), attempt);
        if let Some(s) = ended_status(&dir).await {
            self.shared.forget_ended(&key);
            return Ok(s);
        }
        let pid = match read_pid(&dir).await {
            Some(pid) => pid,
            None => {
                // A submit may be between meta.json and the pid file: let it finish.
                drop(self.shared.submit_lock.lock().await);
                match read_pid(&dir).await {
                    Some(pid) => pid,
                    None => {
                        return Ok(ended_status(&dir).await.unwrap_or(RunStatus::Lost {
                            message: "no process was recorded for this run (sluice stopped \
                                      while starting it?)"
                                .into(),
                        }));
                    }
                }
            }
        };
        if is_our_run(pid, &dir) {
            return Ok(RunStatus::Running);
        }
        if !self.wait_for_waiter(&key).await {
            // Our waiter is still recording how the run ended (a loaded machine: it reads the
            // usage, reaps the child and writes a file): it is ending, ask again later rather
            // than calling it lost.
            return Ok(RunStatus::Running);
        }
        self.shared.forget(&key);
        Ok(ended_status(&dir).await.unwrap_or_else(|| RunStatus::Lost {
            message: "the process is gone and left no exit code (it was killed while sluice \
                      was down?)"
                .into(),
        }))
    }

    /// When we hold the child of a run, waits (bounded) until its waiter has recorded its end.
    /// False when the waiter is still at work after [`WAITER_WAIT`]; true when it is done or
    /// there is none (a re-attached run, or the waiter already finished and left).
    pub(super) async fn wait_for_waiter(&self, key: &RunKey) -> bool {
        let rx = self.shared.live().get(key).and_then(|r| r.ended.clone());
        match rx {
            Some(mut rx) => tokio::time::timeout(WAITER_WAIT, rx.wait_for(|done| *done))
                .await
                .is_ok(),
            None => true,
        }
    }

    /// SIGTERM to the run's process group, then SIGKILL if it is still there after `grace`.
    pub(super) async fn cancel_run(
        &self,
        job_id: &str,
        attempt: u32,
        grace: std::time::Duration,
    ) -> Result<(), BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        let key = (job_id.to_string(), attempt);
        let pid = match read_pid(&dir).await {
            Some(pid) if ended_status(&dir).await.is_none() && is_our_run(pid, &dir) => pid,
            _ => {
                self.shared.forget_ended(&key);
                return Ok(());
            }
        };
        let Ok(raw) = i32::try_from(pid) else {
            return Ok(());
        };
        let pgid = Pid::from_raw(raw);
        tracing::info!(job_id, attempt, pid, "local backend: cancelling (SIGTERM)");
        signal_group(pgid, Signal::SIGTERM)?;
        if !wait_group_gone(pid, grace).await {
            tracing::info!(job_id, attempt, pid, "local backend: still alive, SIGKILL");
            signal_group(pgid, Signal::SIGKILL)?;
            if !wait_group_gone(pid, AFTER_KILL_WAIT).await {
                tracing::warn!(
                    job_id,
                    attempt,
                    pid,
                    "local backend: process group still present after SIGKILL"
                );
            }
        }
        // Bounded: a cancel does not wait for ever on a waiter that is slow to record the end.
        let _ = self.wait_for_waiter(&key).await;
        self.shared.forget(&key);
        Ok(())
    }
}

/// What to run: program and arguments, extra environment and working directory.
pub(crate) struct Launch {
    /// Program and arguments.
    pub(crate) argv: Vec<String>,
    /// Extra environment.
    pub(crate) env: Vec<(String, String)>,
    /// Working directory.
    pub(crate) cwd: PathBuf,
    /// Where Spark writes the run's event log (inside the run directory; created before the
    /// start), none for a command.
    pub(crate) event_log: Option<PathBuf>,
    /// Files written into the run directory before the start (a `sparkSql` job's runner and
    /// statements, the Python environment bootstrap).
    pub(crate) files: Vec<RunFile>,
}

/// The working directory of a process: a relative one is inside the run directory (the parser
/// refuses `..`; it is created with the run directory), an absolute one must exist.
fn working_dir(field: &str, w: &str, dir: &Path) -> Result<PathBuf, BackendError> {
    if !Path::new(w).is_absolute() {
        return Ok(dir.join(w));
    }
    let w = PathBuf::from(w);
    if !w.is_dir() {
        return Err(BackendError::Rejected(format!(
            "{field} {} is not a directory",
            w.display()
        )));
    }
    Ok(w)
}

/// A run of one process (a command, a `python` job without Spark, a `dbt` job): `argv` with
/// the job's environment, its secrets (read now, from this host, into the run's environment
/// only) and its working directory (default the run directory).
fn process_launch(
    argv: Vec<String>,
    env: &BTreeMap<String, Text>,
    (secret_field, secret_env): (&str, &BTreeMap<String, SecretRef>),
    work: Option<(&str, &str)>,
    dir: &Path,
) -> Result<Launch, BackendError> {
    let cwd = match work {
        Some((field, w)) => working_dir(field, w, dir)?,
        None => dir.to_path_buf(),
    };
    let mut env: Vec<(String, String)> =
        env.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    env.extend(resolve_here(secret_field, secret_env)?);
    Ok(Launch {
        argv,
        env,
        cwd,
        event_log: None,
        files: Vec::new(),
    })
}

/// Reaps the child, records how it ended when the wrapper could not, and drops the run from
/// the live set.
pub(super) async fn wait_child(
    shared: Arc<Shared>,
    key: RunKey,
    dir: PathBuf,
    mut child: tokio::process::Child,
    tx: watch::Sender<bool>,
) {
    // What the process tree used, read before the child is reaped (afterwards it is gone).
    if let Some(pid) = child.id() {
        let usage = tokio::task::spawn_blocking(move || super::rusage::wait_usage(pid)).await;
        if let Ok(Some(u)) = usage
            && let Ok(json) = serde_json::to_vec(&u)
            && let Err(e) = write_atomic(&dir.join(RUSAGE), &json).await
        {
            tracing::warn!(error = %e, "local backend: could not record a run's usage");
        }
    }
    match child.wait().await {
        Ok(status) => {
            let has_code = tokio::fs::try_exists(dir.join(EXIT_CODE))
                .await
                .unwrap_or(false);
            if !has_code {
                let (file, text) = match (status.signal(), status.code()) {
                    (Some(sig), _) => (KILLED_BY, format!("{sig}\n")),
                    (None, Some(code)) => (EXIT_CODE, format!("{code}\n")),
                    (None, None) => (KILLED_BY, "0\n".to_string()),
                };
                if let Err(e) = write_atomic(&dir.join(file), text.as_bytes()).await {
                    tracing::warn!(error = %e, "local backend: could not record a run's end");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "local backend: waiting for a run failed"),
    }
    let _ = tx.send(true);
    shared.forget(&key);
}
