//! What a Spark application actually used, read from Spark's own event log (the JSON lines
//! Spark writes with `spark.eventLog.enabled`): per executor (the driver is executor
//! `driver`), the peaks of its memory metrics, its task run time, CPU time and GC time, its
//! spill, and when it was added and removed; per application, its start and end.
//!
//! Pure and streaming: [`UsageParser::line`] takes one line at a time (the caller reads the
//! file, decompresses it, walks a rolling log's parts), so a large log never sits in memory. A
//! truncated log (a run killed mid-write, a log still being written) is read up to its last
//! whole line and marked [`RunUsage::complete`] `false`; a line that is not a JSON event is
//! counted in [`RunUsage::bad_lines`], never an error.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The peaks of one executor's memory metrics, in bytes (Spark's `ExecutorMetrics` names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryPeaks {
    /// `JVMHeapMemory`.
    pub jvm_heap: u64,
    /// `JVMOffHeapMemory`.
    pub jvm_off_heap: u64,
    /// `OnHeapExecutionMemory`.
    pub on_heap_execution: u64,
    /// `OffHeapExecutionMemory`.
    pub off_heap_execution: u64,
    /// `ProcessTreeJVMRSSMemory` (with `spark.executor.processTreeMetrics.enabled`).
    pub jvm_rss: u64,
    /// `ProcessTreePythonRSSMemory`: the Python workers of a PySpark executor.
    pub python_rss: u64,
    /// `ProcessTreeOtherRSSMemory`.
    pub other_rss: u64,
}

impl MemoryPeaks {
    /// The process tree's peak resident memory (JVM + Python + other), when Spark measured it.
    pub fn process_rss(&self) -> u64 {
        self.jvm_rss
            .saturating_add(self.python_rss)
            .saturating_add(self.other_rss)
    }

    fn raise(&mut self, m: &ExecutorMetrics) {
        let up = |a: &mut u64, b: Option<i64>| {
            *a = (*a).max(b.and_then(|b| u64::try_from(b).ok()).unwrap_or(0))
        };
        up(&mut self.jvm_heap, m.jvm_heap);
        up(&mut self.jvm_off_heap, m.jvm_off_heap);
        up(&mut self.on_heap_execution, m.on_heap_execution);
        up(&mut self.off_heap_execution, m.off_heap_execution);
        up(&mut self.jvm_rss, m.jvm_rss);
        up(&mut self.python_rss, m.python_rss);
        up(&mut self.other_rss, m.other_rss);
    }
}

/// What one executor (or the driver) used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorUsage {
    /// Cores it was given (`Total Cores` of `SparkListenerExecutorAdded`).
    pub cores: Option<u32>,
    /// When it was added (ms since the epoch).
    pub added_ms: Option<i64>,
    /// When it was removed, if it was before the end.
    pub removed_ms: Option<i64>,
    /// Its memory peaks.
    pub peaks: MemoryPeaks,
    /// Tasks that ended on it.
    pub tasks: u64,
    /// Sum of its tasks' `Executor Run Time` (ms).
    pub run_time_ms: u64,
    /// Sum of its tasks' `Executor CPU Time` and `Executor Deserialize CPU Time` (ns).
    pub cpu_time_ns: u64,
    /// Sum of its tasks' `JVM GC Time` (ms).
    pub gc_time_ms: u64,
    /// Bytes spilled from memory (`Memory Bytes Spilled`).
    pub memory_spilled_bytes: u64,
    /// Bytes spilled to disk (`Disk Bytes Spilled`).
    pub disk_spilled_bytes: u64,
}

/// What one application used, from its event log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunUsage {
    /// Spark's application id.
    pub app_id: Option<String>,
    /// Application start (ms since the epoch).
    pub start_ms: Option<i64>,
    /// Application end, when the log has it.
    pub end_ms: Option<i64>,
    /// Per executor id (`driver` for the driver).
    pub executors: BTreeMap<String, ExecutorUsage>,
    /// Tasks that failed.
    pub failed_tasks: u64,
    /// True when the log ends with the application's end (not truncated, not in progress).
    pub complete: bool,
    /// Lines that were not a JSON event (a truncated last line, say).
    pub bad_lines: u64,
}

impl RunUsage {
    /// The executors other than the driver.
    pub fn workers(&self) -> impl Iterator<Item = (&String, &ExecutorUsage)> {
        self.executors
            .iter()
            .filter(|(id, _)| id.as_str() != "driver")
    }

    /// CPU time of every task, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.executors
            .values()
            .map(|e| e.cpu_time_ns as f64)
            .sum::<f64>()
            / 1e9
    }
}

/// Reads an event log line by line.
#[derive(Debug, Default)]
pub struct UsageParser {
    usage: RunUsage,
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "Event")]
    event: String,
    #[serde(rename = "Timestamp")]
    timestamp: Option<i64>,
    #[serde(rename = "App ID")]
    app_id: Option<String>,
    #[serde(rename = "Executor ID")]
    executor_id: Option<String>,
    #[serde(rename = "Executor Info")]
    executor_info: Option<ExecutorInfo>,
    #[serde(rename = "Task Info")]
    task_info: Option<TaskInfo>,
    #[serde(rename = "Task Metrics")]
    task_metrics: Option<TaskMetrics>,
    #[serde(rename = "Task Executor Metrics")]
    task_executor_metrics: Option<ExecutorMetrics>,
    #[serde(rename = "Executor Metrics")]
    executor_metrics: Option<ExecutorMetrics>,
    #[serde(rename = "Executor Metrics Updated")]
    executor_metrics_updated: Option<Vec<StageMetrics>>,
}

#[derive(Deserialize)]
struct ExecutorInfo {
    #[serde(rename = "Total Cores")]
    total_cores: Option<u32>,
}

#[derive(Deserialize)]
struct TaskInfo {
    #[serde(rename = "Executor ID")]
    executor_id: Option<String>,
    #[serde(rename = "Failed", default)]
    failed: bool,
}

#[derive(Deserialize, Default)]
struct TaskMetrics {
    #[serde(rename = "Executor Run Time")]
    run_time: Option<i64>,
    #[serde(rename = "Executor CPU Time")]
    cpu_time: Option<i64>,
    #[serde(rename = "Executor Deserialize CPU Time")]
    deserialize_cpu_time: Option<i64>,
    #[serde(rename = "JVM GC Time")]
    gc_time: Option<i64>,
    #[serde(rename = "Memory Bytes Spilled")]
    memory_spilled: Option<i64>,
    #[serde(rename = "Disk Bytes Spilled")]
    disk_spilled: Option<i64>,
}

#[derive(Deserialize)]
struct StageMetrics {
    #[serde(rename = "Executor Metrics")]
    executor_metrics: Option<ExecutorMetrics>,
}

#[derive(Deserialize)]
struct ExecutorMetrics {
    #[serde(rename = "JVMHeapMemory")]
    jvm_heap: Option<i64>,
    #[serde(rename = "JVMOffHeapMemory")]
    jvm_off_heap: Option<i64>,
    #[serde(rename = "OnHeapExecutionMemory")]
    on_heap_execution: Option<i64>,
    #[serde(rename = "OffHeapExecutionMemory")]
    off_heap_execution: Option<i64>,
    #[serde(rename = "ProcessTreeJVMRSSMemory")]
    jvm_rss: Option<i64>,
    #[serde(rename = "ProcessTreePythonRSSMemory")]
    python_rss: Option<i64>,
    #[serde(rename = "ProcessTreeOtherRSSMemory")]
    other_rss: Option<i64>,
}

/// A non-negative count from Spark (which writes -1 for "not measured").
fn n(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

impl UsageParser {
    /// A parser with nothing read.
    pub fn new() -> UsageParser {
        UsageParser::default()
    }

    fn executor(&mut self, id: &str) -> &mut ExecutorUsage {
        self.usage.executors.entry(id.to_string()).or_default()
    }

    /// Reads one line of the log (a JSON event; blank lines are skipped).
    pub fn line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(ev) = serde_json::from_str::<Line>(line) else {
            self.usage.bad_lines += 1;
            return;
        };
        // Anything after the end (a log appended to) makes it incomplete again only if it is
        // not another end; keep the flag of the last event.
        self.usage.complete = ev.event == "SparkListenerApplicationEnd";
        match ev.event.as_str() {
            "SparkListenerApplicationStart" => {
                self.usage.app_id = ev.app_id;
                self.usage.start_ms = ev.timestamp;
            }
            "SparkListenerApplicationEnd" => self.usage.end_ms = ev.timestamp,
            "SparkListenerExecutorAdded" => {
                if let Some(id) = ev.executor_id {
                    let e = self.executor(&id);
                    e.added_ms = ev.timestamp;
                    e.cores = ev.executor_info.and_then(|i| i.total_cores);
                }
            }
            "SparkListenerExecutorRemoved" => {
                if let Some(id) = ev.executor_id {
                    self.executor(&id).removed_ms = ev.timestamp;
                }
            }
            "SparkListenerTaskEnd" => {
                let Some(info) = ev.task_info else { return };
                if info.failed {
                    self.usage.failed_tasks += 1;
                }
                let Some(id) = info.executor_id else { return };
                let m = ev.task_metrics.unwrap_or_default();
                let e = self.executor(&id);
                e.tasks += 1;
                e.run_time_ms = e.run_time_ms.saturating_add(n(m.run_time));
                e.cpu_time_ns = e
                    .cpu_time_ns
                    .saturating_add(n(m.cpu_time))
                    .saturating_add(n(m.deserialize_cpu_time));
                e.gc_time_ms = e.gc_time_ms.saturating_add(n(m.gc_time));
                e.memory_spilled_bytes = e.memory_spilled_bytes.saturating_add(n(m.memory_spilled));
                e.disk_spilled_bytes = e.disk_spilled_bytes.saturating_add(n(m.disk_spilled));
                if let Some(peaks) = &ev.task_executor_metrics {
                    e.peaks.raise(peaks);
                }
            }
            "SparkListenerStageExecutorMetrics" => {
                if let (Some(id), Some(m)) = (ev.executor_id, &ev.executor_metrics) {
                    self.executor(&id).peaks.raise(m);
                }
            }
            "SparkListenerExecutorMetricsUpdate" => {
                if let Some(id) = ev.executor_id {
                    for s in ev.executor_metrics_updated.unwrap_or_default() {
                        if let Some(m) = &s.executor_metrics {
                            self.executor(&id).peaks.raise(m);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// What was read.
    pub fn finish(self) -> RunUsage {
        self.usage
    }
}

#[cfg(test)]
mod tests;
