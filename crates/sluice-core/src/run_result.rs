//! What a run produced, beyond its exit code: the result a job kind reports, kept per run
//! (job attempt) by the store and shown by `describe` and the job API. Today: a `dbt` run's
//! nodes, read from dbt's `target/run_results.json` (pure: the caller reads the file).

use serde::{Deserialize, Serialize};

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum RunResult {
    /// A dbt command's nodes.
    Dbt(DbtResult),
}

impl RunResult {
    /// A one-line account of what failed, naming the nodes (`None` when nothing failed).
    pub fn failure_summary(&self) -> Option<String> {
        match self {
            RunResult::Dbt(d) => d.failure_summary(),
        }
    }
}

/// A dbt run's nodes (models, tests, seeds, ...), in dbt's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DbtResult {
    /// dbt's whole run time in seconds, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_secs: Option<f64>,
    /// The nodes.
    pub nodes: Vec<DbtNode>,
}

/// One node of a dbt run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DbtNode {
    /// dbt's `unique_id`, like `model.shop.orders` or `test.shop.not_null_orders_id`.
    pub unique_id: String,
    /// dbt's status: `success`, `error`, `skipped` (models, seeds); `pass`, `fail`, `warn`,
    /// `error` (tests).
    pub status: String,
    /// Seconds the node took.
    pub execution_secs: f64,
    /// dbt's message (like `OK`, `INSERT 3`, or the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Rows affected, when the adapter reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<i64>,
    /// Failing rows of a test, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,
}

impl DbtNode {
    /// True when the node failed (`error` or `fail`).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "error" | "fail" | "runtime error")
    }
}

impl DbtResult {
    /// "dbt: model.shop.bad error: ...; test.shop.x fail" for the failed nodes, else `None`.
    pub fn failure_summary(&self) -> Option<String> {
        let failed: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.failed())
            .map(|n| match &n.message {
                Some(m) => format!("{} {}: {}", n.unique_id, n.status, one_line(m, 200)),
                None => format!("{} {}", n.unique_id, n.status),
            })
            .collect();
        if failed.is_empty() {
            None
        } else {
            Some(format!("dbt: {}", failed.join("; ")))
        }
    }
}

fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > max {
        let cut: String = joined.chars().take(max).collect();
        format!("{cut}...")
    } else {
        joined
    }
}

/// Why a `run_results.json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunResultError {
    /// The text is not dbt's `run_results.json` (not JSON, or no `results` list).
    #[error("not a dbt run_results.json: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct RawRunResults {
    results: Vec<RawNode>,
    #[serde(default)]
    elapsed_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawNode {
    unique_id: String,
    status: String,
    #[serde(default)]
    execution_time: Option<f64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    failures: Option<i64>,
    #[serde(default)]
    adapter_response: Option<serde_json::Value>,
}

/// Reads dbt's `run_results.json` (any dbt 1.x schema version): each node's `unique_id`,
/// status, execution time, message, failures and `adapter_response.rows_affected`.
pub fn parse_dbt_run_results(text: &str) -> Result<DbtResult, RunResultError> {
    let raw: RawRunResults =
        serde_json::from_str(text).map_err(|e| RunResultError::Malformed(e.to_string()))?;
    let nodes = raw
        .results
        .into_iter()
        .map(|n| DbtNode {
            unique_id: n.unique_id,
            status: n.status,
            execution_secs: n.execution_time.unwrap_or(0.0),
            message: n.message.filter(|m| !m.is_empty()),
            rows_affected: n
                .adapter_response
                .as_ref()
                .and_then(|a| a.get("rows_affected"))
                .and_then(serde_json::Value::as_i64),
            failures: n.failures,
        })
        .collect();
    Ok(DbtResult {
        elapsed_secs: raw.elapsed_time,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
      "results": [
        {"status": "success", "timing": [], "thread_id": "Thread-1", "execution_time": 0.25,
         "adapter_response": {"_message": "INSERT 3", "rows_affected": 3},
         "message": "INSERT 3", "failures": null, "unique_id": "seed.shop.raw_orders"},
        {"status": "error", "execution_time": 0.1, "adapter_response": {},
         "message": "Catalog Error: Table with name nope does not exist!\n  LINE 1",
         "failures": null, "unique_id": "model.shop.broken"},
        {"status": "fail", "execution_time": 0.05, "adapter_response": {},
         "message": "Got 2 results, configured to fail if != 0", "failures": 2,
         "unique_id": "test.shop.not_null_orders_id"},
        {"status": "skipped", "execution_time": 0, "message": null,
         "unique_id": "model.shop.downstream"}
      ],
      "elapsed_time": 1.5,
      "args": {}
    }"#;

    #[test]
    fn nodes_are_read_with_status_time_message_and_rows() {
        let r = parse_dbt_run_results(SAMPLE).unwrap();
        assert_eq!(r.elapsed_secs, Some(1.5));
        assert_eq!(r.nodes.len(), 4);
        assert_eq!(r.nodes[0].unique_id, "seed.shop.raw_orders");
        assert_eq!(r.nodes[0].rows_affected, Some(3));
        assert_eq!(r.nodes[0].execution_secs, 0.25);
        assert_eq!(r.nodes[0].message.as_deref(), Some("INSERT 3"));
        assert_eq!(r.nodes[2].failures, Some(2));
        assert_eq!(r.nodes[3].message, None);
        assert!(r.nodes[1].failed() && r.nodes[2].failed() && !r.nodes[3].failed());
    }

    #[test]
    fn the_failure_summary_names_every_failed_node() {
        let r = parse_dbt_run_results(SAMPLE).unwrap();
        let s = r.failure_summary().unwrap();
        assert!(
            s.starts_with("dbt: model.shop.broken error: Catalog Error"),
            "{s}"
        );
        assert!(s.contains("test.shop.not_null_orders_id fail"), "{s}");
        assert!(!s.contains("seed.shop.raw_orders"), "{s}");
        assert!(!s.contains('\n'), "{s}");
    }

    #[test]
    fn a_run_without_failures_has_no_summary_and_garbage_is_refused() {
        let ok = r#"{"results": [{"unique_id": "model.a.b", "status": "success"}]}"#;
        assert_eq!(parse_dbt_run_results(ok).unwrap().failure_summary(), None);
        assert!(matches!(
            parse_dbt_run_results("{\"nope\": 1}"),
            Err(RunResultError::Malformed(_))
        ));
    }
}
