//! The sluice server: the submitter loop ([`tick`]), the HTTP API ([`api`]) and their
//! settings ([`config`]).
//!
//! Modules by layer, each importing only from the ones below it:
//! - [`api`] (HTTP handlers, by resource) and [`ui`] (the web page);
//! - [`auth`] (who is calling, the route table of who may call what, tokens, the audit log);
//! - [`tick`] (the submitter loop: reconcile, orchestrate, admit, submit, roll up);
//! - [`admission`] (can this job ever run here: one gate for submit, schedules and retries);
//! - [`orchestration`] (schedule and dead-letter operations the API calls, and a schedule's run);
//! - [`state`] (what the handlers and the loop share);
//! - [`guard`] (command jobs and secret references a privilege; headers, rate limit, body size
//!   and type, timeout: between the network and the handlers), [`transport`] (the accept loop),
//!   [`tls`] (HTTPS, its certificate reloaded on change),
//!   [`redact`] (secrets out of answers and logs);
//! - [`queue`] (the waiting jobs in memory, kept by the store's writes) and [`submitq`] (group
//!   commit of submits);
//! - [`metrics`], [`cluster`], [`aside`], [`fault`], [`time`], [`jwks`] (the identity
//!   provider's keys), [`config`] (leaves).

pub mod admission;
pub mod api;
pub mod aside;
pub mod auth;
pub mod cancel;
pub mod cluster;
pub mod config;
pub mod eta;
pub mod fault;
pub mod guard;
pub mod held;
pub mod instance;
pub mod jwks;
pub mod leader;
pub mod metrics;
pub mod orchestration;
pub mod queue;
pub mod redact;
pub mod replicas;
pub mod runtime;
pub mod state;
pub mod submitq;
pub mod tick;
pub mod time;
pub mod tls;
pub mod token_cache;
pub mod transport;
pub mod ui;
pub mod workflows;

use std::sync::Arc;
use std::time::Duration;

use sluice_backend::Backend;
use sluice_backend::clock::{Clock, SystemClock};
use sluice_backend::local::{LocalBackend, LocalConfig};
use sluice_backend::simulated::SimulatedBackend;
use sluice_backend::standalone::{StandaloneBackend, StandaloneConfig};

pub use api::app;
use config::BackendConfig;
pub use config::Config;
pub use state::AppState;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] sluice_store::StoreError),
    /// The backend could not be set up.
    #[error("backend: {0}")]
    Backend(#[from] sluice_backend::BackendError),
    /// The scheduler task ended (it panicked, or returned): sluice stops rather than serve an
    /// API that never admits a job again.
    #[error(
        "the scheduler loop ended ({0}); stopping the server, which would never admit a job again"
    )]
    SchedulerDied(String),
    /// Another server uses the same SQLite database.
    #[error(transparent)]
    Instance(#[from] instance::InstanceError),
    /// The bootstrap admin token could not be made or written.
    #[error("auth: {0}")]
    Auth(#[from] auth::token::TokenError),
    /// The TLS certificate or key (`[tls]`) cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Listening or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the store and the backend named by the configuration.
pub async fn build_state(config: Config) -> Result<AppState, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::Io {
        context: format!("creating data_dir {}", config.data_dir.display()),
        source,
    })?;
    let store = sluice_store::open(&config.store_url()).await?;
    let backend = build_backend(&config, Arc::new(SystemClock)).await?;
    let state = AppState::new(store, backend, config);
    auth::token::bootstrap(&state).await?;
    Ok(state)
}

/// The backend named by `backend.kind` (the configuration is validated already). The simulated
/// backend reads its time from `clock`.
async fn build_backend(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Backend>, ServerError> {
    let (cores, memory) = config.budget()?;
    let (dc, dm) = sluice_backend::local::detect_budget();
    match &config.backend {
        BackendConfig::SparkStandalone(b) => {
            let (master_url, web_url) = b.urls().map_err(config::ConfigError::from)?;
            let mut sc = StandaloneConfig::new(master_url, web_url, config.data_dir.clone());
            sc.rest_url = b.rest_url.clone();
            sc.deploy_mode = b.deploy_mode().map_err(config::ConfigError::from)?;
            sc.driver_host = b.driver_host.clone();
            sc.driver_memory_mib = memory.unwrap_or(dm);
            sc.spark_home = b.spark_home.clone();
            sc.python = b.python.clone();
            sc.image_spark_home = b.image_spark_home.clone();
            sc.kill_grace = Duration::from_secs(b.kill_grace_secs);
            sc.event_log = b.event_log().map_err(config::ConfigError::from)?;
            Ok(Arc::new(StandaloneBackend::new(sc).await?))
        }
        BackendConfig::Kubernetes(k) => {
            let k = k.settings().map_err(config::ConfigError::from)?;
            Ok(Arc::new(
                sluice_backend::kubernetes::KubeBackend::connect(&k.credentials, k.settings)
                    .await?,
            ))
        }
        BackendConfig::Simulated(s) => Ok(Arc::new(SimulatedBackend::new(s, clock)?)),
        BackendConfig::Local(b) => Ok(Arc::new(
            LocalBackend::new(LocalConfig {
                cores_milli: cores.unwrap_or(dc),
                memory_mib: memory.unwrap_or(dm),
                data_dir: config.data_dir.clone(),
                spark_home: b.spark_home.clone(),
                python: b.python.clone(),
                dbt: b.dbt.clone(),
                image_spark_home: b.image_spark_home.clone(),
                kill_grace: Duration::from_secs(b.kill_grace_secs),
                run_as: b
                    .run_as
                    .as_deref()
                    .map(|name| sluice_backend::local::RunAs::lookup("backend.run_as", name))
                    .transpose()?,
            })
            .await?,
        )),
    }
}

/// Runs the server until ctrl-c or SIGTERM (`Ok`), or until its scheduler loop dies
/// ([`ServerError::SchedulerDied`]; see [`run_supervised`]).
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let listen = config.listen.clone();
    match transport::raise_open_files(config.limits.open_files) {
        Ok((from, to)) if from != to => {
            tracing::info!("open-file limit raised from {from} to {to}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("could not raise the open-file limit: {e}"),
    }
    // A certificate that cannot be used stops the start before anything else (and is loaded
    // again, for serving, by run_supervised).
    tls::Tls::from_config(&config.tls)?;
    // One server per SQLite file (held until the process ends).
    let _instance = instance::lock(&config.store_url())?;
    let state = build_state(config).await?;
    if let Err(e) = instance::protect(&state.config.store_url()) {
        tracing::warn!("making the SQLite database readable by the server only: {e}");
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| ServerError::Io {
            context: format!("listening on {listen}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServerError::Io {
        context: "reading the listen address".into(),
        source,
    })?;
    tracing::info!(
        "{}",
        listening_line(
            local,
            state.config.tls.files().is_some(),
            &state.config.store_url(),
            state.backend.kind()
        )
    );
    if state.config.auth.enabled {
        tracing::info!(
            "authentication on: every API call needs a bearer token (the admin token of this \
             server is in {} unless it was removed)",
            state
                .config
                .auth
                .token_path(&state.config.data_dir)
                .display()
        );
    } else {
        tracing::warn!(
            "AUTHENTICATION IS OFF (auth.enabled = false): anyone who can reach {local} acts \
             as admin in every namespace. Allowed only on a loopback address; foreign Host \
             headers and cross-site requests are still refused."
        );
    }
    run_supervised(state, listener, shutdown_signal()).await
}

/// The line logged at start: the address (https with `[tls]`), the store (its password hidden)
/// and the backend.
pub fn listening_line(
    local: std::net::SocketAddr,
    tls: bool,
    store_url: &str,
    backend: &str,
) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!(
        "sluice listening on {scheme}://{local} (store {}, backend {backend})",
        redact::url(store_url)
    )
}

/// Serves the API on `listener` and runs the scheduler loop beside it, until `shutdown`
/// completes (then `Ok`) or the loop ends: the loop never ends on its own, so its end (a panic,
/// say) is logged as an error and returned as [`ServerError::SchedulerDied`], and the process
/// exits non-zero instead of serving an API that never admits again.
pub async fn run_supervised(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = tls::Tls::from_config(&state.config.tls)?;
    let mut loop_task = tokio::spawn(tick::run_loop(state.clone()));
    let elector = tokio::spawn(replicas::run_elector(state.clone()));
    let follower = tokio::spawn(replicas::follow_changes(state.clone()));
    let limits = state.config.limits.clone();
    let keep = state.clone();
    let router = app(state);
    // The peer address reaches the handlers as `ConnectInfo` (the audit log's "from where",
    // the rate limit's key).
    let server = async move { transport::serve(listener, router, &limits, tls, shutdown).await };
    tokio::select! {
        served = server => {
            loop_task.abort();
            elector.abort();
            follower.abort();
            // A graceful stop hands the lead over at once.
            leader::release(&keep.leader, keep.store.as_ref()).await;
            served.map_err(|source| ServerError::Io {
                context: "serving HTTP".into(),
                source,
            })
        }
        ended = &mut loop_task => {
            let why = match ended {
                Ok(()) => "it returned".to_string(),
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let text = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    format!("it panicked: {text}")
                }
                Err(e) => format!("it was stopped: {e}"),
            };
            elector.abort();
            follower.abort();
            leader::release(&keep.leader, keep.store.as_ref()).await;
            let err = ServerError::SchedulerDied(why);
            tracing::error!("{err}");
            Err(err)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
