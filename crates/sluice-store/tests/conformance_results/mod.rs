//! Conformance checks of run results (a dbt run's nodes): one per run, replaced when recorded
//! again, read back whole by attempt, kept apart per job, control characters included, and purged with their
//! job. Included by `conformance.rs`, whose `conformance!` macro runs each against SQLite and
//! PostgreSQL.

use std::sync::Arc;

use sluice_core::run_result::{DbtNode, DbtResult, RunResult};
use sluice_store::{JobSet, Store};

fn dbt(nodes: &[(&str, &str, Option<&str>, Option<i64>)]) -> RunResult {
    RunResult::Dbt(DbtResult {
        elapsed_secs: Some(1.25),
        nodes: nodes
            .iter()
            .map(|(id, status, message, rows)| DbtNode {
                unique_id: id.to_string(),
                status: status.to_string(),
                execution_secs: 0.5,
                message: message.map(str::to_string),
                rows_affected: *rows,
                failures: None,
            })
            .collect(),
    })
}

pub async fn run_results_round_trip_and_go_with_their_job(store: Arc<dyn Store>) {
    store
        .insert_job(&crate::job("r1", "etl", "normal", 100))
        .await
        .unwrap();
    store
        .insert_job(&crate::job("r2", "etl", "normal", 200))
        .await
        .unwrap();
    assert!(store.run_results("r1").await.unwrap().is_empty());
    let failed = dbt(&[
        ("seed.shop.raw", "success", Some("INSERT 3"), Some(3)),
        (
            "model.shop.bad",
            "error",
            Some("Catalog Error: no\ttable"),
            None,
        ),
    ]);
    let ok = dbt(&[("model.shop.orders", "success", Some("OK"), Some(2))]);
    store.put_run_result("r1", 2, 2_000, &ok).await.unwrap();
    store.put_run_result("r1", 1, 1_000, &failed).await.unwrap();
    store.put_run_result("r2", 1, 1_500, &ok).await.unwrap();
    assert_eq!(
        store.run_results("r1").await.unwrap(),
        vec![(1, failed.clone()), (2, ok.clone())],
        "by attempt, whole"
    );
    // Recording a run again replaces its result.
    let again = dbt(&[("model.shop.orders", "success", Some("OK again"), Some(5))]);
    store.put_run_result("r1", 2, 3_000, &again).await.unwrap();
    assert_eq!(
        store.run_results("r1").await.unwrap(),
        vec![(1, failed), (2, again)]
    );
    // A control character in a tool's message (JSON escapes it) is stored and read back.
    let nul = dbt(&[("model.shop.x", "error", Some("bad\u{0}byte"), None)]);
    store.put_run_result("r2", 2, 2_500, &nul).await.unwrap();
    let got = store.run_results("r2").await.unwrap();
    let RunResult::Dbt(d) = &got[1].1;
    assert_eq!(d.nodes[0].message.as_deref(), Some("bad\u{0}byte"));
    // Purging a job drops its results, not another's.
    store.expire_queued("r1", 5_000, "expired").await.unwrap();
    let gone = store
        .delete_jobs(JobSet::DeadLetters, &["r1".to_string()])
        .await
        .unwrap();
    assert_eq!(gone, ["r1"]);
    assert!(store.run_results("r1").await.unwrap().is_empty());
    assert_eq!(store.run_results("r2").await.unwrap().len(), 2);
}
