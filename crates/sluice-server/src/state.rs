//! Shared server state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_backend::clock::{Clock, SystemClock};
use sluice_backend::{Backend, CapacityReport};
use sluice_core::capacity::Snapshot;
use sluice_core::spec::Levels;
use sluice_store::Store;
use tokio::sync::{Mutex, Notify, RwLock};

use crate::aside::AsideBook;
use crate::config::Config;
use crate::leader::{Leadership, default_identity};
use crate::metrics::Metrics;
use crate::queue::{QueueBook, TrackedStore};
use crate::submitq::{AuditQueue, SubmitQueue};
pub use sluice_api::WaitInfo;

/// What the last cycle saw, for `describe`, `queues` and the UI.
#[derive(Debug, Clone, Default)]
pub struct CycleView {
    /// When the cycle ran.
    pub at_ms: i64,
    /// The backend's snapshot after reservations.
    pub snapshot: Option<Snapshot>,
    /// Why each queued job the cycle saw waits, by job id.
    pub waiting: HashMap<String, WaitInfo>,
    /// The strict namespaces whose queue the cycle saw only up to a job that could not be
    /// admitted ([`sluice_core::cycle::strict_cut`]), by namespace: every job queued behind
    /// that job waits for the reason kept here (its position comes from the queue when asked).
    pub behind: HashMap<Arc<str>, Behind>,
}

/// Where a cycle cut a strict namespace's queue, and why the jobs after it wait.
#[derive(Debug, Clone)]
pub struct Behind {
    /// The queue order key (level rank, enqueued time, id) of the last job the cycle saw:
    /// the jobs that sort after it wait for `reason`.
    pub after: (usize, i64, Arc<str>),
    /// "behind job X at the head of namespace N, which does not fit (strict FIFO)".
    pub reason: String,
}

/// What a scheduling cycle decided from; when the next tick finds the same, the cycle would
/// decide the same and is skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CycleInputs {
    /// The in-memory queue's version.
    pub queue_version: u64,
    /// The room after reservations.
    pub snapshot: Option<Snapshot>,
    /// What each namespace holds.
    pub held: std::collections::BTreeMap<String, sluice_core::job::Resources>,
}

/// How a job whose run a stop task stopped ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopEnd {
    /// It fails with this message (a timeout).
    Failed(String),
    /// It goes back to its queue with this message, without a failure or a retry used
    /// (preempted: [`sluice_store::Store::preempt_job`]).
    Preempted(String),
}

/// A job that preempted others: its victims, and since when it waits for their room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPreemption {
    /// The victims' ids.
    pub victims: Vec<String>,
    /// When the victims were told to stop, ms.
    pub since_ms: i64,
}

/// Everything the HTTP handlers and the submitter loop share ([`Shared`], through `Deref`):
/// one `Arc`, so a clone is one atomic increment. (axum clones the state for every request
/// and middleware layer: with the parts cloned one by one, that was about 30 atomic
/// increments and decrements per layer, a sixth of the server's CPU under a submit load.)
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The backend's capacity and when it was read.
pub type ReadCapacity = (std::time::Instant, Arc<CapacityReport>);

/// The parts of an [`AppState`].
#[derive(Clone)]
pub struct Shared {
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
    /// Wakes the submitter loop early for a whole tick (after a cancel, a requeue, a run that
    /// was stopped, a new leader term).
    pub wake: Arc<Notify>,
    /// Wakes the submitter loop early for its admit and submit steps only (after a submit:
    /// the queue grew, nothing else changed); the time-driven steps still run at most once
    /// per interval ([`crate::tick`]).
    pub wake_admit: Arc<Notify>,
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
    /// When the audit log was last purged of entries past its retention (ms; `i64::MIN`:
    /// not yet): the roll-up step purges at most once per [`crate::tick::AUDIT_PURGE_EVERY_MS`].
    pub audit_purged_at: Arc<std::sync::atomic::AtomicI64>,
    /// Jobs the tick has set aside for a back-off (a write or the backend failed on them).
    pub aside: Arc<AsideBook>,
    /// The waiting jobs in memory, kept current by the store's writes (`store` is wrapped in
    /// a [`TrackedStore`] over it).
    pub queue: Arc<QueueBook>,
    /// Group commit of submits.
    pub submits: Arc<SubmitQueue>,
    /// Group commit of audit entries.
    pub audits: Arc<AuditQueue>,
    /// The backend's capacity as the last tick (or a submit's gate) read it, and when: what
    /// `/metrics` and `/v1/cluster` show, and the allocatable room a submit is gated on,
    /// without asking the backend on every scrape or submit.
    pub last_capacity: Arc<std::sync::RwLock<Option<ReadCapacity>>>,
    /// Jobs whose run is being stopped (a user's cancel, a timeout) by a task of its own: the
    /// reconciler leaves them alone meanwhile, and no tick waits for the kill.
    pub stopping: Arc<std::sync::Mutex<HashSet<String>>>,
    /// Runs stopped by stop tasks, with how their jobs end (written by the next tick).
    pub stopped: Arc<std::sync::Mutex<Vec<(sluice_core::record::JobRecord, StopEnd)>>>,
    /// Jobs that preempted others and wait for their room (by preemptor id).
    pub preempting: Arc<std::sync::Mutex<HashMap<String, PendingPreemption>>>,
    /// What the last cycle decided from.
    pub last_inputs: Arc<std::sync::Mutex<Option<CycleInputs>>>,
    /// The identity provider's keys fetched from `auth.oidc.jwks_url`.
    pub jwks: Arc<crate::jwks::JwksCache>,
    /// Whether this replica runs the scheduler loop (always, on SQLite).
    pub leader: Arc<Leadership>,
    /// The last cycle's inputs and the start-time estimates computed from them.
    pub eta: Arc<crate::eta::EtaBook>,
    /// Run-time histories (the expected run time of each job name).
    pub runtimes: Arc<crate::runtime::RuntimeBook>,
    /// Which jobs wait and why, handed to the backend off the tick (see [`crate::held`]).
    pub held: Arc<crate::held::HeldNotices>,
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
        let levels = Arc::new(config.levels());
        let namespaces: Vec<String> = config.namespaces.keys().cloned().collect();
        let metrics = Arc::new(Metrics::new(&namespaces, &levels.names));
        let queue = Arc::new(QueueBook::new(levels.clone(), clock.clone()));
        let postgres = config.store_url().starts_with("postgres");
        let tracked = TrackedStore::new(store, queue.clone());
        // On SQLite this server is the only one: every token revocation goes through it.
        let tracked = if postgres {
            tracked
        } else {
            tracked.caching_tokens()
        };
        let store: Arc<dyn Store> = Arc::new(tracked);
        // SQLite has one writer; PostgreSQL commits transactions in parallel (and groups its
        // WAL flushes itself): a few batches in flight at once, within its pool of 10.
        let (writers, audit_writers) = if postgres { (4, 2) } else { (1, 1) };
        let leader = if postgres {
            let identity = match config.ha.identity.trim() {
                "" => default_identity(),
                given => given.to_string(),
            };
            Leadership::elected(identity, config.advertise_url())
        } else {
            metrics.set_leader(true);
            Leadership::single()
        };
        AppState(Arc::new(Shared {
            leader: Arc::new(leader),
            submits: Arc::new(SubmitQueue::new(
                store.clone(),
                writers,
                !postgres,
                metrics.clone(),
            )),
            audits: Arc::new(AuditQueue::new(
                store.clone(),
                audit_writers,
                metrics.clone(),
            )),
            store,
            backend,
            config: Arc::new(config),
            levels,
            view: Arc::new(RwLock::new(CycleView::default())),
            wake: Arc::new(Notify::new()),
            wake_admit: Arc::new(Notify::new()),
            cycle_lock: Arc::new(Mutex::new(())),
            ids: Arc::new(std::sync::Mutex::new(ulid::Generator::new())),
            metrics,
            clock,
            cycles: Arc::new(AtomicU64::new(0)),
            audit_purged_at: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
            aside: Arc::new(AsideBook::default()),
            queue,
            last_capacity: Arc::new(std::sync::RwLock::new(None)),
            stopping: Arc::new(std::sync::Mutex::new(HashSet::new())),
            stopped: Arc::new(std::sync::Mutex::new(Vec::new())),
            preempting: Arc::new(std::sync::Mutex::new(HashMap::new())),
            last_inputs: Arc::new(std::sync::Mutex::new(None)),
            jwks: Arc::default(),
            eta: Arc::default(),
            runtimes: Arc::default(),
            held: Arc::default(),
        }))
    }

    /// This state for one term of leadership: the same shared parts, with the store fenced
    /// by `lease` (every write the loop makes checks it), or as it is for the only server.
    pub fn for_term(&self, lease: Option<&sluice_store::Lease>) -> AppState {
        match lease {
            Some(lease) => {
                let mut parts = Shared::clone(&self.0);
                parts.store = self.store.fenced(lease);
                AppState(Arc::new(parts))
            }
            None => self.clone(),
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

    /// Records the capacity a tick read.
    pub fn set_last_capacity(&self, report: Arc<CapacityReport>) {
        let at = std::time::Instant::now();
        match self.last_capacity.write() {
            Ok(mut g) => *g = Some((at, report)),
            Err(poisoned) => *poisoned.into_inner() = Some((at, report)),
        }
    }

    /// The backend's capacity as read at most `within` ago (by a tick, which reads it at each
    /// cycle, or by an earlier call), else read now and kept: a stream of submits, each gated
    /// on the cluster's allocatable room ([`crate::admission::check`]), asks the backend about
    /// once per `within`, not once each.
    pub async fn capacity_within(
        &self,
        within: std::time::Duration,
    ) -> Result<Arc<CapacityReport>, sluice_backend::BackendError> {
        {
            let g = match self.last_capacity.read() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some((at, r)) = g.as_ref()
                && at.elapsed() <= within
            {
                return Ok(r.clone());
            }
        }
        let report = Arc::new(self.backend.capacity().await?);
        self.set_last_capacity(report.clone());
        Ok(report)
    }

    /// What the last cycle decided from.
    pub fn last_inputs(&self) -> Option<CycleInputs> {
        match self.last_inputs.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records what a cycle decided from (none: the next tick runs a cycle).
    pub fn set_last_inputs(&self, inputs: Option<CycleInputs>) {
        match self.last_inputs.lock() {
            Ok(mut g) => *g = inputs,
            Err(poisoned) => *poisoned.into_inner() = inputs,
        }
    }

    /// Records that a stop task stopped `rec`'s run; the next tick ends it as `end` says.
    pub fn push_stopped(&self, rec: sluice_core::record::JobRecord, end: StopEnd) {
        match self.stopped.lock() {
            Ok(mut g) => g.push((rec, end)),
            Err(poisoned) => poisoned.into_inner().push((rec, end)),
        }
    }

    /// The jobs that preempted others and wait for their room.
    pub fn preempting(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingPreemption>> {
        match self.preempting.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The runs stopped since the last call.
    pub fn take_stopped(&self) -> Vec<(sluice_core::record::JobRecord, StopEnd)> {
        match self.stopped.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Whether job `id`'s run is being stopped by a task of its own.
    pub fn is_stopping(&self, id: &str) -> bool {
        match self.stopping.lock() {
            Ok(g) => g.contains(id),
            Err(poisoned) => poisoned.into_inner().contains(id),
        }
    }

    /// Marks job `id` as being stopped; false if it already was.
    pub fn start_stopping(&self, id: &str) -> bool {
        match self.stopping.lock() {
            Ok(mut g) => g.insert(id.to_string()),
            Err(poisoned) => poisoned.into_inner().insert(id.to_string()),
        }
    }

    /// Job `id` is no longer being stopped.
    pub fn done_stopping(&self, id: &str) {
        match self.stopping.lock() {
            Ok(mut g) => g.remove(id),
            Err(poisoned) => poisoned.into_inner().remove(id),
        };
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
