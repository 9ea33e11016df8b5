//! Conformance checks of workflows: definitions applied idempotently by namespace and name,
//! runs and their steps (step -> job), the compare-and-set of a run's writes with the step's job
//! inserted in the same transaction, scheduled fires, and runs kept when their jobs are purged.
//! Included by `conformance.rs`, whose `conformance!` macro runs each against SQLite and
//! PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sluice_core::job::JobState;
use sluice_core::workflow::{RunState, StepPhase};
use sluice_store::{
    JobSet, NewStep, NewWorkflow, NewWorkflowRun, RunFilter, RunUpdate, StepChange, Store,
    StoreError, WorkflowAdvance, WorkflowApplied, WorkflowFire,
};

fn wf(ns: &str, name: &str, source: &str, cron: Option<&str>, next: Option<i64>) -> NewWorkflow {
    NewWorkflow {
        namespace: ns.into(),
        name: name.into(),
        definition: json!({"namespace": ns, "name": name, "steps": [], "source": source}),
        source: source.into(),
        cron: cron.map(str::to_string),
        time_zone: cron.map(|_| "UTC".to_string()),
        suspended: false,
        next_fire_at_ms: next,
        at_ms: 1_000,
    }
}

fn run(id: &str, ns: &str, name: &str, at: i64) -> NewWorkflowRun {
    let mut parameters = BTreeMap::new();
    parameters.insert("table".to_string(), "events".to_string());
    NewWorkflowRun {
        id: id.into(),
        namespace: ns.into(),
        workflow: name.into(),
        parameters,
        logical_date_ms: at,
        trigger: "user".into(),
        definition: json!({"v": 1}),
        steps: ["extract", "load"]
            .iter()
            .map(|s| NewStep {
                name: s.to_string(),
                template: json!({"step": s}),
            })
            .collect(),
        created_at_ms: at,
    }
}

fn start(id: &str, ns: &str, name: &str, at: i64) -> WorkflowFire {
    WorkflowFire {
        namespace: ns.into(),
        name: name.into(),
        at_ms: at,
        advance: None,
        run: Some(run(id, ns, name, at)),
        message: format!("started run {id}"),
    }
}

pub async fn workflows_apply_idempotently(store: Arc<dyn Store>) {
    let (a, rec) = store
        .apply_workflow(&wf("ns", "etl", "v1", Some("@daily"), Some(86_400_000)))
        .await
        .unwrap();
    assert_eq!(a, WorkflowApplied::Created);
    assert_eq!(rec.created_at_ms, 1_000);
    assert_eq!(rec.next_fire_at_ms, Some(86_400_000));
    // The same document: nothing written.
    let mut again = wf("ns", "etl", "v1", Some("@daily"), Some(99));
    again.at_ms = 2_000;
    let (a, rec2) = store.apply_workflow(&again).await.unwrap();
    assert_eq!((a, rec2.updated_at_ms), (WorkflowApplied::Unchanged, 1_000));
    // A new document with the same schedule keeps the next fire time.
    let mut v2 = wf("ns", "etl", "v2", Some("@daily"), Some(99));
    v2.at_ms = 3_000;
    let (a, rec3) = store.apply_workflow(&v2).await.unwrap();
    assert_eq!(a, WorkflowApplied::Configured);
    assert_eq!(
        (rec3.source.as_str(), rec3.created_at_ms, rec3.updated_at_ms),
        ("v2", 1_000, 3_000)
    );
    assert_eq!(rec3.next_fire_at_ms, Some(86_400_000));
    // A changed schedule takes the new one.
    let (_, rec4) = store
        .apply_workflow(&wf("ns", "etl", "v3", Some("@hourly"), Some(3_600_000)))
        .await
        .unwrap();
    assert_eq!(rec4.next_fire_at_ms, Some(3_600_000));
    store
        .apply_workflow(&wf("other", "etl", "v1", None, None))
        .await
        .unwrap();
    let all: Vec<(String, String)> = store
        .list_workflows(None)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.namespace, w.name))
        .collect();
    assert_eq!(
        all,
        [("ns".into(), "etl".into()), ("other".into(), "etl".into())]
    );
    assert_eq!(store.list_workflows(Some("other")).await.unwrap().len(), 1);
    assert!(store.get_workflow("ns", "nope").await.unwrap().is_none());
    let due = store.due_workflows(3_600_000).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(store.due_workflows(3_599_999).await.unwrap().is_empty());
}

pub async fn workflow_runs_and_steps(store: Arc<dyn Store>) {
    store
        .apply_workflow(&wf("ns", "etl", "v1", None, None))
        .await
        .unwrap();
    // No such workflow.
    match store.fire_workflow(&start("r0", "ns", "nope", 10)).await {
        Err(StoreError::NoWorkflow { name, .. }) => assert_eq!(name, "nope"),
        other => panic!("{other:?}"),
    }
    let r = store
        .fire_workflow(&start("r1", "ns", "etl", 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.state, r.attempt, r.version), (RunState::Running, 1, 1));
    assert_eq!(r.parameters["table"], "events");
    let phases: Vec<(String, StepPhase)> =
        r.steps.iter().map(|s| (s.name.clone(), s.phase)).collect();
    assert_eq!(
        phases,
        [
            ("extract".into(), StepPhase::Waiting),
            ("load".into(), StepPhase::Waiting)
        ]
    );
    assert_eq!(r.steps[0].template, json!({"step": "extract"}));
    let w = store.get_workflow("ns", "etl").await.unwrap().unwrap();
    assert_eq!(w.last_run_id.as_deref(), Some("r1"));
    // Start a step: its job is inserted with the link, in one write.
    let j = crate::job("job-1", "ns", "normal", 20);
    let (after, jobs) = store
        .update_workflow_run(&RunUpdate {
            id: "r1".into(),
            expected_version: 1,
            at_ms: 20,
            steps: vec![StepChange {
                step: "extract".into(),
                phase: StepPhase::Started,
                job: Some(j.clone()),
                message: None,
                reset: false,
            }],
            state: None,
            cancel_requested: None,
            rerun: false,
            message: None,
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Queued);
    assert_eq!(after.version, 2);
    assert_eq!(after.steps[0].job_id.as_deref(), Some("job-1"));
    assert_eq!(after.steps[0].phase, StepPhase::Started);
    assert!(store.get_job("job-1").await.unwrap().is_some());
    // A stale version writes nothing, not even the job.
    let stale = RunUpdate {
        id: "r1".into(),
        expected_version: 1,
        at_ms: 30,
        steps: vec![StepChange {
            step: "load".into(),
            phase: StepPhase::Started,
            job: Some(crate::job("job-2", "ns", "normal", 30)),
            message: None,
            reset: false,
        }],
        state: Some(RunState::Failed),
        cancel_requested: None,
        rerun: false,
        message: None,
    };
    assert!(matches!(
        store.update_workflow_run(&stale).await,
        Err(StoreError::Stale(_))
    ));
    assert!(store.get_job("job-2").await.unwrap().is_none());
    // Skip, finish; then rerun: the step's job moves to its previous jobs.
    let (done, _) = store
        .update_workflow_run(&RunUpdate {
            id: "r1".into(),
            expected_version: 2,
            at_ms: 40,
            steps: vec![StepChange {
                step: "load".into(),
                phase: StepPhase::Skipped,
                job: None,
                message: Some("upstream step extract failed".into()),
                reset: false,
            }],
            state: Some(RunState::Failed),
            cancel_requested: None,
            rerun: false,
            message: Some("step extract failed".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.finished_at_ms),
        (RunState::Failed, Some(40))
    );
    assert_eq!(
        done.steps[1].message.as_deref(),
        Some("upstream step extract failed")
    );
    let (rerun, _) = store
        .update_workflow_run(&RunUpdate {
            id: "r1".into(),
            expected_version: 3,
            at_ms: 50,
            steps: vec![StepChange {
                step: "extract".into(),
                phase: StepPhase::Waiting,
                job: None,
                message: None,
                reset: true,
            }],
            state: Some(RunState::Running),
            cancel_requested: Some(false),
            rerun: true,
            message: Some("rerun".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (rerun.state, rerun.attempt, rerun.finished_at_ms),
        (RunState::Running, 2, None)
    );
    assert_eq!(rerun.steps[0].job_id, None);
    assert_eq!(rerun.steps[0].previous_jobs, ["job-1"]);
    // Lists: newest first, by state, workflow and namespaces.
    store
        .fire_workflow(&start("r2", "ns", "etl", 60))
        .await
        .unwrap();
    let ids = |v: Vec<sluice_store::WorkflowRunRecord>| -> Vec<String> {
        v.into_iter().map(|r| r.id).collect()
    };
    let all = store
        .list_workflow_runs(&RunFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(all[0].steps.len(), 2);
    assert_eq!(ids(all), ["r2", "r1"]);
    let f = RunFilter {
        namespace_in: Some(vec![]),
        ..RunFilter::default()
    };
    assert!(store.list_workflow_runs(&f, 10).await.unwrap().is_empty());
    let f = RunFilter {
        states: vec![RunState::Failed],
        ..RunFilter::default()
    };
    assert!(store.list_workflow_runs(&f, 10).await.unwrap().is_empty());
    let f = RunFilter {
        workflow: Some("etl".into()),
        namespace: Some("ns".into()),
        states: vec![RunState::Running],
        ..RunFilter::default()
    };
    assert_eq!(ids(store.list_workflow_runs(&f, 1).await.unwrap()), ["r2"]);
    // A purge of the step's job keeps the run (history).
    store
        .delete_jobs(JobSet::Queued, &["job-1".to_string()])
        .await
        .unwrap();
    let kept = store.get_workflow_run("r1").await.unwrap().unwrap();
    assert_eq!(kept.steps[0].previous_jobs, ["job-1"]);
    assert!(store.get_workflow_run("nope").await.unwrap().is_none());
    match store
        .update_workflow_run(&RunUpdate {
            id: "nope".into(),
            expected_version: 1,
            at_ms: 1,
            steps: vec![],
            state: None,
            cancel_requested: None,
            rerun: false,
            message: None,
        })
        .await
    {
        Err(StoreError::NoWorkflowRun(id)) => assert_eq!(id, "nope"),
        other => panic!("{other:?}"),
    }
}

pub async fn workflow_fire_compare_and_set(store: Arc<dyn Store>) {
    store
        .apply_workflow(&wf("ns", "etl", "v1", Some("@every 10s"), Some(10_000)))
        .await
        .unwrap();
    let fire = |expected: i64, id: Option<&str>| WorkflowFire {
        namespace: "ns".into(),
        name: "etl".into(),
        at_ms: expected,
        advance: Some(WorkflowAdvance {
            expected_next_fire_at_ms: expected,
            next_fire_at_ms: Some(expected + 10_000),
        }),
        run: id.map(|i| {
            let mut r = run(i, "ns", "etl", expected);
            r.trigger = "schedule".into();
            r
        }),
        message: "fired".into(),
    };
    let r = store
        .fire_workflow(&fire(10_000, Some("s1")))
        .await
        .unwrap();
    assert_eq!(r.map(|r| r.trigger), Some("schedule".to_string()));
    // The same fire again lost its compare-and-set: no second run.
    assert!(matches!(
        store.fire_workflow(&fire(10_000, Some("s2"))).await,
        Err(StoreError::Stale(_))
    ));
    assert!(store.get_workflow_run("s2").await.unwrap().is_none());
    // A fire without a run only moves the time.
    assert_eq!(
        store.fire_workflow(&fire(20_000, None)).await.unwrap(),
        None
    );
    let w = store.get_workflow("ns", "etl").await.unwrap().unwrap();
    assert_eq!(w.next_fire_at_ms, Some(30_000));
    assert_eq!(w.last_run_id.as_deref(), Some("s1"));
    assert_eq!(w.last_message.as_deref(), Some("fired"));
}
