//! The workflow DAG and its state machine: given each step's status, which steps start now,
//! which are skipped (an upstream outcome makes their trigger impossible) or cancelled (the
//! run is being cancelled), and when the run is finished with which outcome. Pure: the server
//! reads the steps' jobs, calls [`advance`] and writes what it decided in one transaction.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// When a step may start, from the outcomes of the steps it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// Every dependency succeeded (the default). Skipped as soon as one failed, was cancelled
    /// or was skipped.
    #[default]
    AllSucceeded,
    /// Every dependency ended and at least one failed (a clean-up or alert step). Skipped when
    /// they all ended and none failed.
    AnyFailed,
    /// Every dependency ended, whatever the outcome.
    Always,
}

impl Trigger {
    /// The name as written in a workflow document.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::AllSucceeded => "allSucceeded",
            Trigger::AnyFailed => "anyFailed",
            Trigger::Always => "always",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allSucceeded" => Ok(Trigger::AllSucceeded),
            "anyFailed" => Ok(Trigger::AnyFailed),
            "always" => Ok(Trigger::Always),
            _ => Err("is not a trigger (expected allSucceeded, anyFailed or always)".into()),
        }
    }
}

/// Why a set of steps is not a DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    /// Two steps have the same name.
    #[error("step name {0:?} is used by more than one step")]
    Duplicate(String),
    /// A step depends on a step that does not exist.
    #[error("step {step:?} depends on {missing:?}, which is not a step of this workflow")]
    UnknownDependency {
        /// The step.
        step: String,
        /// The name it lists in `dependsOn`.
        missing: String,
    },
    /// The dependencies go round in a circle (the steps, in order, back to the first).
    #[error("steps depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// An `anyFailed` step without dependencies could never start.
    #[error("step {0:?} has trigger anyFailed but no dependsOn: it could never start")]
    NeverTriggered(String),
}

/// One step of the DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The step's name.
    pub name: String,
    /// The steps it depends on (indexes).
    pub depends_on: Vec<usize>,
    /// When it may start.
    pub trigger: Trigger,
}

/// A checked DAG: unique names, known dependencies, no cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    nodes: Vec<Node>,
    /// Every node, each after all of its dependencies.
    order: Vec<usize>,
}

impl Dag {
    /// Builds the DAG of steps given as (name, dependsOn names, trigger), in document order.
    pub fn new<'a, I>(steps: I) -> Result<Dag, DagError>
    where
        I: IntoIterator<Item = (&'a str, &'a [String], Trigger)>,
    {
        let steps: Vec<(&str, &[String], Trigger)> = steps.into_iter().collect();
        let mut index = BTreeMap::new();
        for (i, (name, _, _)) in steps.iter().enumerate() {
            if index.insert(*name, i).is_some() {
                return Err(DagError::Duplicate((*name).to_string()));
            }
        }
        let mut nodes = Vec::with_capacity(steps.len());
        for (name, deps, trigger) in &steps {
            let mut depends_on = Vec::new();
            for d in deps.iter() {
                let j = *index
                    .get(d.as_str())
                    .ok_or_else(|| DagError::UnknownDependency {
                        step: (*name).to_string(),
                        missing: d.clone(),
                    })?;
                if !depends_on.contains(&j) {
                    depends_on.push(j);
                }
            }
            if *trigger == Trigger::AnyFailed && depends_on.is_empty() {
                return Err(DagError::NeverTriggered((*name).to_string()));
            }
            nodes.push(Node {
                name: (*name).to_string(),
                depends_on,
                trigger: *trigger,
            });
        }
        let order = topological(&nodes)?;
        Ok(Dag { nodes, order })
    }

    /// The steps, in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The index of the step with this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every step index, each after all of its dependencies.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

/// Depth-first topological order; a back edge is reported as the cycle it closes.
fn topological(nodes: &[Node]) -> Result<Vec<usize>, DagError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (node, next dependency to look at): the open chain.
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::Open;
        while let Some(top) = stack.last_mut() {
            let (n, k) = *top;
            if let Some(&d) = nodes[n].depends_on.get(k) {
                top.1 += 1;
                match mark[d] {
                    Mark::New => {
                        mark[d] = Mark::Open;
                        stack.push((d, 0));
                    }
                    Mark::Open => {
                        // The open chain from d to n (each step depends on the next), then
                        // back to d.
                        let from = stack.iter().position(|(m, _)| *m == d).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[from..]
                            .iter()
                            .map(|(m, _)| nodes[*m].name.clone())
                            .collect();
                        cycle.push(nodes[d].name.clone());
                        return Err(DagError::Cycle(cycle));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[n] = Mark::Done;
                order.push(n);
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// What a step is, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// Not started: waits for its dependencies.
    Waiting,
    /// Its job exists and has not ended for good (queued, running, or failed with a retry to
    /// come).
    Active,
    /// Its job succeeded.
    Succeeded,
    /// Its job failed for good (no retry left), or no job could be made for it.
    Failed,
    /// Its job was cancelled, or the run was cancelled before it started.
    Cancelled,
    /// It will never run: an upstream outcome made its trigger impossible.
    Skipped,
}

impl StepStatus {
    /// Whether the step has ended (nothing will change it, short of a rerun).
    pub fn is_terminal(self) -> bool {
        !matches!(self, StepStatus::Waiting | StepStatus::Active)
    }

    /// The name as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Waiting => "waiting",
            StepStatus::Active => "active",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a finished run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunOutcome {
    /// No step failed or was cancelled.
    Succeeded,
    /// Some step failed or was cancelled.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl RunOutcome {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

/// What [`advance`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Steps to start now (their jobs queued), in dependency order.
    pub start: Vec<usize>,
    /// Steps skipped now, with why.
    pub skip: Vec<(usize, String)>,
    /// Waiting steps cancelled now because the run is being cancelled.
    pub cancel: Vec<usize>,
    /// The run's outcome, once every step has ended (counting this decision).
    pub outcome: Option<RunOutcome>,
}

impl Decision {
    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
            && self.skip.is_empty()
            && self.cancel.is_empty()
            && self.outcome.is_none()
    }
}

/// Decides what happens now, from each step's status (indexed as [`Dag::nodes`]) and whether
/// the run is being cancelled. A step starts only once each of its dependencies has ended and
/// its trigger holds; a step whose trigger can no longer hold is skipped at once, and that may
/// skip its own dependants in the same decision. Steps already started or ended are never
/// touched.
pub fn advance(dag: &Dag, status: &[StepStatus], cancelling: bool) -> Decision {
    let mut now: Vec<StepStatus> = status.to_vec();
    now.resize(dag.nodes.len(), StepStatus::Waiting);
    let mut d = Decision::default();
    for &i in &dag.order {
        if now[i] != StepStatus::Waiting {
            continue;
        }
        if cancelling {
            now[i] = StepStatus::Cancelled;
            d.cancel.push(i);
            continue;
        }
        let node = &dag.nodes[i];
        let deps: Vec<(usize, StepStatus)> = node.depends_on.iter().map(|&j| (j, now[j])).collect();
        let all_ended = deps.iter().all(|(_, s)| s.is_terminal());
        match node.trigger {
            Trigger::AllSucceeded => {
                if let Some((j, s)) = deps
                    .iter()
                    .find(|(_, s)| s.is_terminal() && *s != StepStatus::Succeeded)
                {
                    now[i] = StepStatus::Skipped;
                    d.skip.push((
                        i,
                        format!(
                            "upstream step {} {s}: trigger allSucceeded cannot hold",
                            dag.nodes[*j].name
                        ),
                    ));
                } else if all_ended {
                    now[i] = StepStatus::Active;
                    d.start.push(i);
                }
            }
            Trigger::AnyFailed => {
                if all_ended {
                    if deps.iter().any(|(_, s)| *s == StepStatus::Failed) {
                        now[i] = StepStatus::Active;
                        d.start.push(i);
                    } else {
                        now[i] = StepStatus::Skipped;
                        d.skip.push((
                            i,
                            "no upstream step failed: trigger anyFailed cannot hold".into(),
                        ));
                    }
                }
            }
            Trigger::Always => {
                if all_ended {
                    now[i] = StepStatus::Active;
                    d.start.push(i);
                }
            }
        }
    }
    if now.iter().all(|s| s.is_terminal()) {
        let any = |want: StepStatus| now.contains(&want);
        d.outcome = Some(if cancelling && any(StepStatus::Cancelled) {
            RunOutcome::Cancelled
        } else if any(StepStatus::Failed) || any(StepStatus::Cancelled) {
            RunOutcome::Failed
        } else {
            RunOutcome::Succeeded
        });
    }
    d
}

/// Why a waiting step waits, for `describe`: the dependencies that have not ended yet.
pub fn waiting_for(dag: &Dag, status: &[StepStatus], i: usize) -> String {
    let Some(node) = dag.nodes.get(i) else {
        return String::new();
    };
    let pending: Vec<&str> = node
        .depends_on
        .iter()
        .filter(|&&j| !status.get(j).is_some_and(|s| s.is_terminal()))
        .map(|&j| dag.nodes[j].name.as_str())
        .collect();
    if pending.is_empty() {
        format!("ready ({}): starts at the next tick", node.trigger)
    } else {
        format!("waits for {} ({})", pending.join(", "), node.trigger)
    }
}

#[cfg(test)]
mod tests;
