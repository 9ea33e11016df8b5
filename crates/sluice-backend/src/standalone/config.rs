//! The Spark standalone backend's configuration and constants.

use std::path::PathBuf;
use std::time::Duration;

use sluice_core::sizing::DeployMode;

use crate::local::LocalConfig;

/// The backend's name in configuration and logs.
pub const KIND: &str = "spark-standalone";
/// Sent as `clientSparkVersion` in REST requests; the master only checks that it is set.
pub(super) const CLIENT_SPARK_VERSION: &str = "4.0.1";
/// What Spark's `StandaloneSchedulerBackend` logs (INFO) once the master registered the app.
pub(super) const APP_ID_MARKER: &str = "Connected to Spark cluster with app ID ";
/// How much of a client-mode driver's log (a local file) is searched for [`APP_ID_MARKER`].
pub(super) const APP_ID_SCAN_BYTES: u64 = 16 << 20;
/// How much of a cluster-mode driver's stderr (fetched from its worker) is searched.
pub(super) const APP_ID_SCAN_REMOTE_BYTES: u64 = 1 << 20;
/// A client-mode driver whose application id is still unknown after this long is reported
/// running anyway (its log level may hide the line), so that `maxRuntime` applies to it.
pub(super) const APP_ID_GRACE: Duration = Duration::from_secs(120);
/// How old a cached `/json/` may be for [`Backend::status`] (capacity always reads it afresh).
pub(super) const STATE_MAX_AGE: Duration = Duration::from_secs(2);
/// The run record, in the run directory.
pub(super) const RECORD: &str = "standalone.json";
/// Written in a cluster-mode run directory once its driver has ended.
pub(super) const ENDED: &str = "standalone-ended";
/// Configuration of the Spark standalone backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandaloneConfig {
    /// The master, `spark://host:port` (what `spark-submit --master` takes).
    pub master_url: String,
    /// The master's web UI, `http://host:port` (its `/json/` is the capacity source).
    pub web_url: String,
    /// The master's REST submission server, `http://host:6066`; needed in cluster mode.
    pub rest_url: Option<String>,
    /// Where drivers run.
    pub deploy_mode: DeployMode,
    /// `spark.driver.host` and `spark.driver.bindAddress` (and `SPARK_LOCAL_IP`) for client-mode
    /// drivers, unless the job sets them: the address executors use to reach the driver.
    pub driver_host: Option<String>,
    /// Memory on this host for client-mode drivers, in MiB (each counts heap plus overhead).
    pub driver_memory_mib: u64,
    /// Runs live under `data_dir/runs/<job id>/<attempt>/`.
    pub data_dir: PathBuf,
    /// Spark's home on this host (for `spark-submit`); `None`: found as the local backend does.
    pub spark_home: Option<PathBuf>,
    /// `PYSPARK_PYTHON` for Python applications; `None`: the venv's python next to Spark.
    pub python: Option<PathBuf>,
    /// Spark's home inside Spark images: application paths under it are mapped to `spark_home`.
    pub image_spark_home: String,
    /// A cancelled client-mode driver gets SIGTERM, then SIGKILL after this long.
    pub kill_grace: Duration,
    /// Timeout of one HTTP request to the master or a worker.
    pub request_timeout: Duration,
    /// Cluster mode: the shared event-log location cluster-mode drivers log into (unless the
    /// job sets `spark.eventLog.*`) and where sluice reads what the run used; `None`: not
    /// measured.
    pub event_log: Option<crate::eventlog::SharedEventLog>,
}

impl StandaloneConfig {
    /// Client deploy mode, no REST URL, the detected memory budget for drivers and defaults for
    /// the rest.
    pub fn new(
        master_url: impl Into<String>,
        web_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        let local = LocalConfig::new(data_dir);
        StandaloneConfig {
            master_url: master_url.into(),
            web_url: web_url.into(),
            rest_url: None,
            deploy_mode: DeployMode::Client,
            driver_host: None,
            driver_memory_mib: local.memory_mib,
            data_dir: local.data_dir,
            spark_home: None,
            python: None,
            image_spark_home: local.image_spark_home,
            kill_grace: local.kill_grace,
            request_timeout: Duration::from_secs(5),
            event_log: None,
        }
    }
}
