//! `sluice workflow ...`: apply and run workflows, list and describe their runs (the DAG drawn
//! as text with each step's state), cancel and rerun them, over `/v1/workflows` and
//! `/v1/workflow-runs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;
use sluice_api::workflows::{RunView, StepView, WorkflowApplyView};

use crate::Client;
use crate::output::{Output, Table, print_as};

/// `sluice workflow ...`.
#[derive(Subcommand)]
pub enum WorkflowCmd {
    /// Starts a run: of a workflow file (applied first, as `apply -f`) or of a workflow by name.
    /// Prints the run's id.
    Run {
        /// A workflow file (`-` reads standard input), or the name of an applied workflow.
        target: String,
        /// Namespace (for a name).
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// A parameter override, KEY=VALUE (repeat for more).
        #[arg(long = "param", short = 'p')]
        params: Vec<String>,
    },
    /// Lists workflow runs, newest first, or shows one.
    Get {
        /// A run id.
        run: Option<String>,
        /// Only this namespace.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state (running, succeeded, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Shows a run: the DAG drawn as text, each step with its state, job and why it waits or
    /// was skipped.
    Describe {
        /// The run id.
        run: String,
    },
    /// Cancels a run: its queued and running steps are cancelled, waiting ones never start.
    Cancel {
        /// The run id.
        run: String,
    },
    /// Reruns a failed or cancelled run from its failed steps (succeeded steps are kept).
    Rerun {
        /// The run id.
        run: String,
    },
}

fn parse_params(params: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p:?}: expected KEY=VALUE");
        };
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// Applies a workflow document; returns the answer.
pub async fn apply_doc(c: &Client, doc: String) -> Result<WorkflowApplyView> {
    c.put("/v1/workflows", doc).await
}

fn looks_like_file(target: &str) -> bool {
    target == "-"
        || target.ends_with(".yaml")
        || target.ends_with(".yml")
        || target.ends_with(".json")
        || Path::new(target).is_file()
}

fn done_count(r: &RunView) -> String {
    let ended = r
        .steps
        .iter()
        .filter(|s| !matches!(s.status.as_str(), "waiting" | "active"))
        .count();
    format!("{ended}/{}", r.steps.len())
}

fn runs_table(all: &[RunView]) -> Table {
    let mut t = Table::new(&[
        "RUN",
        "NAMESPACE",
        "WORKFLOW",
        "STATE",
        ">STEPS",
        ">ATTEMPT",
        "TRIGGER",
        "CREATED",
    ]);
    for r in all {
        t.row(vec![
            r.id.clone(),
            r.namespace.clone(),
            r.workflow.clone(),
            r.state.clone(),
            done_count(r),
            r.attempt.to_string(),
            r.trigger.clone(),
            r.created_at.clone(),
        ]);
    }
    t
}

/// Each step's layer: 0 for steps without dependencies, else one more than its deepest one.
fn layers(steps: &[StepView]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut layer = vec![0usize; steps.len()];
    // At most n passes: the server refuses cycles.
    for _ in 0..steps.len() {
        let mut changed = false;
        for (i, s) in steps.iter().enumerate() {
            let l = s
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(|&j| layer[j] + 1)
                .max()
                .unwrap_or(0);
            if l != layer[i] {
                layer[i] = l;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

fn mark(status: &str) -> &'static str {
    match status {
        "succeeded" => "[ok]",
        "failed" => "[x] ",
        "active" => "[..]",
        "skipped" => "[-] ",
        "cancelled" => "[c] ",
        _ => "[ ] ",
    }
}

/// The run drawn as text: header, then the DAG layer by layer.
pub fn describe_text(r: &RunView) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Run:          {}\nWorkflow:     {}/{}\nState:        {}{}\nAttempt:      {}\nTrigger:      {}\nLogical date: {}\nCreated:      {}\n",
        r.id,
        r.namespace,
        r.workflow,
        r.state,
        if r.cancel_requested && r.state == "running" {
            " (cancelling)"
        } else {
            ""
        },
        r.attempt,
        r.trigger,
        r.logical_date,
        r.created_at
    ));
    if let Some(f) = &r.finished_at {
        s.push_str(&format!("Finished:     {f}\n"));
    }
    if !r.parameters.is_empty() {
        let p: Vec<String> = r
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!("Parameters:   {}\n", p.join(", ")));
    }
    if let Some(m) = &r.message {
        s.push_str(&format!("Message:      {m}\n"));
    }
    s.push_str("\nDAG (each step after the steps it depends on):\n");
    let layer = layers(&r.steps);
    let deepest = layer.iter().copied().max().unwrap_or(0);
    for l in 0..=deepest {
        for (i, st) in r.steps.iter().enumerate() {
            if layer[i] != l {
                continue;
            }
            let indent = "    ".repeat(l);
            let arrow = if l == 0 { "" } else { "└─▶ " };
            let after = if st.depends_on.is_empty() {
                String::new()
            } else {
                format!("  after {} ({})", st.depends_on.join(", "), st.trigger)
            };
            s.push_str(&format!(
                "  {indent}{arrow}{} {} {}{after}\n",
                mark(&st.status),
                st.name,
                st.status
            ));
            let pad = format!("  {indent}{}     ", if l == 0 { "" } else { "    " });
            if let Some(j) = &st.job_id {
                s.push_str(&format!(
                    "{pad}job {j} ({}, attempt {})\n",
                    st.job_state.as_deref().unwrap_or("gone"),
                    st.job_attempt.unwrap_or(0)
                ));
            }
            if !st.previous_jobs.is_empty() {
                s.push_str(&format!(
                    "{pad}earlier jobs: {}\n",
                    st.previous_jobs.join(", ")
                ));
            }
            if let Some(m) = &st.message {
                s.push_str(&format!("{pad}{m}\n"));
            }
        }
    }
    s
}

/// Runs one `sluice workflow` command.
pub async fn workflow(c: &Client, cmd: WorkflowCmd) -> Result<i32> {
    match cmd {
        WorkflowCmd::Run {
            target,
            namespace,
            params,
        } => {
            let params = parse_params(&params)?;
            let (ns, name) = if looks_like_file(&target) {
                let doc = crate::input::read_file(&PathBuf::from(&target))?;
                let a = apply_doc(c, doc).await?;
                eprintln!(
                    "workflow/{}/{} {}",
                    a.workflow.namespace, a.workflow.name, a.result
                );
                (a.workflow.namespace, a.workflow.name)
            } else {
                (namespace, target)
            };
            let body = serde_json::json!({ "parameters": params });
            let r: RunView = c
                .post_json(&format!("/v1/workflows/{ns}/{name}/runs"), &body)
                .await?;
            println!("{}", r.id);
        }
        WorkflowCmd::Get {
            run,
            namespace,
            workflow,
            state,
            output,
        } => {
            let all: Vec<RunView> = match run {
                Some(id) => vec![c.get(&format!("/v1/workflow-runs/{id}"), &[]).await?],
                None => {
                    let mut q = Vec::new();
                    for (k, v) in [
                        ("namespace", namespace),
                        ("workflow", workflow),
                        ("state", state),
                    ] {
                        if let Some(v) = v {
                            q.push((k, v));
                        }
                    }
                    c.get("/v1/workflow-runs", &q).await?
                }
            };
            if output.is_table() {
                runs_table(&all).print();
            } else if output == Output::Name {
                for r in &all {
                    println!("workflowrun/{}/{}", r.namespace, r.id);
                }
            } else if all.len() == 1 {
                print_as(&all[0], output)?;
            } else {
                print_as(&all, output)?;
            }
        }
        WorkflowCmd::Describe { run } => {
            let r: RunView = c.get(&format!("/v1/workflow-runs/{run}"), &[]).await?;
            print!("{}", describe_text(&r));
        }
        WorkflowCmd::Cancel { run } => {
            let r: RunView = c
                .post_json(
                    &format!("/v1/workflow-runs/{run}/cancel"),
                    &serde_json::json!({}),
                )
                .await?;
            println!(
                "{} {}",
                r.id,
                if r.state == "running" {
                    "cancelling"
                } else {
                    &r.state
                }
            );
        }
        WorkflowCmd::Rerun { run } => {
            let r: RunView = c
                .post_json(
                    &format!("/v1/workflow-runs/{run}/rerun"),
                    &serde_json::json!({}),
                )
                .await?;
            println!("{} rerun (attempt {})", r.id, r.attempt);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str], status: &str) -> StepView {
        StepView {
            name: name.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            trigger: "allSucceeded".into(),
            status: status.into(),
            job_id: None,
            job_state: None,
            job_attempt: None,
            previous_jobs: vec![],
            message: None,
        }
    }

    #[test]
    fn layers_follow_the_longest_path() {
        let steps = vec![
            step("d", &["b", "c"], "waiting"),
            step("a", &[], "succeeded"),
            step("b", &["a"], "active"),
            step("c", &["a", "b"], "waiting"),
        ];
        assert_eq!(layers(&steps), [3, 0, 1, 2]);
    }

    #[test]
    fn params_are_key_value() {
        let p = parse_params(&["a=1".into(), "b=x=y".into()]).expect("valid");
        assert_eq!(p["b"], "x=y");
        assert!(parse_params(&["nope".into()]).is_err());
    }
}
