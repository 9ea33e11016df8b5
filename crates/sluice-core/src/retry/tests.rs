use super::*;
use crate::document::parse_job;
use crate::spec::{Levels, ParseOptions};

fn policy(text: &str) -> Result<RetryPolicy, SpecError> {
    let spec: RetrySpec = serde_saphyr::from_str(text).unwrap();
    spec.resolve("retry")
}

#[test]
fn classification_table() {
    let rows: &[(&str, Option<i32>, &str, FailureClass)] = &[
        (
            "timeout: ran longer than maxRuntime (60 s); killed",
            None,
            "",
            FailureClass::Timeout,
        ),
        (
            "submission failed: job refused by the backend: bad",
            None,
            "",
            FailureClass::Submission,
        ),
        (
            "the stored spec no longer decodes; cannot submit",
            None,
            "",
            FailureClass::Submission,
        ),
        (
            "failed: exit code 137: killed by SIGKILL",
            Some(137),
            "",
            FailureClass::Oom,
        ),
        (
            "failed: exit code 1",
            Some(1),
            "",
            FailureClass::Application,
        ),
        (
            "failed: exit code 1",
            Some(1),
            "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
            FailureClass::Oom,
        ),
        ("failed: driver pod OOMKilled", None, "", FailureClass::Oom),
        (
            "failed: exit code 143: terminated by SIGTERM",
            Some(143),
            "",
            FailureClass::Watchdog,
        ),
        (
            "failed: killed by SIGTERM (signal 15)",
            None,
            "",
            FailureClass::Watchdog,
        ),
        (
            "lost: the process is gone",
            None,
            "",
            FailureClass::Watchdog,
        ),
        (
            "failed: exit code 2",
            Some(2),
            "",
            FailureClass::Application,
        ),
    ];
    for (message, exit_code, log, want) in rows {
        let got = classify(&FailureFacts {
            message,
            exit_code: *exit_code,
            log_tail: log,
        });
        assert_eq!(got, *want, "{message:?} {exit_code:?}");
    }
}

#[test]
fn class_names_round_trip() {
    for c in FailureClass::ALL {
        assert_eq!(c.as_str().parse::<FailureClass>(), Ok(c));
    }
    assert!("flaky".parse::<FailureClass>().is_err());
}

#[test]
fn defaults_and_validation() {
    let p = policy("{}").unwrap();
    assert_eq!(p.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(p.backoff_initial_ms, 10_000);
    assert_eq!(p.backoff_max_ms, 600_000);
    assert_eq!(p.retry_on, FailureClass::ALL.to_vec());
    let p = policy(
            "{maxAttempts: 4, backoff: {initial: 250ms, max: 2s, factor: 3}, jitter: 0, retryOn: [oom, application], oomMemoryFactor: 1.5, oomMemoryCap: 4g}",
        )
        .unwrap();
    assert_eq!(p.max_attempts, 4);
    assert_eq!(p.backoff_initial_ms, 250);
    assert_eq!(p.backoff_max_ms, 2000);
    assert_eq!(
        p.retry_on,
        vec![FailureClass::Application, FailureClass::Oom]
    );
    assert_eq!(p.oom_memory_factor, Some(1.5));
    assert_eq!(p.oom_memory_cap_mib, Some(4096));
    let bad: &[(&str, &str, &str)] = &[
        ("{maxAttempts: 0}", "retry.maxAttempts", "0"),
        ("{maxAttempts: 1000}", "retry.maxAttempts", "1000"),
        (
            "{backoff: {initial: soon}}",
            "retry.backoff.initial",
            "soon",
        ),
        (
            "{backoff: {initial: 10s, max: 1s}}",
            "retry.backoff.max",
            "1s",
        ),
        ("{backoff: {factor: 0.5}}", "retry.backoff.factor", "0.5"),
        ("{jitter: 2}", "retry.jitter", "2"),
        (
            "{retryOn: [application, flaky]}",
            "retry.retryOn[1]",
            "flaky",
        ),
        ("{oomMemoryFactor: 1}", "retry.oomMemoryFactor", "1"),
        ("{oomMemoryCap: 12qb}", "retry.oomMemoryCap", "12qb"),
    ];
    for (text, field, value) in bad {
        let e = policy(text).unwrap_err().to_string();
        assert!(e.contains(field) && e.contains(value), "{text}: {e}");
    }
}

#[test]
fn backoff_grows_caps_and_jitters_deterministically() {
    let mut p = policy("{backoff: {initial: 1s, max: 10s, factor: 2}, jitter: 0}").unwrap();
    let d: Vec<u64> = (1..=6).map(|n| backoff_delay_ms(&p, n, 7)).collect();
    assert_eq!(d, vec![1000, 2000, 4000, 8000, 10_000, 10_000]);
    p.jitter = 0.5;
    for n in 1..=6 {
        for seed in 0..200u64 {
            let base = [1000, 2000, 4000, 8000, 10_000, 10_000][n as usize - 1] as f64;
            let got = backoff_delay_ms(&p, n, jitter_seed("job", seed as u32));
            assert!(got as f64 >= base * 0.5 - 1.0, "{n} {seed} {got}");
            assert!(got <= 10_000, "cap holds after jitter: {got}");
            assert!(got as f64 <= base * 1.5 + 1.0);
            // Same inputs, same delay.
            assert_eq!(
                got,
                backoff_delay_ms(&p, n, jitter_seed("job", seed as u32))
            );
        }
    }
    // Different jobs get different delays (the spread is used).
    let spread: std::collections::BTreeSet<u64> = (0..50)
        .map(|i| backoff_delay_ms(&p, 1, jitter_seed(&format!("job-{i}"), 1)))
        .collect();
    assert!(spread.len() > 10, "{spread:?}");
}

#[test]
fn decisions() {
    let none = JobPolicy::default();
    assert!(matches!(
        decide(&none, FailureClass::Application, 1, 0),
        Decision::GiveUp { .. }
    ));
    let p = JobPolicy {
            retry: Some(policy("{maxAttempts: 3, retryOn: [application, oom], oomMemoryFactor: 2, oomMemoryCap: 1g, jitter: 0, backoff: {initial: 1s}}").unwrap()),
            max_queue_wait_secs: None,
        };
    assert_eq!(
        decide(&p, FailureClass::Application, 1, 0),
        Decision::Retry {
            next_attempt_in_round: 2,
            delay_ms: 1000,
            raise_memory: None
        }
    );
    assert_eq!(
        decide(&p, FailureClass::Oom, 2, 0),
        Decision::Retry {
            next_attempt_in_round: 3,
            delay_ms: 2000,
            raise_memory: Some((2.0, Some(1024)))
        }
    );
    match decide(&p, FailureClass::Application, 3, 0) {
        Decision::GiveUp { reason } => assert!(reason.contains("3 of 3"), "{reason}"),
        d => panic!("{d:?}"),
    }
    match decide(&p, FailureClass::Timeout, 1, 0) {
        Decision::GiveUp { reason } => {
            assert!(
                reason.contains("timeout failures are not retried"),
                "{reason}"
            )
        }
        d => panic!("{d:?}"),
    }
}

fn job(text: &str) -> Job {
    parse_job(
        text,
        ParseOptions {
            priority: None,
            levels: &Levels::default(),
        },
    )
    .unwrap()
}

#[test]
fn oom_raise_for_commands_respects_the_cap() {
    let j = job("name: a\ncommand: {argv: [x], memory: 100m}");
    let r = raise_memory(&j, 1.5, Some(128)).unwrap().unwrap();
    assert_eq!(r.demand.total().mem_mib, 128);
    assert!(r.change.contains("100 MiB -> 128 MiB"), "{}", r.change);
    // At the cap: nothing to raise.
    assert_eq!(raise_memory(&r.job, 1.5, Some(128)).unwrap(), None);
    // No cap: factor applies, default memory counted.
    let j = job("name: a\ncommand: {argv: [x]}");
    let r = raise_memory(&j, 2.0, None).unwrap().unwrap();
    assert_eq!(r.demand.total().mem_mib, 2048);
}

#[test]
fn oom_raise_for_spark_updates_spec_conf_and_application() {
    let j = job(
        "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata: {name: a}\nspec:\n  type: Scala\n  mainApplicationFile: a.jar\n  sparkConf: {spark.executor.memory: 1g}\n  driver: {memory: 512m}\n  executor: {instances: 2}\n",
    );
    let before = crate::sizing::job_demand(&j).unwrap();
    let r = raise_memory(&j, 2.0, Some(1536)).unwrap().unwrap();
    let JobKind::Spark {
        spec, application, ..
    } = &r.job.kind
    else {
        panic!()
    };
    assert_eq!(spec.driver.memory, Some(Text("1024m".into())));
    assert_eq!(spec.executor.memory, Some(Text("1536m".into())));
    assert_eq!(spec.conf("spark.executor.memory"), Some("1536m"));
    let app = application.as_ref().unwrap();
    assert_eq!(app["spec"]["driver"]["memory"], "1024m");
    assert_eq!(app["spec"]["executor"]["memory"], "1536m");
    assert_eq!(app["spec"]["sparkConf"]["spark.executor.memory"], "1536m");
    assert!(r.demand.total().mem_mib > before.total().mem_mib);
    assert!(
        r.change.contains("driver memory 512 MiB -> 1 GiB"),
        "{}",
        r.change
    );
}

#[test]
fn restart_policy_mapping() {
    let rp = |v: serde_json::Value| -> BTreeMap<String, serde_json::Value> {
        serde_json::from_value(v).unwrap()
    };
    assert_eq!(
        from_restart_policy(
            &rp(serde_json::json!({"type": "Never"})),
            "spec.restartPolicy"
        )
        .unwrap(),
        None
    );
    let p = from_restart_policy(
            &rp(serde_json::json!({"type": "OnFailure", "onFailureRetries": 3, "onFailureRetryInterval": 20})),
            "spec.restartPolicy",
        )
        .unwrap()
        .unwrap();
    assert_eq!(p.max_attempts, 4);
    assert_eq!(p.backoff_initial_ms, 20_000);
    assert!(!p.retry_on.contains(&FailureClass::Submission));
    let e = from_restart_policy(
        &rp(serde_json::json!({"type": "Sometimes"})),
        "spec.restartPolicy",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("spec.restartPolicy.type") && e.contains("Sometimes"),
        "{e}"
    );
}

#[test]
fn durations_in_ms() {
    assert_eq!(parse_duration_ms("f", "250ms"), Ok(250));
    assert_eq!(parse_duration_ms("f", "2s"), Ok(2000));
    assert_eq!(parse_duration_ms("f", "1m"), Ok(60_000));
    assert!(parse_duration_ms("f", "0ms").is_err());
    assert!(parse_duration_ms("f", "xms").is_err());
}
