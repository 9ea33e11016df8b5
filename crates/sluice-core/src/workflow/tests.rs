use std::collections::BTreeMap;

use super::*;
use crate::spec::{JobKind, Levels};

fn opts(levels: &Levels) -> ParseOptions<'_> {
    ParseOptions {
        priority: None,
        levels,
    }
}

const PIPELINE: &str = r#"
apiVersion: sluice.io/v1
kind: Workflow
metadata: {name: nightly, namespace: analytics}
spec:
  priority: high
  parameters: {table: events, days: 3}
  steps:
    - name: extract
      job:
        command: {argv: [extract, "--table={{ params.table }}", "{{logicalDate}}"], cpu: 500m, memory: 256m}
    - name: clean
      dependsOn: [extract]
      job:
        priority: normal
        retry: {maxAttempts: 2}
        command: {argv: [clean, "{{ params.days }}"], cpu: 500m, memory: 256m}
    - name: alert
      dependsOn: [clean]
      trigger: anyFailed
      job:
        name: page-someone
        command: {argv: [alert], cpu: 100m, memory: 64m}
"#;

fn argv(job: &StoredJob) -> Vec<String> {
    match &job.job.kind {
        JobKind::Command(spec) => spec.argv.iter().map(|t| t.to_string()).collect(),
        other => panic!("not a command job: {other:?}"),
    }
}

#[test]
fn a_workflow_parses_and_its_steps_render_with_parameters() {
    let levels = Levels::default();
    let wf = parse_workflow(PIPELINE, opts(&levels)).expect("valid");
    assert_eq!(
        (wf.namespace.as_str(), wf.name.as_str()),
        ("analytics", "nightly")
    );
    assert_eq!(wf.priority.as_deref(), Some("high"));
    assert_eq!(wf.parameters["days"], "3");
    assert_eq!(wf.steps[2].trigger, Trigger::AnyFailed);
    let mut over = BTreeMap::new();
    over.insert("table".to_string(), "clicks; rm -rf /".to_string());
    let params = wf.parameters_with(&over).expect("declared");
    // 2026-01-02T03:04:05Z
    let jobs = wf
        .render_all(&params, 1_767_323_045_000, Some("run-1"), opts(&levels))
        .expect("renders");
    // The value is one argument, as written: no shell reads it.
    assert_eq!(
        argv(&jobs[0]),
        [
            "extract",
            "--table=clicks; rm -rf /",
            "2026-01-02T03:04:05Z"
        ]
    );
    assert_eq!(argv(&jobs[1]), ["clean", "3"]);
    // Inherited level unless the step sets its own; the workflow's namespace; default names.
    let levels_of: Vec<&str> = jobs.iter().map(|j| j.job.level.as_str()).collect();
    assert_eq!(levels_of, ["high", "normal", "high"]);
    let job_names: Vec<&str> = jobs.iter().map(|j| j.job.name.as_str()).collect();
    assert_eq!(
        job_names,
        ["nightly-extract", "nightly-clean", "page-someone"]
    );
    assert!(jobs.iter().all(|j| j.job.namespace == "analytics"));
    assert_eq!(jobs[1].job.labels[STEP_LABEL], "clean");
    assert_eq!(jobs[1].job.labels[RUN_LABEL], "run-1");
    assert_eq!(jobs[1].job.labels[WORKFLOW_LABEL], "nightly");
    // The step's own retry block is its job's policy.
    assert_eq!(
        jobs[1].policy.retry.as_ref().map(|r| r.max_attempts),
        Some(2)
    );
    assert!(jobs[0].policy.retry.is_none());
    // The stored document parses back to the same job.
    let again = crate::document::parse_stored(&jobs[0].document, opts(&levels)).expect("again");
    assert_eq!(again.job, jobs[0].job);
    // It round-trips through JSON (as the store keeps it).
    let back: Workflow =
        serde_json::from_value(serde_json::to_value(&wf).expect("encodes")).expect("decodes");
    assert_eq!(back, wf);
}

fn refused(doc: &str) -> String {
    let levels = Levels::default();
    match parse_workflow(doc, opts(&levels)) {
        Ok(w) => panic!("accepted: {w:?}"),
        Err(e) => e.to_string(),
    }
}

fn with_steps(steps: &str) -> String {
    format!(
        "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {{name: w}}\nspec:\n  parameters: {{p: x}}\n  steps:\n{steps}"
    )
}

const CMD: &str = "{command: {argv: [\"true\"], cpu: 100m, memory: 64m}}";

#[test]
fn bad_workflows_are_refused_naming_the_field_and_value() {
    let cases: Vec<(String, &[&str])> = vec![
        (
            with_steps(&format!(
                "    - {{name: a, dependsOn: [c], job: {CMD}}}\n    - {{name: b, dependsOn: [a], job: {CMD}}}\n    - {{name: c, dependsOn: [b], job: {CMD}}}\n"
            )),
            &["spec.steps.dependsOn", "a -> c -> b -> a", "cycle"],
        ),
        (
            with_steps(&format!(
                "    - {{name: a, dependsOn: [nope], job: {CMD}}}\n"
            )),
            &["\"nope\"", "not a step"],
        ),
        (
            with_steps(&format!(
                "    - {{name: a, job: {CMD}}}\n    - {{name: a, job: {CMD}}}\n"
            )),
            &["spec.steps.name", "\"a\"", "more than one step"],
        ),
        (
            with_steps(&format!(
                "    - {{name: a, trigger: sometimes, job: {CMD}}}\n"
            )),
            &["spec.steps[0].trigger", "sometimes"],
        ),
        (
            with_steps(
                "    - {name: a, job: {command: {argv: [\"{{ params.missing }}\"], cpu: 1, memory: 64m}}}\n",
            ),
            &[
                "spec.steps[0].job.command.argv[0]",
                "missing",
                "declares: p",
            ],
        ),
        (
            with_steps(
                "    - {name: a, job: {command: {argv: [\"{{ env.HOME }}\"], cpu: 1, memory: 64m}}}\n",
            ),
            &["spec.steps[0].job.command.argv[0]", "env.HOME"],
        ),
        (
            with_steps("    - {name: a, job: {command: {argv: [x], cpu: lots, memory: 64m}}}\n"),
            &["spec.steps[0].job.command.cpu", "lots"],
        ),
        (
            with_steps(
                "    - {name: a, job: {namespace: other, command: {argv: [x], cpu: 1, memory: 64m}}}\n",
            ),
            &["spec.steps[0].job.namespace", "other"],
        ),
        (
            with_steps("    - {name: a, job: {comand: {argv: [x]}}}\n"),
            &["spec.steps[0].job.comand"],
        ),
        (
            "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {name: w}\nspec: {stepz: []}\n"
                .into(),
            &["spec.stepz"],
        ),
        (
            "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {name: w}\nspec: {steps: []}\n"
                .into(),
            &["spec.steps", "at least one step"],
        ),
        (
            "apiVersion: v9\nkind: Workflow\nmetadata: {name: w}\nspec: {steps: []}\n".into(),
            &["apiVersion", "v9"],
        ),
        (
            with_steps(&format!("    - {{name: a, job: {CMD}}}\n"))
                .replace("parameters: {p: x}", "priority: urgent"),
            &["spec.priority", "urgent"],
        ),
        (
            with_steps(&format!("    - {{name: a, job: {CMD}}}\n"))
                .replace("parameters: {p: x}", "schedule: {cron: \"99 * * * *\"}"),
            &["spec.schedule.cron", "99 * * * *"],
        ),
        (
            with_steps(&format!("    - {{name: a, job: {CMD}}}\n")).replace(
                "parameters: {p: x}",
                "schedule: {cron: \"@daily\", concurrencyPolicy: Replace}",
            ),
            &["spec.schedule.concurrencyPolicy", "Replace"],
        ),
    ];
    for (doc, wants) in cases {
        let msg = refused(&doc);
        for want in wants {
            assert!(msg.contains(want), "{msg:?} lacks {want:?} for\n{doc}");
        }
    }
}

#[test]
fn overrides_must_be_declared_parameters() {
    let levels = Levels::default();
    let wf = parse_workflow(PIPELINE, opts(&levels)).expect("valid");
    let mut over = BTreeMap::new();
    over.insert("tabel".to_string(), "x".to_string());
    let msg = wf
        .parameters_with(&over)
        .expect_err("undeclared")
        .to_string();
    assert!(
        msg.contains("parameters.tabel") && msg.contains("days, table"),
        "{msg}"
    );
}

#[test]
fn placeholders_substitute_exactly() {
    let mut p = BTreeMap::new();
    p.insert("a".to_string(), "1".to_string());
    let cases = [
        ("plain", Ok("plain")),
        ("{{params.a}}-{{ params.a }}", Ok("1-1")),
        ("at {{ logicalDate }}", Ok("at D")),
        ("{{ params.a", Err("without a closing")),
        ("{{ other }}", Err("only {{ params.NAME }}")),
    ];
    for (input, want) in cases {
        let got = substitute(input, "f", &p, "D");
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
            (g, w) => panic!("{input}: got {g:?}, want {w:?}"),
        }
    }
}

#[test]
fn the_example_pipeline_parses() {
    let levels = Levels::default();
    let text = include_str!("../../../../examples/workflows/nightly-pipeline.yaml");
    let wf = parse_workflow(text, opts(&levels)).expect("the example is valid");
    assert_eq!(wf.steps.len(), 6);
    assert!(wf.schedule.as_ref().is_some_and(|s| s.suspend));
    let jobs = wf
        .render_all(&wf.parameters, 0, None, opts(&levels))
        .expect("renders");
    assert!(matches!(jobs[1].job.kind, JobKind::Spark { .. }));
    assert_eq!(jobs[3].job.level, "high");
}

#[test]
fn the_shop_daily_pipeline_parses_with_its_real_kinds() {
    let levels = Levels::default();
    let text = include_str!("../../../../examples/workflows/shop-daily.yaml");
    let wf = parse_workflow(text, opts(&levels)).expect("the example is valid");
    let mut params = wf.parameters.clone();
    params.insert("day".into(), "2026-01-02".into());
    let jobs = wf
        .render_all(&params, 0, None, opts(&levels))
        .expect("renders");
    let kinds: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j.job.name.as_str(), j.job.kind.section()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("shop-daily-extract", "sparkSql"),
            ("shop-daily-report", "python"),
            ("shop-daily-model", "dbt"),
            ("shop-daily-publish", "python"),
        ]
    );
    match &jobs[2].job.kind {
        JobKind::Dbt(d) => {
            assert_eq!(d.vars["day"].as_str(), "2026-01-02");
            assert_eq!(
                d.project_dir.as_deref(),
                Some("/opt/sluice/examples/workflows/shop-daily/dbt")
            );
        }
        other => panic!("{other:?}"),
    }
    match &jobs[0].job.kind {
        JobKind::SparkSql(q) => assert!(
            q.sql
                .as_deref()
                .is_some_and(|s| s.contains("'/var/lib/sluice/warehouse/orders/day=2026-01-02'")),
            "{q:?}"
        ),
        other => panic!("{other:?}"),
    }
}
