//! The cluster file: node groups plus the server's own `[scheduler]` and `[namespaces.NAME]`
//! sections, so that a policy is simulated with the settings the server would run.
//!
//! ```toml
//! nodes = [
//!   { prefix = "node", count = 200, cpu = "32", memory = "128g" },
//!   { prefix = "big", count = 4, cpu = "64", memory = "512g", pods = 110 },
//! ]
//! [scheduler]
//! levels = ["high", "normal"]
//! default_level = "normal"
//! default_policy = "strict"
//! default_weight = 1
//! [namespaces.etl]
//! weight = 3
//! ```
//!
//! A server configuration for the simulated backend (`[backend] kind = "simulated"` with its
//! `nodes`) is a cluster file as it stands: its other keys (`listen`, `store`, ...) are ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sluice_core::NodeCapacity;
use sluice_core::cycle::{BackfillSettings, HeadPolicy, NamespacePolicy, PreemptionSettings};
use sluice_core::job::Resources;
use sluice_core::spec::Levels;

use crate::error::{SimError, cluster_err};

/// The highest level preempting the others (when there are others), at most 3 times per job.
fn default_preemption(levels: &[String]) -> PreemptionSettings {
    PreemptionSettings {
        levels: (0..levels.len())
            .map(|i| i == 0 && levels.len() > 1)
            .collect(),
        namespaces: None,
        max_per_job: 3,
    }
}

/// A group of identical nodes: `{ prefix = "node", count = 10, cpu = "16", memory = "64g" }`
/// gives `node-0` to `node-9` (the simulated backend's format).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Node names are `{prefix}-{i}`.
    pub prefix: String,
    /// How many nodes (at least 1).
    pub count: u32,
    /// Allocatable CPU of each node ("16", "7.5", "500m").
    pub cpu: String,
    /// Allocatable memory of each node ("64g", "512m").
    pub memory: String,
    /// Pods each node takes; default unlimited.
    #[serde(default)]
    pub pods: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SchedulerSection {
    levels: Vec<String>,
    default_level: String,
    /// Read for compatibility with the server's file; the simulator runs a cycle at every event.
    #[allow(dead_code)]
    interval_ms: Option<toml::Value>,
    default_policy: HeadPolicy,
    default_weight: u32,
    /// Backfill: expected run time of a job without one (the simulator knows every job's).
    default_runtime_ms: Option<toml::Value>,
    /// Backfill: a running job past its estimate is taken to end this long from now.
    backfill_margin_ms: Option<toml::Value>,
    /// Backfill: a head that has waited this long is passed no more; 0: no bound.
    backfill_max_wait_ms: Option<toml::Value>,
    /// Aging: level name to the wait after which a job of that level sorts one level higher.
    aging_ms: BTreeMap<String, toml::Value>,
    /// Preemption, as the server reads it.
    preemption: PreemptionSection,
}

/// `[scheduler.preemption]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PreemptionSection {
    enabled_levels: Vec<String>,
    namespaces: Vec<String>,
    /// Read for compatibility with the server's file; a victim stops at once here.
    #[allow(dead_code)]
    grace_ms: Option<toml::Value>,
    max_per_job: Option<u32>,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        let l = Levels::default();
        SchedulerSection {
            levels: l.names,
            default_level: l.default_level,
            interval_ms: None,
            default_policy: HeadPolicy::Strict,
            default_weight: 1,
            default_runtime_ms: None,
            backfill_margin_ms: None,
            backfill_max_wait_ms: None,
            aging_ms: BTreeMap::new(),
            preemption: PreemptionSection::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NamespaceSection {
    weight: Option<u32>,
    policy: Option<HeadPolicy>,
    default_level: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    #[serde(default)]
    nodes: Option<Vec<NodeGroup>>,
    #[serde(default)]
    scheduler: SchedulerSection,
    #[serde(default)]
    namespaces: BTreeMap<String, NamespaceSection>,
    /// A server configuration's `[backend]`: its `nodes` when `kind = "simulated"`.
    #[serde(default)]
    backend: Option<toml::Table>,
    // The server's other keys, ignored.
    #[allow(dead_code)]
    #[serde(default)]
    listen: Option<toml::Value>,
    #[allow(dead_code)]
    #[serde(default)]
    data_dir: Option<toml::Value>,
    #[allow(dead_code)]
    #[serde(default)]
    store: Option<toml::Value>,
    #[allow(dead_code)]
    #[serde(default)]
    api: Option<toml::Value>,
}

/// A checked cluster: its nodes and the scheduler settings of its namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Allocatable room per node, in first-fit order.
    pub nodes: Vec<NodeCapacity>,
    /// Priority levels (highest first) and default levels.
    pub levels: Levels,
    /// Per-namespace weight and head-of-line policy.
    pub namespaces: BTreeMap<String, NamespacePolicy>,
    /// Settings of namespaces not configured.
    pub default_policy: NamespacePolicy,
    /// Backfill's settings (`scheduler.default_runtime_ms`, `backfill_margin_ms`,
    /// `backfill_max_wait_ms`).
    pub backfill: BackfillSettings,
    /// Aging bound per level index, ms (`[scheduler.aging_ms]`); empty: no aging.
    pub aging: Vec<Option<i64>>,
    /// Who may preempt whom under a policy with preemption: `[scheduler.preemption]`, or, when
    /// it enables no level, the highest level preempting the others, at most 3 times per job.
    pub preemption: PreemptionSettings,
    /// `[scheduler.preemption]` enables some level (the `configured` policy preempts).
    pub preemption_configured: bool,
}

impl Cluster {
    /// A cluster of the given nodes with the server's default scheduler settings.
    pub fn of_nodes(nodes: Vec<NodeCapacity>) -> Self {
        Cluster {
            nodes,
            levels: Levels::default(),
            namespaces: BTreeMap::new(),
            default_policy: NamespacePolicy::default(),
            backfill: BackfillSettings::default(),
            aging: Vec::new(),
            preemption: default_preemption(&Levels::default().names),
            preemption_configured: false,
        }
    }

    /// Reads a cluster file (TOML); errors name the key and the value.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let file: ClusterFile =
            toml::from_str(text).map_err(|e| SimError::ClusterFile(e.message().to_string()))?;
        let groups = match (&file.nodes, &file.backend) {
            (Some(_), Some(b)) if b.contains_key("nodes") => {
                return Err(cluster_err(
                    "nodes",
                    "",
                    "given both at the top and under [backend]: keep one",
                ));
            }
            (Some(n), _) => n.clone(),
            (None, Some(b)) => {
                let kind = b.get("kind").and_then(|k| k.as_str()).unwrap_or("local");
                if kind != "simulated" {
                    return Err(cluster_err(
                        "backend.kind",
                        kind,
                        "only a simulated backend's nodes can be read; add a top-level `nodes`",
                    ));
                }
                match b.get("nodes") {
                    Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
                        cluster_err("backend.nodes", "", e.message())
                    })?,
                    None => return Err(cluster_err("backend.nodes", "", "is missing")),
                }
            }
            (None, None) => return Err(cluster_err("nodes", "", "is missing")),
        };
        let nodes = resolve_nodes(&groups)?;
        let s = &file.scheduler;
        if s.levels.is_empty() {
            return Err(cluster_err(
                "scheduler.levels",
                "[]",
                "needs at least one level",
            ));
        }
        for (i, l) in s.levels.iter().enumerate() {
            if l.is_empty() || s.levels[..i].contains(l) {
                return Err(cluster_err(
                    "scheduler.levels",
                    l,
                    "levels must be non-empty and distinct",
                ));
            }
        }
        let known = |key: String, l: &str| -> Result<(), SimError> {
            if s.levels.iter().any(|x| x == l) {
                Ok(())
            } else {
                Err(cluster_err(
                    key,
                    l,
                    format!("is not one of scheduler.levels ({})", s.levels.join(", ")),
                ))
            }
        };
        known("scheduler.default_level".into(), &s.default_level)?;
        if s.default_weight == 0 {
            return Err(cluster_err(
                "scheduler.default_weight",
                0,
                "must be at least 1",
            ));
        }
        // As the server reads them: whole milliseconds or a duration text.
        let ms = |key: &str, v: Option<&toml::Value>| -> Result<Option<i64>, SimError> {
            match v {
                None => Ok(None),
                Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n)),
                Some(toml::Value::String(text)) => {
                    let d = sluice_core::duration::parse(key, text)
                        .map_err(|e| cluster_err(key, text, e.problem()))?;
                    Ok(Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
                }
                Some(other) => Err(cluster_err(
                    key,
                    other,
                    "is not milliseconds or a duration text",
                )),
            }
        };
        let defaults = BackfillSettings::default();
        let backfill = BackfillSettings {
            default_runtime_ms: ms(
                "scheduler.default_runtime_ms",
                s.default_runtime_ms.as_ref(),
            )?
            .unwrap_or(defaults.default_runtime_ms),
            overrun_margin_ms: ms(
                "scheduler.backfill_margin_ms",
                s.backfill_margin_ms.as_ref(),
            )?
            .unwrap_or(defaults.overrun_margin_ms),
            max_head_wait_ms: match ms(
                "scheduler.backfill_max_wait_ms",
                s.backfill_max_wait_ms.as_ref(),
            )? {
                None => defaults.max_head_wait_ms,
                Some(0) => None,
                Some(v) => Some(v),
            },
        };
        let mut aging = Vec::new();
        for (level, v) in &s.aging_ms {
            let key = format!("scheduler.aging_ms.{level}");
            known(key.clone(), level)?;
            let rank = s.levels.iter().position(|l| l == level).unwrap_or(0);
            if aging.len() <= rank {
                aging.resize(rank + 1, None);
            }
            aging[rank] = match ms(&key, Some(v))? {
                Some(0) | None => return Err(cluster_err(key, 0, "must be greater than zero")),
                some => some,
            };
        }
        let p = &s.preemption;
        for l in &p.enabled_levels {
            known("scheduler.preemption.enabled_levels".into(), l)?;
        }
        if p.max_per_job == Some(0) {
            return Err(cluster_err(
                "scheduler.preemption.max_per_job",
                0,
                "must be at least 1",
            ));
        }
        let preemption_configured = !p.enabled_levels.is_empty();
        let preemption = if preemption_configured {
            PreemptionSettings {
                levels: s
                    .levels
                    .iter()
                    .map(|l| p.enabled_levels.contains(l))
                    .collect(),
                namespaces: (!p.namespaces.is_empty())
                    .then(|| p.namespaces.iter().cloned().collect()),
                max_per_job: p.max_per_job.unwrap_or(3),
            }
        } else {
            PreemptionSettings {
                max_per_job: p.max_per_job.unwrap_or(3),
                ..default_preemption(&s.levels)
            }
        };
        let mut namespaces = BTreeMap::new();
        let mut namespace_defaults = BTreeMap::new();
        for (ns, c) in &file.namespaces {
            if c.weight == Some(0) {
                return Err(cluster_err(
                    format!("namespaces.{ns}.weight"),
                    0,
                    "must be at least 1",
                ));
            }
            if let Some(l) = &c.default_level {
                known(format!("namespaces.{ns}.default_level"), l)?;
                namespace_defaults.insert(ns.clone(), l.clone());
            }
            namespaces.insert(
                ns.clone(),
                NamespacePolicy {
                    weight: c.weight.unwrap_or(s.default_weight),
                    policy: c.policy.unwrap_or(s.default_policy),
                },
            );
        }
        Ok(Cluster {
            nodes,
            levels: Levels {
                names: s.levels.clone(),
                default_level: s.default_level.clone(),
                namespace_defaults,
            },
            namespaces,
            default_policy: NamespacePolicy {
                weight: s.default_weight,
                policy: s.default_policy,
            },
            backfill,
            aging,
            preemption,
            preemption_configured,
        })
    }

    /// Allocatable room summed over the nodes.
    pub fn total(&self) -> Resources {
        self.nodes
            .iter()
            .fold(Resources::default(), |acc, n| acc.plus(&n.room()))
    }

    /// The settings of a namespace.
    pub fn policy_of(&self, namespace: &str) -> NamespacePolicy {
        self.namespaces
            .get(namespace)
            .copied()
            .unwrap_or(self.default_policy)
    }
}

/// Checks node groups and lists their nodes; errors name `nodes[i].field`.
pub fn resolve_nodes(groups: &[NodeGroup]) -> Result<Vec<NodeCapacity>, SimError> {
    if groups.is_empty() {
        return Err(cluster_err(
            "nodes",
            "[]",
            "needs at least one group of nodes",
        ));
    }
    let mut nodes = Vec::new();
    let mut names = BTreeSet::new();
    for (i, g) in groups.iter().enumerate() {
        let key = |f: &str| format!("nodes[{i}].{f}");
        if g.prefix.is_empty() || g.prefix.chars().any(|c| c.is_control() || c == ' ') {
            return Err(cluster_err(
                key("prefix"),
                &g.prefix,
                "must be a non-empty name",
            ));
        }
        if g.count == 0 {
            return Err(cluster_err(key("count"), 0, "must be at least 1"));
        }
        let cpu = sluice_core::quantity::parse_cpu_milli(&g.cpu)
            .map_err(|e| cluster_err(key("cpu"), &g.cpu, e.to_string()))?;
        let mem = sluice_core::quantity::parse_mem_mib(&g.memory)
            .map_err(|e| cluster_err(key("memory"), &g.memory, e.to_string()))?;
        if mem == 0 {
            return Err(cluster_err(
                key("memory"),
                &g.memory,
                "must be greater than zero",
            ));
        }
        for n in 0..g.count {
            let name = format!("{}-{n}", g.prefix);
            if !names.insert(name.clone()) {
                return Err(cluster_err(
                    key("prefix"),
                    &g.prefix,
                    format!("gives node {name} a second time"),
                ));
            }
            nodes.push(NodeCapacity::new(name, cpu, mem, g.pods));
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nodes_scheduler_and_namespaces() {
        let c = Cluster::parse(
            r#"
nodes = [{ prefix = "n", count = 2, cpu = "4", memory = "8g" }, { prefix = "b", count = 1, cpu = "500m", memory = "1g", pods = 3 }]
[scheduler]
levels = ["urgent", "normal"]
default_level = "normal"
default_policy = "best-effort"
[namespaces.etl]
weight = 3
policy = "strict"
default_level = "urgent"
"#,
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.nodes[2], NodeCapacity::new("b-0", 500, 1024, Some(3)));
        assert_eq!(c.total(), Resources::new(8_500, 17 * 1024));
        assert_eq!(c.levels.rank("urgent"), Some(0));
        assert_eq!(c.levels.default_for("etl"), "urgent");
        assert_eq!(c.levels.default_for("other"), "normal");
        assert_eq!(
            c.policy_of("etl"),
            NamespacePolicy {
                weight: 3,
                policy: HeadPolicy::Strict
            }
        );
        assert_eq!(c.policy_of("x").policy, HeadPolicy::BestEffort);
        assert_eq!(c.backfill, BackfillSettings::default());
        assert!(c.aging.is_empty());
    }

    #[test]
    fn reads_backfill_and_aging_as_the_server_does() {
        let c = Cluster::parse(
            r#"
nodes = [{ prefix = "n", count = 1, cpu = "4", memory = "8g" }]
[scheduler]
levels = ["urgent", "high", "normal"]
default_policy = "backfill"
default_runtime_ms = "30m"
backfill_margin_ms = 60000
backfill_max_wait_ms = 0
[scheduler.aging_ms]
normal = "2h"
high = 3600000
"#,
        )
        .unwrap();
        assert_eq!(c.policy_of("x").policy, HeadPolicy::Backfill);
        assert_eq!(
            c.backfill,
            BackfillSettings {
                default_runtime_ms: 30 * 60_000,
                overrun_margin_ms: 60_000,
                max_head_wait_ms: None,
            }
        );
        assert_eq!(c.aging, vec![None, Some(3_600_000), Some(7_200_000)]);
    }

    #[test]
    fn a_simulated_server_config_is_a_cluster_file() {
        let c = Cluster::parse(
            r#"
data_dir = ".x"
[backend]
kind = "simulated"
seed = 1
nodes = [{ prefix = "node", count = 3, cpu = "16", memory = "64g" }]
[scheduler]
interval_ms = 500
"#,
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 3);
    }

    #[test]
    fn bad_keys_are_named() {
        let cases = [
            ("nodes = []", "cluster key `nodes`"),
            (
                "nodes = [{ prefix = \"n\", count = 0, cpu = \"4\", memory = \"8g\" }]",
                "`nodes[0].count` = \"0\"",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"x\", memory = \"8g\" }]",
                "`nodes[0].cpu` = \"x\"",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"8g\" }]\n[scheduler]\ndefault_level = \"low\"",
                "`scheduler.default_level` = \"low\"",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"8g\" }]\n[namespaces.a]\nweight = 0",
                "`namespaces.a.weight` = \"0\"",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"8g\" }]\n[namespaces.a]\npolicy = \"lazy\"",
                "cluster file:",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"8g\" }]\n[scheduler.aging_ms]\nlow = \"1h\"",
                "`scheduler.aging_ms.low` = \"low\"",
            ),
            (
                "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"8g\" }]\n[scheduler]\nbackfill_margin_ms = \"5q\"",
                "`scheduler.backfill_margin_ms` = \"5q\"",
            ),
            ("[backend]\nkind = \"local\"", "`backend.kind` = \"local\""),
            ("colour = 1", "cluster file:"),
        ];
        for (text, want) in cases {
            let err = Cluster::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: got {err}, want {want}");
        }
    }
}
