//! `sluice`: runs the server (`sluice server`) and talks to it over its HTTP API (every other
//! command). The client commands use only the API and its wire types (`sluice_api`); built
//! without the `server` feature, `sluice` is that client alone (no `server`, `bench`, `render`).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use sluice_api::{ErrorBody, JobList, JobView, QueueView};

mod access;
#[cfg(feature = "server")]
mod bench;
mod context;
mod cost;
mod explain;
mod input;
mod jobs;
mod orch;
mod output;
mod simulate;
mod watch;
mod workflow;

use output::{Output, Table, print_as};

/// mimalloc for the server build: with glibc's allocator, malloc and free were a quarter of the
/// server's CPU under a stream of submits (BENCHMARKS.md, "Fifth step").
#[cfg(feature = "server")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where client commands go without --server, SLUICE_SERVER or a context.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7467";

/// A capacity-aware job orchestrator for Apache Spark.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// The server's URL (for client commands; default: the context's, else
    /// http://127.0.0.1:7467).
    #[arg(long, global = true, env = "SLUICE_SERVER")]
    server: Option<String>,
    /// The context (server, token, CA) from the config file to use instead of the current one
    /// (see `sluice config`).
    #[arg(long, global = true, env = "SLUICE_CONTEXT")]
    context: Option<String>,
    /// API token (default: SLUICE_TOKEN, then --token-file, then the context's, then the
    /// server's token file: $SLUICE_DATA_DIR/admin.token, then ./.sluice/admin.token).
    #[arg(long, global = true, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the API token (first line).
    #[arg(long, global = true, env = "SLUICE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust for an https:// server, instead of the system's.
    #[arg(long, global = true, env = "SLUICE_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Tables without their header line (get and list commands).
    #[arg(long, global = true)]
    no_headers: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The format of the server's log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the server (SQLite store and local backend unless configured otherwise).
    Server {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<String>,
        /// How log lines are written to standard error: `text` (for people; coloured only on a
        /// terminal) or `json` (one object per line, for log collectors).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Queues a job (sluice job YAML or a SparkApplication; `-` reads standard input) and prints its id.
    Submit {
        /// The job file.
        file: PathBuf,
        /// Priority level (overrides the file's).
        #[arg(long)]
        priority: Option<String>,
        /// Follow the job until it ends, printing its progress (state changes, queue position
        /// and reason, elapsed time) on standard error; exit non-zero if it did not succeed.
        #[arg(long)]
        wait: bool,
    },
    /// Lists jobs, or shows one (`-w`: then a line per change).
    Get {
        /// A job id (or `job/NAMESPACE/ID`, as `-o name` prints); without it, lists jobs.
        id: Option<String>,
        /// Output format: table, wide (more columns), json, yaml, name (`job/NAMESPACE/ID`).
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
        /// Watch: after the list, print a line (or object) for every job that appears or
        /// changes, until ctrl-c.
        #[arg(short, long)]
        watch: bool,
        /// With -w: stop after this long (like 30s, 5m).
        #[arg(long, value_parser = humantime::parse_duration)]
        watch_timeout: Option<Duration>,
        /// With -w: how often to look at the server.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        watch_interval: Duration,
        /// Only this namespace.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Only these states (comma-separated).
        #[arg(long)]
        state: Option<String>,
        /// Only jobs with these labels (key=value, comma-separated).
        #[arg(short = 'l', long)]
        label: Option<String>,
        /// How many jobs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Shows a job: state, demand, queue position, why it waits, timeline.
    Describe {
        /// Job id.
        id: String,
    },
    /// Prints a job's log.
    Logs {
        /// Job id.
        id: String,
        /// Keep printing until the job ends.
        #[arg(short, long)]
        follow: bool,
        /// The log of this attempt (default: the current one).
        #[arg(long)]
        attempt: Option<u32>,
        /// Only the last N lines (the server reads the log from its end).
        #[arg(long)]
        tail: Option<u32>,
        /// Only lines newer than this, like 30s, 5m, 1h (lines that begin with a time; see
        /// docs/cli.md).
        #[arg(long)]
        since: Option<String>,
    },
    /// Cancels a job.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Live view: cluster utilisation, queues, running and waiting jobs, refreshed in place.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
    },
    /// Schedules: create, list, get (with the next 5 run times), suspend, resume, trigger, delete.
    #[command(subcommand)]
    Schedule(orch::ScheduleCmd),
    /// Workflows: run (a file or a name, with --param), get, describe (the DAG with each
    /// step's state), cancel, rerun (from the failed steps).
    #[command(subcommand)]
    Workflow(workflow::WorkflowCmd),
    /// Creates or updates schedules and workflows from files, by namespace and name, as `kubectl apply`:
    /// prints `schedule/NAMESPACE/NAME created|configured|unchanged` for each (several
    /// documents per file, `---` between them; `-` reads standard input).
    Apply {
        /// The file(s).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
    },
    /// Describes a field of the job spec from the server's schema: type, default, allowed
    /// values, description and sub-fields (`sluice explain spark.executor.memory`; a
    /// SparkApplication's `spec.executor.memory` works too; no FIELD: the top level).
    Explain {
        /// The field's path, dot-separated.
        field: Option<String>,
    },
    /// The dead-letter queue: list, show, requeue, purge.
    #[command(subcommand)]
    Dlq(orch::DlqCmd),
    /// Deletes queued jobs selected by an id or a filter (--dry-run lists them); refuses without
    /// a filter unless --all.
    Purge(orch::PurgeArgs),
    /// Shows the queues: per namespace and level, length and oldest wait.
    Queues {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// API tokens: create (prints the secret once), list, revoke (admin on `*`).
    #[command(subcommand)]
    Token(access::TokenCmd),
    /// The audit log: who did what, where, when, from where (admin on `*`).
    Audit(access::AuditArgs),
    /// Contexts (server, token file, CA) in the config file, like kubeconfig's: get-contexts,
    /// current-context, use-context, set-context, delete-context, view.
    #[command(subcommand)]
    Config(context::ConfigCmd),
    /// Shows the token in use: its id, subject and roles.
    Whoami,
    /// What runs held and used, and what it cost: per job, schedule, namespace, day or run
    /// (docs/cost.md).
    Cost(cost::CostArgs),
    /// Right-sizing advice per job or schedule from its measured runs (docs/cost.md).
    Advise(cost::AdviseArgs),
    /// Measures a real server (this binary, release build) with the simulated backend on SQLite
    /// and PostgreSQL over HTTP: submit rates, RSS, idle tick, submit->admitted latency,
    /// admissions/s and API latency at several queue depths (see BENCHMARKS.md).
    #[cfg(feature = "server")]
    Bench(bench::BenchArgs),
    /// Prints the shell completion script for bash, zsh, fish, elvish or powershell
    /// (`source <(sluice completion bash)`; zsh: `sluice completion zsh > "${fpath[1]}/_sluice"`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints, as YAML, the Kubernetes objects sluice would create for a job (the
    /// SparkApplication; in placeholders mode the placeholder pods too), without contacting a
    /// cluster or a server. `sluice render rbac` prints the Role and RoleBinding each managed
    /// namespace needs.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Render {
        /// What else to render.
        #[command(subcommand)]
        what: Option<RenderWhat>,
        /// The job file (`-` reads standard input).
        #[arg(required = true)]
        file: Option<PathBuf>,
        /// Server configuration to take the levels and the kubernetes settings from.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Priority level (overrides the file's).
        #[arg(long)]
        priority: Option<String>,
    },
    /// Replays a job trace on a cluster in virtual time under each policy and reports waits,
    /// utilisation, fairness and half-started jobs (`generate` writes a synthetic trace).
    Simulate(simulate::SimulateArgs),
}

/// `sluice render` subcommands.
#[derive(Subcommand)]
enum RenderWhat {
    /// Prints the Role and RoleBinding sluice needs in each managed namespace (exactly the verbs
    /// the Kubernetes backend uses), for the namespaces given or those of `backend.namespaces`
    /// in a configuration file: `sluice render rbac --namespaces a,b > deploy/components/namespaces/rbac.yaml`.
    Rbac {
        /// The managed namespaces, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "config",
            required_unless_present = "config"
        )]
        namespaces: Vec<String>,
        /// Server configuration to take `backend.namespaces` from (a kubernetes backend).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The ServiceAccount sluice runs as, NAMESPACE/NAME.
        #[arg(long, default_value = "sluice-system/sluice")]
        service_account: String,
    },
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(base: &str, token: Option<&str>, ca_file: Option<&std::path::Path>) -> Result<Self> {
        let http = access::http_client(token, ca_file)?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn decode<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the server's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            bail!("{msg} (HTTP {})", status.as_u16());
        }
        serde_json::from_slice(&bytes).context("decoding the server's answer")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        let resp = self
            .http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .map_err(|e| access::unreachable(&self.base, e))?;
        self.decode(resp).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: String,
    ) -> Result<T> {
        let resp = self
            .http
            .post(self.url(path))
            .query(query)
            .header("content-type", "application/yaml")
            .body(body)
            .send()
            .await
            .map_err(|e| access::unreachable(&self.base, e))?;
        self.decode(resp).await
    }
}

impl Client {
    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| access::unreachable(&self.base, e))?;
        self.decode(resp).await
    }
}

fn age(rfc: &str) -> String {
    // The API's times are RFC 3339 in UTC; show how long ago.
    let Ok(t) = humantime_parse(rfc) else {
        return rfc.to_string();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn humantime_parse(rfc: &str) -> Result<std::time::SystemTime> {
    Ok(humantime::parse_rfc3339_weak(rfc)?)
}

fn fmt_cpu(milli: u64) -> String {
    sluice_core::quantity::format_cpu_plain(milli)
}

fn fmt_mem(mib: u64) -> String {
    sluice_core::quantity::format_mem(mib)
}

/// Milliseconds since the Unix epoch from the system clock (the client's; the server has its
/// own).
fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The error of a command this `sluice` was built without.
#[cfg(not(feature = "server"))]
fn without_server(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`sluice {what}`: this sluice was built without the server feature (a client only); \
         build it with `cargo build -p sluice --features server`, or use a full sluice"
    )
}

fn is_terminal(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

async fn run(cli: Cli) -> Result<i32> {
    #[cfg(feature = "server")]
    if let Cmd::Server { config, listen, .. } = cli.cmd {
        let mut cfg = sluice_server::Config::load(config.as_deref())?;
        if let Some(l) = listen {
            cfg.listen = l;
            cfg.validate()?;
        }
        sluice_server::serve(cfg).await?;
        return Ok(0);
    }
    #[cfg(not(feature = "server"))]
    if let Cmd::Server { .. } = cli.cmd {
        return Err(without_server("server"));
    }
    #[cfg(not(feature = "server"))]
    if let Cmd::Render { .. } = cli.cmd {
        return Err(without_server("render"));
    }
    #[cfg(feature = "server")]
    if let Cmd::Render {
        what,
        file,
        config,
        priority,
    } = &cli.cmd
    {
        let text = match (what, file) {
            (
                Some(RenderWhat::Rbac {
                    namespaces,
                    config,
                    service_account,
                }),
                _,
            ) => render_rbac(namespaces, config.as_deref(), service_account)?,
            (None, Some(file)) => render(file, config.as_deref(), priority.as_deref())?,
            (None, None) => anyhow::bail!("render: give a job file, or `rbac`"),
        };
        print!("{text}");
        return Ok(0);
    }
    if let Cmd::Completion { shell } = &cli.cmd {
        use clap::CommandFactory;
        use std::io::Write;
        // Into memory first: clap_complete panics on a failed write (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "sluice", &mut script);
        return match std::io::stdout().write_all(&script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(0),
        };
    }
    if let Cmd::Simulate(args) = cli.cmd {
        return simulate::run(args);
    }
    #[cfg(feature = "server")]
    if let Cmd::Bench(args) = &cli.cmd {
        bench::run(args.clone()).await?;
        return Ok(0);
    }
    if let Cmd::Config(cmd) = cli.cmd {
        return context::run(cmd);
    }
    // Flags and environment variables first, then the context, then the defaults.
    let ctx = context::select(cli.context.as_deref())?.unwrap_or_default();
    let server = cli
        .server
        .clone()
        .or(ctx.server.clone())
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let ca_file = cli.ca_file.clone().or(ctx.ca_file.clone());
    let data_dir = std::env::var_os("SLUICE_DATA_DIR").map(PathBuf::from);
    let given = cli.token.is_some() || cli.token_file.is_some();
    let token = match context::context_token(&ctx)? {
        Some(t) if !given => Some(t),
        _ => access::find_token(
            cli.token.as_deref(),
            cli.token_file.as_deref(),
            data_dir.as_deref(),
        )?,
    };
    let c = Client::new(&server, token.as_deref(), ca_file.as_deref())?;
    output::set_no_headers(cli.no_headers);
    match cli.cmd {
        Cmd::Server { .. }
        | Cmd::Render { .. }
        | Cmd::Completion { .. }
        | Cmd::Simulate(_)
        | Cmd::Config(_) => Ok(0),
        #[cfg(feature = "server")]
        Cmd::Bench(_) => Ok(0),
        Cmd::Submit {
            file,
            priority,
            wait,
        } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let mut q = Vec::new();
            if let Some(p) = priority {
                q.push(("priority", p));
            }
            let job: JobView = c.post("/v1/jobs", &q, text).await?;
            println!("{}", job.id);
            if !wait {
                return Ok(0);
            }
            let j = watch::follow(&c, &job.id).await?;
            Ok(if j.state == "succeeded" { 0 } else { 1 })
        }
        Cmd::Get {
            id,
            output,
            watch,
            watch_timeout,
            watch_interval,
            namespace,
            state,
            label,
            limit,
        } => {
            let id = id.as_deref().map(jobs::job_id);
            let mut q = vec![("limit", limit.to_string())];
            if let Some(n) = namespace {
                q.push(("namespace", n));
            }
            if let Some(s) = state {
                q.push(("state", s));
            }
            if let Some(l) = label {
                q.push(("label", l));
            }
            if watch {
                let opts = jobs::WatchOpts {
                    interval: watch_interval.max(Duration::from_millis(100)),
                    timeout: watch_timeout,
                };
                jobs::watch(&c, id, &q, output, opts).await?;
            } else if let Some(id) = id {
                let j: JobView = c.get(&format!("/v1/jobs/{id}"), &[]).await?;
                jobs::print_job(&j, output)?;
            } else {
                let page: JobList = c.get("/v1/jobs", &q).await?;
                jobs::print_jobs(&page.jobs, output)?;
            }
            Ok(0)
        }
        Cmd::Describe { id } => {
            let id = jobs::job_id(&id);
            let j: JobView = c.get(&format!("/v1/jobs/{id}"), &[]).await?;
            jobs::describe(&j);
            Ok(0)
        }
        Cmd::Logs {
            id,
            follow,
            attempt,
            tail,
            since,
        } => {
            let opts = jobs::LogOpts {
                follow,
                attempt,
                tail,
                since,
            };
            jobs::logs(&c, jobs::job_id(&id), opts).await?;
            Ok(0)
        }
        Cmd::Cancel { id } => {
            let id = jobs::job_id(&id);
            let j: JobView = c
                .post(&format!("/v1/jobs/{id}/cancel"), &[], String::new())
                .await?;
            println!("{} {}", j.id, j.state);
            Ok(0)
        }
        Cmd::Top { interval, once } => {
            if !(interval.is_finite() && interval >= 0.1) {
                bail!("--interval = {interval}: must be at least 0.1 seconds");
            }
            watch::top(&c, &server, Duration::from_secs_f64(interval), once).await?;
            Ok(0)
        }
        Cmd::Token(cmd) => access::token(&c, cmd).await,
        Cmd::Audit(args) => access::audit(&c, args).await,
        Cmd::Whoami => access::whoami(&c).await,
        Cmd::Cost(args) => cost::cost(&c, args).await,
        Cmd::Advise(args) => cost::advise(&c, args).await,
        Cmd::Schedule(cmd) => orch::schedule(&c, cmd).await,
        Cmd::Apply { files } => orch::apply(&c, &files).await,
        Cmd::Workflow(cmd) => workflow::workflow(&c, cmd).await,
        Cmd::Explain { field } => {
            let doc: serde_json::Value = c.get("/openapi.json", &[]).await?;
            print!(
                "{}",
                explain::explain(&doc, field.as_deref().unwrap_or(""))?
            );
            Ok(0)
        }
        Cmd::Dlq(cmd) => orch::dlq(&c, cmd).await,
        Cmd::Purge(args) => orch::purge(&c, args).await,
        Cmd::Queues { output } => {
            let qs: Vec<QueueView> = c.get("/v1/queues", &[]).await?;
            if output.is_table() {
                let mut t = Table::new(&["NAMESPACE", "LEVEL", ">QUEUED", ">OLDEST WAIT"]);
                for q in qs {
                    t.row(vec![
                        q.namespace,
                        q.level,
                        q.queued.to_string(),
                        format!("{:.0}s", q.oldest_wait_seconds),
                    ]);
                }
                t.print();
            } else if output == Output::Name {
                for q in qs {
                    println!("queue/{}/{}", q.namespace, q.level);
                }
            } else {
                print_as(&qs, output)?;
            }
            Ok(0)
        }
    }
}

/// `sluice render`: the objects of attempt 1 of the job, offline.
#[cfg(feature = "server")]
fn render(
    file: &std::path::Path,
    config: Option<&std::path::Path>,
    priority: Option<&str>,
) -> Result<String> {
    use sluice_backend::kubernetes::render::{RENDER_JOB_ID, render_job, to_yaml};
    let cfg = sluice_server::Config::load(config)?;
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let levels = cfg.levels();
    let job = sluice_core::document::parse_job(
        &text,
        sluice_core::spec::ParseOptions {
            priority,
            levels: &levels,
        },
    )?;
    let demand = sluice_core::sizing::job_demand(&job)?;
    let kube = cfg.kube_settings()?;
    let objects = render_job(&job, RENDER_JOB_ID, 1, &demand, &kube.settings)?;
    Ok(to_yaml(&objects)?)
}

/// `sluice render rbac`: the per-namespace Role and RoleBinding, from the namespaces given or
/// the configuration's `backend.namespaces`.
#[cfg(feature = "server")]
fn render_rbac(
    namespaces: &[String],
    config: Option<&std::path::Path>,
    service_account: &str,
) -> Result<String> {
    use sluice_backend::kubernetes::render::{namespace_rbac, to_yaml};
    let from_config;
    let namespaces = match config {
        Some(path) => {
            let cfg = sluice_server::Config::load(Some(path))?;
            if !matches!(
                cfg.backend,
                sluice_server::config::BackendConfig::Kubernetes(_)
            ) {
                anyhow::bail!(
                    "{}: backend.kind is not \"kubernetes\", so it manages no namespaces",
                    path.display()
                );
            }
            from_config = cfg.kube_settings()?.settings.namespaces;
            &from_config
        }
        None => namespaces,
    };
    let objects = namespace_rbac(namespaces, service_account)?;
    Ok(format!(
        "# Generated by `sluice render rbac` for namespaces {}: what sluice needs in each\n\
         # managed namespace (docs/configuration.md). Regenerate it when the list changes.\n{}",
        namespaces.join(","),
        to_yaml(&objects)?
    ))
}

/// Sends log lines (level from `SLUICE_LOG`, default `info`) to standard error: as text,
/// coloured only when standard error is a terminal, or as JSON.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

fn main() {
    let cli = Cli::parse();
    // ring for every TLS client and server of this process (reqwest takes it from here), as
    // `sluice_backend::install_crypto_provider` does; installed once, before any client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(match &cli.cmd {
        Cmd::Server { log_format, .. } => *log_format,
        _ => LogFormat::Text,
    });
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
