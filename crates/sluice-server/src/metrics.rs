//! Prometheus metrics, served at `GET /metrics` in the Prometheus text format (version 0.0.4)
//! with the `prometheus-client` crate. Every name starts with `sluice_`, uses base units
//! (seconds, bytes, cores) and, for counters, ends in `_total`. Label values come from bounded
//! sets only: namespace, level, outcome (succeeded, failed, cancelled), job state and backend
//! kind; never a job id. The full list is in `docs/metrics.md`.
//!
//! Two kinds of metric:
//! - **events** (counters and histograms) are recorded where things happen: the API's submit
//!   ([`Metrics::job_submitted`]), every state change the submitter loop or the API makes
//!   ([`Metrics::transitioned`]), retries ([`Metrics::job_retried`]) and each scheduling cycle
//!   ([`Metrics::cycle_finished`]). They start from zero when the server starts, as Prometheus
//!   counters do; `rate()` and `increase()` handle the reset.
//! - **state** gauges (queue lengths, oldest wait, capacity, allocation, reservations, active
//!   jobs, DLQ size, backend availability) are computed from the store and the backend when
//!   scraped ([`render`]), so they are right at once after a restart.
//!
//! Series for the configured namespaces (and `default`) and levels exist from the start with
//! value 0, so dashboards and alerts see a zero rather than nothing.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_store::QueueStat;

use crate::cluster::ClusterView;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the queue-wait histogram: from 50 ms to a day.
const WAIT_BUCKETS: [f64; 19] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0, 14400.0, 43200.0, 86400.0,
];

/// Upper bounds (seconds) of the run-time histogram: from a second to a day.
const RUN_BUCKETS: [f64; 15] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    28800.0, 86400.0,
];

/// Terminal states, the values of the `outcome` label.
const OUTCOMES: [JobState; 3] = [JobState::Succeeded, JobState::Failed, JobState::Cancelled];

const BYTES_PER_MIB: i64 = 1024 * 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    namespace: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    level: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    namespace: String,
    kind: String,
}

type FloatCounter = Counter<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActiveLabels {
    namespace: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkflowLabels {
    namespace: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

/// The values of the `step` label of `sluice_tick_step_seconds` (the tick's steps,
/// [`crate::tick`]).
pub const TICK_STEPS: [&str; 5] = ["reconcile", "orchestrate", "admit", "submit", "roll_up"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriterLabels {
    writer: String,
}

/// The values of the `writer` label of the group-commit metrics: `submit` (jobs, each with its
/// audit entry) and `audit` (the other audit entries), [`crate::submitq`].
pub const WRITERS: [&str; 2] = ["submit", "audit"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

/// The values of the `source` label of `sluice_tick_errors_total`.
const TICK_ERROR_SOURCES: [&str; 2] = ["store", "backend"];

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

fn step_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn batch_histogram() -> Histogram {
    // 1, 2, 4, ... 512 (submitq::MAX_BATCH).
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

fn ql(namespace: &str, level: &str) -> QueueLabels {
    QueueLabels {
        namespace: namespace.to_string(),
        level: level.to_string(),
    }
}

fn ol(namespace: &str, level: &str, outcome: JobState) -> OutcomeLabels {
    OutcomeLabels {
        namespace: namespace.to_string(),
        level: level.to_string(),
        outcome: outcome.as_str().to_string(),
    }
}

fn nl(namespace: &str) -> NamespaceLabels {
    NamespaceLabels {
        namespace: namespace.to_string(),
    }
}

fn ms_to_secs(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

fn cores(milli: u64) -> f64 {
    milli as f64 / 1000.0
}

fn bytes(mib: u64) -> i64 {
    i64::try_from(mib)
        .unwrap_or(i64::MAX / BYTES_PER_MIB)
        .saturating_mul(BYTES_PER_MIB)
}

/// The metrics registry of one server and a handle on each metric. Shared through
/// [`AppState::metrics`].
pub struct Metrics {
    registry: Registry,
    /// Namespaces and levels whose series exist from the start.
    known_namespaces: Vec<String>,
    known_levels: Vec<String>,
    submitted: Family<QueueLabels, Counter>,
    admitted: Family<QueueLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    retries: Family<QueueLabels, Counter>,
    cost: Family<NamespaceLabels, FloatCounter>,
    cpu_seconds: Family<UsageLabels, FloatCounter>,
    memory_byte_seconds: Family<UsageLabels, FloatCounter>,
    wait: HistogramFamily<QueueLabels>,
    run: HistogramFamily<OutcomeLabels>,
    cycle: Histogram,
    steps: HistogramFamily<StepLabels>,
    batch_size: HistogramFamily<WriterLabels>,
    batch_seconds: HistogramFamily<WriterLabels>,
    queue_length: Family<QueueLabels, Gauge>,
    queue_oldest: Family<QueueLabels, FloatGauge>,
    active: Family<ActiveLabels, Gauge>,
    capacity_cpu: FloatGauge,
    capacity_memory: Gauge,
    allocated_cpu: FloatGauge,
    allocated_memory: Gauge,
    namespace_cpu: Family<NamespaceLabels, FloatGauge>,
    namespace_memory: Family<NamespaceLabels, Gauge>,
    reservations: Gauge,
    dlq: Gauge,
    backend_up: Family<BackendLabels, Gauge>,
    build_info: Family<BuildLabels, Gauge>,
    watchdog_requeues: Family<QueueLabels, Counter>,
    preemptions: Family<QueueLabels, Counter>,
    tick_errors: Family<SourceLabels, Counter>,
    set_aside: Counter,
    leader: Gauge,
    leader_changes: Counter,
    last_tick: FloatGauge,
    workflow_runs: Family<WorkflowLabels, Counter>,
    workflow_running: Family<NamespaceLabels, Gauge>,
    /// Serialises "set the state gauges, then encode" between concurrent scrapes.
    scrape: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every sluice metric; series for each of `namespaces` (plus `default`)
    /// and `levels` start at zero.
    pub fn new(namespaces: &[String], levels: &[String]) -> Self {
        let mut known_namespaces: BTreeSet<String> = namespaces.iter().cloned().collect();
        known_namespaces.insert("default".to_string());
        let mut m = Metrics {
            known_namespaces: known_namespaces.into_iter().collect(),
            known_levels: levels.to_vec(),
            submitted: Family::default(),
            admitted: Family::default(),
            finished: Family::default(),
            retries: Family::default(),
            cost: Family::default(),
            cpu_seconds: Family::default(),
            memory_byte_seconds: Family::default(),
            wait: Family::new_with_constructor(wait_histogram as fn() -> Histogram),
            run: Family::new_with_constructor(run_histogram as fn() -> Histogram),
            cycle: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            steps: Family::new_with_constructor(step_histogram as fn() -> Histogram),
            batch_size: Family::new_with_constructor(batch_histogram as fn() -> Histogram),
            batch_seconds: Family::new_with_constructor(step_histogram as fn() -> Histogram),
            queue_length: Family::default(),
            queue_oldest: Family::default(),
            active: Family::default(),
            capacity_cpu: FloatGauge::default(),
            capacity_memory: Gauge::default(),
            allocated_cpu: FloatGauge::default(),
            allocated_memory: Gauge::default(),
            namespace_cpu: Family::default(),
            namespace_memory: Family::default(),
            reservations: Gauge::default(),
            dlq: Gauge::default(),
            backend_up: Family::default(),
            build_info: Family::default(),
            watchdog_requeues: Family::default(),
            preemptions: Family::default(),
            tick_errors: Family::default(),
            set_aside: Counter::default(),
            leader: Gauge::default(),
            leader_changes: Counter::default(),
            last_tick: FloatGauge::default(),
            workflow_runs: Family::default(),
            workflow_running: Family::default(),
            scrape: std::sync::Mutex::new(()),
            registry: Registry::with_prefix("sluice"),
        };
        m.registry.register(
            "queue_length",
            "Jobs waiting in the queue of a namespace and priority level",
            m.queue_length.clone(),
        );
        m.registry.register(
            "queue_oldest_wait_seconds",
            "How long the oldest job of a queue has waited, 0 for an empty queue",
            m.queue_oldest.clone(),
        );
        m.registry.register(
            "queue_wait_seconds",
            "Time from entering the queue to admission, per namespace and level",
            m.wait.clone(),
        );
        m.registry.register(
            "jobs_submitted",
            "Jobs accepted by the API and queued",
            m.submitted.clone(),
        );
        m.registry.register(
            "jobs_admitted",
            "Jobs admitted by a scheduling cycle (room reserved, about to be submitted)",
            m.admitted.clone(),
        );
        m.registry.register(
            "jobs_finished",
            "Jobs that reached a terminal state, by outcome (succeeded, failed, cancelled)",
            m.finished.clone(),
        );
        m.registry.register(
            "job_retries",
            "Job attempts started again after a failure",
            m.retries.clone(),
        );
        m.registry.register(
            "cost",
            "Price of what ended runs held ([cost] prices), by namespace",
            m.cost.clone(),
        );
        m.registry.register(
            "cpu_seconds",
            "Core-seconds of ended runs: held (what sluice reserved) and used (measured CPU time)",
            m.cpu_seconds.clone(),
        );
        m.registry.register(
            "memory_byte_seconds",
            "Byte-seconds of memory of ended runs: held (what sluice reserved) and used \
             (measured peaks x lifetimes)",
            m.memory_byte_seconds.clone(),
        );
        m.registry.register(
            "job_run_seconds",
            "Run time of finished jobs, from running to the end, by outcome",
            m.run.clone(),
        );
        m.registry.register(
            "active_jobs",
            "Jobs holding backend room, by namespace and state (admitted, submitted, running)",
            m.active.clone(),
        );
        m.registry
            .register("dlq_jobs", "Jobs in the dead-letter queue", m.dlq.clone());
        m.registry.register(
            "workflow_runs",
            "Workflow runs that ended, by namespace and outcome (succeeded, failed, cancelled)",
            m.workflow_runs.clone(),
        );
        m.registry.register(
            "workflow_runs_running",
            "Workflow runs not ended yet (steps waiting or running), by namespace",
            m.workflow_running.clone(),
        );
        m.registry.register(
            "cluster_capacity_cpu_cores",
            "CPU the backend can allocate in all, in cores",
            m.capacity_cpu.clone(),
        );
        m.registry.register(
            "cluster_capacity_memory_bytes",
            "Memory the backend can allocate in all, in bytes",
            m.capacity_memory.clone(),
        );
        m.registry.register(
            "cluster_allocated_cpu_cores",
            "CPU in use or reserved (what the backend counts plus sluice's reservations), in cores",
            m.allocated_cpu.clone(),
        );
        m.registry.register(
            "cluster_allocated_memory_bytes",
            "Memory in use or reserved (what the backend counts plus sluice's reservations), in bytes",
            m.allocated_memory.clone(),
        );
        m.registry.register(
            "namespace_allocated_cpu_cores",
            "CPU requested by the admitted, submitted and running jobs of a namespace, in cores",
            m.namespace_cpu.clone(),
        );
        m.registry.register(
            "namespace_allocated_memory_bytes",
            "Memory requested by the admitted, submitted and running jobs of a namespace, in bytes",
            m.namespace_memory.clone(),
        );
        m.registry.register(
            "reservations",
            "Jobs admitted but not yet seen by the backend, whose room sluice holds",
            m.reservations.clone(),
        );
        m.registry.register(
            "backend_up",
            "1 when the backend answered its capacity check, else 0",
            m.backend_up.clone(),
        );
        m.registry.register(
            "scheduling_cycle_seconds",
            "Duration of one submitter-loop tick: reconcile, scheduling cycle and submits (or, woken by a submit, the cycle and submits alone)",
            m.cycle.clone(),
        );
        m.registry.register(
            "tick_step_seconds",
            "Duration of one step of a submitter-loop tick, by step",
            m.steps.clone(),
        );
        m.registry.register(
            "group_commit_batch_size",
            "Items written by one group-commit transaction, by writer (submit: jobs with their \
             audit entries; audit: the other audit entries)",
            m.batch_size.clone(),
        );
        m.registry.register(
            "group_commit_seconds",
            "Time of one group-commit transaction, from its start to its commit, by writer",
            m.batch_seconds.clone(),
        );
        m.registry.register(
            "build_info",
            "Always 1; the version label is the running sluice's version",
            m.build_info.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        m.registry.register(
            "watchdog_requeues",
            "Runs the backend stopped because they could not make progress (the deadlock \
             watchdog: driver running, executors never scheduled) and sent back to their queue",
            m.watchdog_requeues.clone(),
        );
        m.registry.register(
            "preemptions",
            "Runs stopped to make room for a job of higher priority and sent back to their \
             queue (by the victim's namespace and level)",
            m.preemptions.clone(),
        );
        m.registry.register(
            "tick_errors",
            "Submitter-loop ticks that ended early on an error, by source (store or backend)",
            m.tick_errors.clone(),
        );
        m.registry.register(
            "jobs_set_aside",
            "Times a job's change could not be written and the job was set aside (the tick \
             went on with the others)",
            m.set_aside.clone(),
        );
        m.registry.register(
            "leader",
            "1 on the replica that runs the scheduler loop (the leader), 0 on the others",
            m.leader.clone(),
        );
        m.registry.register(
            "leader_changes",
            "Times this replica became the leader or stopped being it",
            m.leader_changes.clone(),
        );
        m.registry.register(
            "last_tick_timestamp_seconds",
            "When this replica's scheduler loop last finished a tick (Unix time); 0 if never",
            m.last_tick.clone(),
        );
        for source in TICK_ERROR_SOURCES {
            let _ = m.tick_errors.get_or_create(&SourceLabels {
                source: source.to_string(),
            });
        }
        for step in TICK_STEPS {
            let _ = m.steps.get_or_create(&StepLabels {
                step: step.to_string(),
            });
        }
        for writer in WRITERS {
            let w = WriterLabels {
                writer: writer.to_string(),
            };
            let _ = m.batch_size.get_or_create(&w);
            let _ = m.batch_seconds.get_or_create(&w);
        }
        for ns in &m.known_namespaces {
            for level in &m.known_levels {
                let q = ql(ns, level);
                let _ = m.submitted.get_or_create(&q);
                let _ = m.admitted.get_or_create(&q);
                let _ = m.retries.get_or_create(&q);
                let _ = m.cost.get_or_create(&nl(ns));
                for kind in ["held", "used"] {
                    let u = UsageLabels {
                        namespace: ns.clone(),
                        kind: kind.to_string(),
                    };
                    let _ = m.cpu_seconds.get_or_create(&u);
                    let _ = m.memory_byte_seconds.get_or_create(&u);
                }
                let _ = m.watchdog_requeues.get_or_create(&q);
                let _ = m.preemptions.get_or_create(&q);
                let _ = m.wait.get_or_create(&q);
                for outcome in OUTCOMES {
                    let o = ol(ns, level, outcome);
                    let _ = m.finished.get_or_create(&o);
                    let _ = m.run.get_or_create(&o);
                }
            }
        }
        m
    }

    /// A run's usage was recorded: its cost, and the CPU and memory it held and used (used
    /// only when measured), in base units (core-seconds, byte-seconds).
    pub fn run_usage(&self, namespace: &str, e: &sluice_core::cost::Efficiency, measured: bool) {
        const GIB_SECONDS: f64 = 3600.0 * (1u64 << 30) as f64;
        self.cost.get_or_create(&nl(namespace)).inc_by(e.cost);
        let ul = |kind: &str| UsageLabels {
            namespace: namespace.to_string(),
            kind: kind.to_string(),
        };
        let add = |kind: &str, core_hours: f64, gib_hours: f64| {
            self.cpu_seconds
                .get_or_create(&ul(kind))
                .inc_by(core_hours * 3600.0);
            self.memory_byte_seconds
                .get_or_create(&ul(kind))
                .inc_by(gib_hours * GIB_SECONDS);
        };
        add("held", e.held_core_hours, e.held_gib_hours);
        if measured {
            add("used", e.used_core_hours, e.used_gib_hours);
        }
    }

    /// A workflow run ended with `outcome` (succeeded, failed, cancelled).
    pub fn workflow_finished(&self, namespace: &str, outcome: &str) {
        self.workflow_runs
            .get_or_create(&WorkflowLabels {
                namespace: namespace.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The workflow runs not ended, per namespace (namespaces not given are set to 0).
    pub fn set_workflows_running(&self, running: &std::collections::BTreeMap<String, i64>) {
        for ns in &self.known_namespaces {
            if !running.contains_key(ns) {
                self.workflow_running.get_or_create(&nl(ns)).set(0);
            }
        }
        for (ns, n) in running {
            self.workflow_running.get_or_create(&nl(ns)).set(*n);
        }
    }

    /// A job was accepted and queued.
    pub fn job_submitted(&self, namespace: &str, level: &str) {
        self.submitted.get_or_create(&ql(namespace, level)).inc();
    }

    /// A job attempt is started again after a failure (for the retry logic to call when it
    /// sends a job back to its queue).
    pub fn job_retried(&self, namespace: &str, level: &str) {
        self.retries.get_or_create(&ql(namespace, level)).inc();
    }

    /// A state change was written: `from` the state before, `rec` the job after. Counts
    /// admissions (with the time the job waited) and finished jobs (with their run time).
    pub fn transitioned(&self, from: JobState, rec: &JobRecord) {
        // Only the backend's requeue (the deadlock watchdog) moves a started run back to the
        // queue; retries and DLQ requeues leave from `failed`.
        if matches!(from, JobState::Submitted | JobState::Running) && rec.state == JobState::Queued
        {
            self.watchdog_requeues
                .get_or_create(&ql(&rec.namespace, &rec.level))
                .inc();
        }
        if from == JobState::Queued && rec.state == JobState::Admitted {
            let q = ql(&rec.namespace, &rec.level);
            self.admitted.get_or_create(&q).inc();
            self.wait
                .get_or_create(&q)
                .observe(ms_to_secs(rec.updated_at_ms - rec.enqueued_at_ms));
        }
        if rec.state.is_terminal() && !from.is_terminal() {
            let o = ol(&rec.namespace, &rec.level, rec.state);
            self.finished.get_or_create(&o).inc();
            if let (Some(start), Some(end)) = (rec.started_at_ms, rec.finished_at_ms) {
                self.run.get_or_create(&o).observe(ms_to_secs(end - start));
            }
        }
    }

    /// A job's run was preempted and the job is back in its queue (`rec`, as written). Not a
    /// watchdog requeue, so not [`Metrics::transitioned`].
    pub fn job_preempted(&self, rec: &JobRecord) {
        self.preemptions
            .get_or_create(&ql(&rec.namespace, &rec.level))
            .inc();
    }

    /// A tick ended early on an error from `source` ("store" or "backend").
    pub fn tick_failed(&self, source: &str) {
        self.tick_errors
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    /// A job's change could not be written and the job was set aside.
    pub fn job_set_aside(&self) {
        self.set_aside.inc();
    }

    /// This replica became the leader (`true`) or stopped being it.
    pub fn leader_changed(&self, leads: bool) {
        self.leader.set(i64::from(leads));
        self.leader_changes.inc();
    }

    /// Whether the leader gauge says this replica leads.
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Sets the leader gauge without counting a change (the only server leads from its start).
    pub fn set_leader(&self, leads: bool) {
        self.leader.set(i64::from(leads));
    }

    /// A tick finished at `now_ms`.
    pub fn tick_done_at(&self, now_ms: i64) {
        self.last_tick.set(ms_to_secs(now_ms));
    }

    /// When the last tick finished (ms since the Unix epoch), 0 if none has.
    pub fn last_tick_ms(&self) -> i64 {
        (self.last_tick.get() * 1000.0) as i64
    }

    /// One submitter-loop tick took this long.
    pub fn cycle_finished(&self, elapsed: std::time::Duration) {
        self.cycle.observe(elapsed.as_secs_f64());
    }

    /// One step of a tick (one of [`TICK_STEPS`]) took this long.
    pub fn step_finished(&self, step: &str, elapsed: std::time::Duration) {
        self.steps
            .get_or_create(&StepLabels {
                step: step.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One group-commit transaction of `writer` (one of [`WRITERS`]) wrote `items` items and
    /// took `elapsed`, from its start to its commit.
    pub fn group_commit(&self, writer: &str, items: usize, elapsed: std::time::Duration) {
        let w = WriterLabels {
            writer: writer.to_string(),
        };
        self.batch_size.get_or_create(&w).observe(items as f64);
        self.batch_seconds
            .get_or_create(&w)
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the state gauges from what was read now (none: the store could not be read) and
    /// encodes every metric.
    pub fn encode(&self, now: Option<&StateNow>) -> Result<String, std::fmt::Error> {
        let _guard = match self.scrape.lock() {
            Ok(g) => g,
            // Only gauges are written under this lock; a panic cannot leave them inconsistent
            // beyond the next scrape, which sets them all again.
            Err(poisoned) => poisoned.into_inner(),
        };
        self.queue_length.clear();
        self.queue_oldest.clear();
        self.active.clear();
        self.namespace_cpu.clear();
        self.namespace_memory.clear();
        self.backend_up.clear();
        if let Some(now) = now {
            self.set_state(now);
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn set_state(&self, s: &StateNow) {
        let c = &s.cluster;
        self.backend_up
            .get_or_create(&BackendLabels {
                backend: c.backend.clone(),
            })
            .set(i64::from(c.backend_available));
        self.capacity_cpu.set(cores(c.capacity_cpu_milli));
        self.capacity_memory.set(bytes(c.capacity_memory_mib));
        self.allocated_cpu.set(cores(c.allocated_cpu_milli));
        self.allocated_memory.set(bytes(c.allocated_memory_mib));
        self.reservations
            .set(i64::try_from(c.reservations).unwrap_or(i64::MAX));
        self.dlq.set(i64::try_from(s.dlq).unwrap_or(i64::MAX));
        // Zeros first for the known namespaces and levels, then what the store holds.
        for ns in &self.known_namespaces {
            self.namespace_cpu.get_or_create(&nl(ns)).set(0.0);
            self.namespace_memory.get_or_create(&nl(ns)).set(0);
            for state in JobState::ACTIVE {
                self.active
                    .get_or_create(&ActiveLabels {
                        namespace: ns.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(0);
            }
            for level in &self.known_levels {
                self.queue_length.get_or_create(&ql(ns, level)).set(0);
                self.queue_oldest.get_or_create(&ql(ns, level)).set(0.0);
            }
        }
        for q in &s.queues {
            let l = ql(&q.namespace, &q.level);
            self.queue_length
                .get_or_create(&l)
                .set(i64::try_from(q.queued).unwrap_or(i64::MAX));
            self.queue_oldest
                .get_or_create(&l)
                .set(ms_to_secs(s.at_ms - q.oldest_enqueued_at_ms));
        }
        for n in &c.namespaces {
            self.namespace_cpu
                .get_or_create(&nl(&n.namespace))
                .set(cores(n.cpu_milli));
            self.namespace_memory
                .get_or_create(&nl(&n.namespace))
                .set(bytes(n.memory_mib));
            for (state, count) in [
                (JobState::Admitted, n.admitted),
                (JobState::Submitted, n.submitted),
                (JobState::Running, n.running),
            ] {
                self.active
                    .get_or_create(&ActiveLabels {
                        namespace: n.namespace.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }
}

/// What the state gauges show, read at scrape time.
#[derive(Debug, Clone)]
pub struct StateNow {
    /// When it was read.
    pub at_ms: i64,
    /// The queues.
    pub queues: Vec<QueueStat>,
    /// The cluster.
    pub cluster: ClusterView,
    /// Jobs in the dead-letter queue.
    pub dlq: u64,
}
