//! Shared server state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sluice_backend::Backend;
use sluice_backend::clock::{Clock, SystemClock};
use sluice_core::capacity::Snapshot;
use sluice_core::spec::Levels;
use sluice_store::Store;
use tokio::sync::{Mutex, Notify, RwLock};

use crate::aside::AsideBook;
use crate::config::Config;
use crate::metrics::Metrics;

/// Why a queued job waits, as the last cycle found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitInfo {
    /// The reason, for people.
    pub reason: String,
    /// The kind of reason: "no-room", "blocked" or "backend-unavailable".
    pub reason_kind: String,
    /// 1-based position among the waiting jobs of its namespace (all levels, in queue order).
    pub position: u32,
    /// 1-based position within its (namespace, level) queue.
    pub level_position: u32,
}

/// What the last cycle saw, for `describe`, `queues` and the UI.
#[derive(Debug, Clone, Default)]
pub struct CycleView {
    /// When the cycle ran.
    pub at_ms: i64,
    /// The backend's snapshot after reservations.
    pub snapshot: Option<Snapshot>,
    /// Why each queued job waits, by job id.
    pub waiting: HashMap<String, WaitInfo>,
}

/// Everything the HTTP handlers and the submitter loop share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Where jobs run.
    pub backend: Arc<dyn Backend>,
    /// Settings.
    pub config: Arc<Config>,
    /// Priority levels.
    pub levels: Arc<Levels>,
    /// What the last cycle saw.
    pub view: Arc<RwLock<CycleView>>,
    /// Wakes the submitter loop early (after a submit or cancel).
    pub wake: Arc<Notify>,
    /// Serialises cycles (the loop and tests calling `tick`).
    pub cycle_lock: Arc<Mutex<()>>,
    /// Monotonic ULIDs, so jobs submitted within one millisecond keep their order.
    pub ids: Arc<std::sync::Mutex<ulid::Generator>>,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Where "now" comes from: the system clock, or a test's manual one.
    pub clock: Arc<dyn Clock>,
    /// Ticks started so far; each tick's number is in its tracing spans.
    pub cycles: Arc<AtomicU64>,
    /// Jobs the tick has set aside for a back-off (a write or the backend failed on them).
    pub aside: Arc<AsideBook>,
}

impl AppState {
    /// Builds the state, with the system clock.
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>, config: Config) -> Self {
        Self::with_clock(store, backend, config, Arc::new(SystemClock))
    }

    /// Builds the state with the given clock (tests drive time with a
    /// [`ManualClock`](sluice_backend::clock::ManualClock)).
    pub fn with_clock(
        store: Arc<dyn Store>,
        backend: Arc<dyn Backend>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let levels = config.levels();
        let namespaces: Vec<String> = config.namespaces.keys().cloned().collect();
        let metrics = Arc::new(Metrics::new(&namespaces, &levels.names));
        AppState {
            store,
            backend,
            config: Arc::new(config),
            levels: Arc::new(levels),
            view: Arc::new(RwLock::new(CycleView::default())),
            wake: Arc::new(Notify::new()),
            cycle_lock: Arc::new(Mutex::new(())),
            ids: Arc::new(std::sync::Mutex::new(ulid::Generator::new())),
            metrics,
            clock,
            cycles: Arc::new(AtomicU64::new(0)),
            aside: Arc::new(AsideBook::default()),
        }
    }

    /// Milliseconds since the Unix epoch, from the state's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts the next cycle: its number (1 for the first).
    pub fn next_cycle(&self) -> u64 {
        self.cycles
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// A new job id: a lowercase ULID.
    pub fn new_id(&self) -> String {
        let mut generator = match self.ids.lock() {
            Ok(g) => g,
            // A panic while holding this lock cannot leave the generator inconsistent.
            Err(poisoned) => poisoned.into_inner(),
        };
        match generator.generate() {
            Ok(u) => u.to_string().to_ascii_lowercase(),
            // Overflow of the random part within one millisecond: fall back to a fresh ULID.
            Err(_) => ulid::Ulid::generate().to_string().to_ascii_lowercase(),
        }
    }
}
