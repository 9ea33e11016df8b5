//! The simulated backend's configuration (`[backend]` with `kind = "simulated"`) and its
//! checked form.

use serde::{Deserialize, Serialize};
use sluice_core::NodeCapacity;
use sluice_core::spec::{Text, cpu_field, mem_field, parse_duration_secs};

use super::rng::Distribution;

/// A group of identical nodes: `{ prefix = "node", count = 10, cpu = "16", memory = "64g" }`
/// gives `node-0` to `node-9`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Node names are `{prefix}-{i}`.
    pub prefix: String,
    /// How many nodes (at least 1).
    pub count: u32,
    /// CPU of each node ("16", "7.5", "500m").
    pub cpu: Text,
    /// Memory of each node ("64g", "512m").
    pub memory: Text,
    /// Pods each node takes; default unlimited.
    #[serde(default)]
    pub pods: Option<u32>,
}

/// How long a job runs when its `sluice.io/sim-duration` label does not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum DurationConfig {
    /// Always `value` ("5m").
    Fixed {
        /// The duration.
        value: Text,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Shortest.
        min: Text,
        /// Longest.
        max: Text,
    },
    /// Log-normal around `median`, with spread `sigma` (the standard deviation of the logarithm:
    /// 0.5 puts two thirds of the runs between 0.6 and 1.6 times the median).
    Lognormal {
        /// The median duration.
        median: Text,
        /// The spread.
        sigma: f64,
    },
}

impl Default for DurationConfig {
    fn default() -> Self {
        DurationConfig::Lognormal {
            median: Text("1m".into()),
            sigma: 0.5,
        }
    }
}

/// `[backend]` with `kind = "simulated"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    /// The nodes, in first-fit order.
    #[serde(default = "default_nodes")]
    pub nodes: Vec<NodeGroup>,
    /// Seed of the sampled durations.
    #[serde(default)]
    pub seed: u64,
    /// Durations of jobs without a `sluice.io/sim-duration` label.
    #[serde(default)]
    pub duration: DurationConfig,
    /// How long a run is pending before it runs ("0s" by default).
    #[serde(default = "default_start_delay")]
    pub start_delay: Text,
    /// A file that holds the cluster's runs instead of the process's memory, shared by every
    /// server that names it (replicas of a high-availability test: one cluster, whichever
    /// replica submits). It is also the cluster's own record of every submission, refusal and
    /// cancel, one JSON object per line. Default: none (runs in memory).
    #[serde(default)]
    pub ledger: Option<std::path::PathBuf>,
}

fn default_nodes() -> Vec<NodeGroup> {
    vec![NodeGroup {
        prefix: "node".into(),
        count: 10,
        cpu: Text("16".into()),
        memory: Text("64g".into()),
        pods: None,
    }]
}

fn default_start_delay() -> Text {
    Text("0s".into())
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        SimulatedConfig {
            nodes: default_nodes(),
            seed: 0,
            duration: DurationConfig::default(),
            start_delay: default_start_delay(),
            ledger: None,
        }
    }
}

/// A bad simulated-backend key: the key (relative to `[backend]`, like `nodes[0].cpu`), the
/// value and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value:?}: {message}")]
pub struct SimConfigError {
    /// The key, relative to `[backend]`.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

fn bad(key: impl Into<String>, value: impl ToString, message: impl Into<String>) -> SimConfigError {
    SimConfigError {
        key: key.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

/// A duration in milliseconds; "0" and "0s" are allowed when `zero_ok`.
pub(super) fn duration_ms(key: &str, text: &str, zero_ok: bool) -> Result<u64, SimConfigError> {
    if zero_ok && matches!(text.trim(), "0" | "0s") {
        return Ok(0);
    }
    parse_duration_secs(key, text)
        .map(|s| s.saturating_mul(1000))
        .map_err(|e| bad(key, text, e.to_string()))
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resolved {
    pub(super) nodes: Vec<NodeCapacity>,
    pub(super) seed: u64,
    pub(super) duration: Distribution,
    pub(super) start_delay_ms: u64,
    pub(super) ledger: Option<std::path::PathBuf>,
}

impl SimulatedConfig {
    /// Checks every value; the error names the key.
    pub fn check(&self) -> Result<(), SimConfigError> {
        self.resolve().map(|_| ())
    }

    pub(super) fn resolve(&self) -> Result<Resolved, SimConfigError> {
        if self.nodes.is_empty() {
            return Err(bad("nodes", "[]", "needs at least one group of nodes"));
        }
        let mut nodes = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, g) in self.nodes.iter().enumerate() {
            let key = |f: &str| format!("nodes[{i}].{f}");
            if g.prefix.is_empty() || g.prefix.chars().any(|c| c.is_control() || c == ' ') {
                return Err(bad(key("prefix"), &g.prefix, "must be a non-empty name"));
            }
            if g.count == 0 {
                return Err(bad(key("count"), 0, "must be at least 1"));
            }
            let cpu = cpu_field(&key("cpu"), g.cpu.as_str())
                .map_err(|e| bad(key("cpu"), &g.cpu, e.to_string()))?;
            let mem = mem_field(&key("memory"), g.memory.as_str())
                .map_err(|e| bad(key("memory"), &g.memory, e.to_string()))?;
            if cpu == 0 || mem == 0 {
                return Err(bad(
                    key(if cpu == 0 { "cpu" } else { "memory" }),
                    if cpu == 0 { &g.cpu } else { &g.memory },
                    "must be greater than zero",
                ));
            }
            for n in 0..g.count {
                let name = format!("{}-{n}", g.prefix);
                if !names.insert(name.clone()) {
                    return Err(bad(
                        key("prefix"),
                        &g.prefix,
                        format!("gives node {name} a second time"),
                    ));
                }
                nodes.push(NodeCapacity::new(name, cpu, mem, g.pods));
            }
        }
        let duration = match &self.duration {
            DurationConfig::Fixed { value } => Distribution::Fixed {
                ms: duration_ms("duration.value", value.as_str(), false)?,
            },
            DurationConfig::Uniform { min, max } => {
                let min_ms = duration_ms("duration.min", min.as_str(), false)?;
                let max_ms = duration_ms("duration.max", max.as_str(), false)?;
                if max_ms < min_ms {
                    return Err(bad(
                        "duration.max",
                        max,
                        "must not be less than duration.min",
                    ));
                }
                Distribution::Uniform { min_ms, max_ms }
            }
            DurationConfig::Lognormal { median, sigma } => {
                if !sigma.is_finite() || *sigma < 0.0 || *sigma > 10.0 {
                    return Err(bad("duration.sigma", sigma, "must be between 0 and 10"));
                }
                Distribution::LogNormal {
                    median_ms: duration_ms("duration.median", median.as_str(), false)?,
                    sigma: *sigma,
                }
            }
        };
        Ok(Resolved {
            nodes,
            seed: self.seed,
            duration,
            start_delay_ms: duration_ms("start_delay", self.start_delay.as_str(), true)?,
            ledger: self.ledger.clone(),
        })
    }
}
