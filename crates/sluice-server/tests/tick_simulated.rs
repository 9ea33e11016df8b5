//! The tick table-tested on the simulated backend with a driven clock: no process is spawned.
//!
//! Each case is a cluster (groups of identical nodes), a namespace policy, and a list of steps:
//! jobs submitted through the real router (`app(state)` with `oneshot`), and ticks after moving
//! the clock, each with the jobs it must admit (`want_admitted`, by name, in order) and the jobs
//! that must be left in their queues (`want_left`, by name in queue order, with the kind of
//! their wait reason). The state and the simulated backend share one [`ManualClock`].
//!
//! Admission order across ticks is observed by sizing the cluster so that each tick has room for
//! the jobs named, and no more; within one tick the names are compared in submission order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use common::app;
use common::call;
use serde_json::Value;
use sluice_backend::clock::ManualClock;
use sluice_backend::simulated::{NodeGroup, SimulatedBackend, SimulatedConfig};
use sluice_core::cycle::HeadPolicy;
use sluice_core::spec::Text;
use sluice_server::AppState;
use sluice_server::config::{Config, NamespaceConfig};
use sluice_server::tick::tick;

const T0: i64 = 1_800_000_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

/// One step of a case.
enum Step {
    /// Submit a command job: name, cpu, and extra YAML lines (priority, labels, retry, ...).
    Submit(&'static str, &'static str, &'static str),
    /// Move the clock forward, tick once, and compare.
    Tick {
        advance_ms: i64,
        /// Jobs moved out of their queue by this tick (admitted), in submission order.
        want_admitted: &'static [&'static str],
        /// Jobs still in a queue and considered by the cycle, in queue order, with the kind of
        /// their wait reason ("no-room", "blocked").
        want_left: &'static [(&'static str, &'static str)],
    },
    /// A job's state and, if given, a piece of its message and its failure class.
    Expect {
        name: &'static str,
        state: &'static str,
        message: Option<&'static str>,
        failure_class: Option<&'static str>,
        dead_lettered: bool,
    },
    /// The value of one series of `GET /metrics`.
    Metric(&'static str, f64),
    /// A piece of a waiting job's wait reason, as `describe` shows it.
    Reason(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    /// (count, cpu) of one group of nodes with 8g each.
    nodes: &'static [(u32, &'static str)],
    policy: HeadPolicy,
    /// `[scheduler.aging_ms] normal = ...`, if set.
    normal_ages_after_ms: Option<u64>,
    steps: Vec<Step>,
}

struct Env {
    state: AppState,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn env(case: &Case) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..common::commands_allowed()
    };
    config.namespaces.insert(
        "t".into(),
        NamespaceConfig {
            policy: Some(case.policy),
            ..NamespaceConfig::default()
        },
    );
    if let Some(ms) = case.normal_ages_after_ms {
        config.scheduler.aging_ms.insert("normal".into(), ms);
    }
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let clock = ManualClock::new(T0);
    let sim = SimulatedConfig {
        nodes: case
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (count, cpu))| NodeGroup {
                prefix: format!("g{i}"),
                count: *count,
                cpu: Text((*cpu).into()),
                memory: Text("8g".into()),
                pods: None,
            })
            .collect(),
        ..SimulatedConfig::default()
    };
    let backend = SimulatedBackend::new(&sim, Arc::new(clock.clone())).unwrap();
    let state = AppState::with_clock(store, Arc::new(backend), config, Arc::new(clock.clone()));
    common::bootstrap(&state).await;
    Env {
        state,
        clock,
        _dir: dir,
    }
}

fn job_yaml(name: &str, cpu: &str, extra: &str) -> String {
    format!(
        "name: {name}\nnamespace: t\n{extra}command:\n  argv: [\"true\"]\n  cpu: \"{cpu}\"\n  memory: 64m\n"
    )
}

/// Admissions of a job so far: the "admitted" events of its timeline.
fn admissions(v: &Value) -> usize {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["to"] == "admitted")
        .count()
}

async fn run(case: Case) {
    let e = env(&case).await;
    let r = app(e.state.clone());
    // name -> id, in submission order.
    let mut ids: Vec<(&str, String)> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, step) in case.steps.iter().enumerate() {
        let at = format!("case {:?}, step {i}", case.name);
        match step {
            Step::Submit(name, cpu, extra) => {
                let (st, v) = call(&r, "POST", "/v1/jobs", &job_yaml(name, cpu, extra)).await;
                assert_eq!(st, StatusCode::CREATED, "{at}: {v}");
                ids.push((name, v["id"].as_str().unwrap().to_string()));
            }
            Step::Tick {
                advance_ms,
                want_admitted,
                want_left,
            } => {
                e.clock.advance(*advance_ms);
                tick(&e.state).await.unwrap();
                let mut admitted = Vec::new();
                let mut left = Vec::new();
                for (name, id) in &ids {
                    let (st, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
                    assert_eq!(st, StatusCode::OK, "{at}: {v}");
                    let n = admissions(&v);
                    if n > seen.get(id).copied().unwrap_or(0) {
                        admitted.push(*name);
                    }
                    seen.insert(id.clone(), n);
                    if v["state"] == "queued" && !v["wait"].is_null() {
                        let pos = v["wait"]["position"].as_u64().unwrap();
                        let kind = v["wait"]["reason_kind"].as_str().unwrap().to_string();
                        let reason = v["wait"]["reason"].as_str().unwrap().to_string();
                        assert!(!reason.is_empty(), "{at}: {v}");
                        left.push((pos, *name, kind, reason, id.clone()));
                    }
                }
                left.sort();
                // A job blocked under strict FIFO names the head it waits behind.
                for (_, name, kind, reason, _) in &left {
                    if kind == "blocked" {
                        let head = &left[0].4;
                        assert!(
                            reason.contains(&format!("behind job {head}")),
                            "{at}: {name} waits {reason:?}, not behind the head {head}"
                        );
                    }
                }
                let left: Vec<(&str, &str)> = left
                    .iter()
                    .map(|(_, n, k, _, _)| (*n, k.as_str()))
                    .collect();
                assert_eq!(&admitted, want_admitted, "{at}: admitted");
                assert_eq!(&left, want_left, "{at}: left in the queues");
            }
            Step::Expect {
                name,
                state,
                message,
                failure_class,
                dead_lettered,
            } => {
                let id = &ids.iter().find(|(n, _)| n == name).unwrap().1;
                let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
                assert_eq!(v["state"], *state, "{at}: {v}");
                if let Some(m) = message {
                    let got = v["message"].as_str().unwrap_or_default();
                    assert!(got.contains(m), "{at}: message {got:?} lacks {m:?}: {v}");
                }
                let orch = &v["orchestration"];
                if let Some(c) = failure_class {
                    assert_eq!(orch["failure_class"], *c, "{at}: {v}");
                }
                assert_eq!(
                    orch["dead_lettered_at"].is_string(),
                    *dead_lettered,
                    "{at}: dead-lettered? {v}"
                );
                let (_, dlq) = call(&r, "GET", "/v1/dlq", "").await;
                let listed = dlq.to_string().contains(id.as_str());
                assert_eq!(listed, *dead_lettered, "{at}: in GET /v1/dlq? {dlq}");
            }
            Step::Reason(name, want) => {
                let id = &ids.iter().find(|(n, _)| n == name).unwrap().1;
                let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
                let got = v["wait"]["reason"].as_str().unwrap_or_default();
                assert!(
                    got.contains(want),
                    "{at}: reason {got:?} lacks {want:?}: {v}"
                );
            }
            Step::Metric(series, want) => {
                let text = e.state.metrics.encode(None).unwrap();
                let got = text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
                    l.strip_prefix(series)?
                        .strip_prefix(' ')?
                        .parse::<f64>()
                        .ok()
                });
                assert_eq!(got, Some(*want), "{at}: {series} in\n{text}");
            }
        }
    }
}

fn tick_(
    advance_ms: i64,
    want_admitted: &'static [&'static str],
    want_left: &'static [(&'static str, &'static str)],
) -> Step {
    Step::Tick {
        advance_ms,
        want_admitted,
        want_left,
    }
}

fn expect(name: &'static str, state: &'static str) -> Step {
    Step::Expect {
        name,
        state,
        message: None,
        failure_class: None,
        dead_lettered: false,
    }
}

const HIGH_1M: &str = "priority: high\nlabels: {sluice.io/sim-duration: 1m}\n";
const NORMAL_1M: &str = "labels: {sluice.io/sim-duration: 1m}\n";
const RUN_10M: &str = "labels: {sluice.io/sim-duration: 10m}\n";
const FAIL_RETRY: &str = "labels: {sluice.io/sim-outcome: fail, sluice.io/sim-duration: 1m}\n\
retry: {maxAttempts: 2, jitter: 0, backoff: {initial: 10s}}\n";
const OOM: &str = "labels: {sluice.io/sim-outcome: oom, sluice.io/sim-duration: 1m}\n";
const DEADLOCK: &str = "labels: {sluice.io/sim-outcome: deadlock, sluice.io/sim-duration: 5m}\n";
const TIMEOUT: &str = "maxRuntime: 1m\nlabels: {sluice.io/sim-duration: 10m}\n";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "high before normal, FIFO within a level",
            // Room for one 1-cpu job at a time: each tick admits exactly the next one.
            nodes: &[(1, "1")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("n1", "1", NORMAL_1M),
                Step::Submit("h1", "1", HIGH_1M),
                Step::Submit("n2", "1", NORMAL_1M),
                Step::Submit("h2", "1", HIGH_1M),
                // Strict: the head of the namespace waits for room, the rest behind it.
                tick_(
                    0,
                    &["h1"],
                    &[("h2", "no-room"), ("n1", "blocked"), ("n2", "blocked")],
                ),
                // Still running: nothing moves.
                tick_(
                    30 * SEC,
                    &[],
                    &[("h2", "no-room"), ("n1", "blocked"), ("n2", "blocked")],
                ),
                tick_(30 * SEC, &["h2"], &[("n1", "no-room"), ("n2", "blocked")]),
                tick_(MIN, &["n1"], &[("n2", "no-room")]),
                tick_(MIN, &["n2"], &[]),
                tick_(MIN, &[], &[]),
                expect("h1", "succeeded"),
                expect("n2", "succeeded"),
            ],
        },
        Case {
            name: "a job that fits no node's free room waits; best-effort admits a smaller one behind it",
            // Two 2-cpu nodes. r1 (1.5) takes g0-0, r2 (1) does not fit the 0.5 left there and
            // takes g0-1: 1.5 cpu free in all, but at most 1 on one node.
            nodes: &[(2, "2")],
            policy: HeadPolicy::BestEffort,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("r1", "1.5", RUN_10M),
                Step::Submit("r2", "1", RUN_10M),
                tick_(0, &["r1", "r2"], &[]),
                Step::Submit("big", "1.2", NORMAL_1M),
                Step::Submit("small", "0.5", NORMAL_1M),
                tick_(SEC, &["small"], &[("big", "no-room")]),
                // When r1 and r2 end, the big one runs.
                tick_(10 * MIN, &["big"], &[]),
            ],
        },
        Case {
            name: "the same under strict: the smaller one is blocked behind the head",
            nodes: &[(2, "2")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("r1", "1.5", RUN_10M),
                Step::Submit("r2", "1", RUN_10M),
                tick_(0, &["r1", "r2"], &[]),
                Step::Submit("big", "1.2", NORMAL_1M),
                Step::Submit("small", "0.5", NORMAL_1M),
                tick_(SEC, &[], &[("big", "no-room"), ("small", "blocked")]),
                tick_(10 * MIN, &["big", "small"], &[]),
            ],
        },
        Case {
            name: "a failed run is retried after its backoff, then dead-lettered; oom is classified",
            nodes: &[(1, "4")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("flaky", "1", FAIL_RETRY),
                Step::Submit("hog", "1", OOM),
                tick_(0, &["flaky", "hog"], &[]),
                // Both end after a minute: flaky waits its 10 s backoff, hog has no retry.
                tick_(MIN, &[], &[]),
                expect("flaky", "queued"),
                Step::Expect {
                    name: "hog",
                    state: "failed",
                    message: Some("137"),
                    failure_class: Some("oom"),
                    dead_lettered: true,
                },
                // Not before the backoff.
                tick_(9 * SEC, &[], &[]),
                expect("flaky", "queued"),
                tick_(SEC, &["flaky"], &[]),
                // The second attempt fails too: no attempt left.
                tick_(MIN, &[], &[]),
                Step::Expect {
                    name: "flaky",
                    state: "failed",
                    message: Some("exit code 1"),
                    failure_class: Some("application"),
                    dead_lettered: true,
                },
                tick_(10 * MIN, &[], &[]),
            ],
        },
        Case {
            name: "a run longer than maxRuntime fails with timeout",
            nodes: &[(1, "4")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("slow", "1", TIMEOUT),
                tick_(0, &["slow"], &[]),
                // The reconcile sees it running (started now).
                tick_(SEC, &[], &[]),
                expect("slow", "running"),
                tick_(MIN, &[], &[]),
                expect("slow", "running"),
                tick_(SEC, &[], &[]),
                Step::Expect {
                    name: "slow",
                    state: "failed",
                    message: Some("timeout"),
                    failure_class: Some("timeout"),
                    dead_lettered: true,
                },
            ],
        },
        Case {
            name: "a half-started run is killed by the deadlock watchdog and requeued; its next attempt runs",
            nodes: &[(1, "4")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit("stuck", "1", DEADLOCK),
                Step::Submit("after", "1", NORMAL_1M),
                tick_(0, &["stuck", "after"], &[]),
                tick_(SEC, &[], &[]),
                expect("stuck", "running"),
                Step::Metric(
                    r#"sluice_watchdog_requeues_total{namespace="t",level="normal"}"#,
                    0.0,
                ),
                // The watchdog fires at 5 m: back to its queue as the next attempt, and admitted
                // again in the same tick (its room is free), not failed, not dead-lettered.
                tick_(5 * MIN, &["stuck"], &[]),
                expect("stuck", "submitted"),
                Step::Metric(
                    r#"sluice_watchdog_requeues_total{namespace="t",level="normal"}"#,
                    1.0,
                ),
                tick_(SEC, &[], &[]),
                expect("stuck", "running"),
                tick_(5 * MIN, &[], &[]),
                expect("stuck", "succeeded"),
                expect("after", "succeeded"),
            ],
        },
        Case {
            name: "backfill: a job whose maxRuntime ends before the head's reserved start passes; \
                   one expected to outlast it waits",
            nodes: &[(1, "2")],
            policy: HeadPolicy::Backfill,
            normal_ages_after_ms: None,
            steps: vec![
                Step::Submit(
                    "r1",
                    "1.5",
                    "maxRuntime: 10m\nlabels: {sluice.io/sim-duration: 10m}\n",
                ),
                tick_(0, &["r1"], &[]),
                // big fits when r1 ends (its maxRuntime): reserved in ~10m, 0.2 cpu beside it.
                Step::Submit("big", "1.8", NORMAL_1M),
                Step::Submit(
                    "small",
                    "0.2",
                    "maxRuntime: 2m\nlabels: {sluice.io/sim-duration: 1m}\n",
                ),
                // No maxRuntime: expected to run scheduler.default_runtime_ms (1h).
                Step::Submit("long", "0.3", NORMAL_1M),
                tick_(SEC, &["small"], &[("big", "no-room"), ("long", "reserved")]),
                Step::Reason("big", "reserved to start in 10m (backfill)"),
                Step::Reason("long", "would delay job"),
                tick_(10 * MIN, &["big"], &[("long", "no-room")]),
                tick_(MIN, &["long"], &[]),
            ],
        },
        Case {
            name: "aging: a normal job that waited its bound goes before a younger high job",
            nodes: &[(1, "1")],
            policy: HeadPolicy::Strict,
            normal_ages_after_ms: Some(2 * MIN as u64),
            steps: vec![
                Step::Submit("r", "1", RUN_10M),
                tick_(0, &["r"], &[]),
                Step::Submit("n1", "1", NORMAL_1M),
                tick_(MIN, &[], &[("n1", "no-room")]),
                Step::Submit("h1", "1", HIGH_1M),
                tick_(SEC, &[], &[("h1", "no-room"), ("n1", "blocked")]),
                tick_(2 * MIN, &[], &[("n1", "no-room"), ("h1", "blocked")]),
                Step::Reason("n1", "aged to high after 2m"),
                tick_(7 * MIN, &["n1"], &[("h1", "no-room")]),
            ],
        },
    ]
}

#[tokio::test]
async fn the_tick_on_a_simulated_cluster() {
    for case in cases() {
        run(case).await;
    }
}

/// A strict queue behind a head that cannot fit is handed to the cycle only up to that head
/// (`sluice_core::cycle::strict_cut`): the cycle's view holds the head alone, and every job
/// behind it still says, in the list and in `describe`, whom it waits behind and where it is.
#[tokio::test]
async fn a_strict_queue_is_cut_at_a_head_that_cannot_fit() {
    let case = Case {
        name: "cut",
        nodes: &[(1, "4")],
        policy: HeadPolicy::Strict,
        normal_ages_after_ms: None,
        steps: Vec::new(),
    };
    let e = env(&case).await;
    let r = app(e.state.clone());
    let submit = |name: &'static str, cpu: &'static str, extra: &'static str| {
        let r = r.clone();
        async move {
            let (st, v) = call(&r, "POST", "/v1/jobs", &job_yaml(name, cpu, extra)).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            v["id"].as_str().unwrap().to_string()
        }
    };
    let _filler = submit("filler", "3", "priority: high\n").await;
    tick(&e.state).await.unwrap();
    let head = submit("head", "4", "").await;
    let mut behind = Vec::new();
    for name in ["s1", "s2", "s3", "s4", "s5"] {
        behind.push(submit(name, "500m", "").await);
    }
    let urgent = submit("urgent", "4", "priority: high\n").await;
    e.clock.advance(SEC);
    tick(&e.state).await.unwrap();
    {
        let view = e.state.view.read().await;
        let seen: Vec<&String> = view.waiting.keys().collect();
        assert_eq!(
            seen,
            vec![&urgent],
            "the cycle saw only the first job that cannot fit"
        );
        assert!(view.behind.contains_key("t"));
    }
    // The list: every job behind, with its reason and position (the urgent job first).
    let (st, v) = call(&r, "GET", "/v1/jobs?namespace=t&state=queued&limit=100", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 7, "{v}");
    for j in jobs {
        let id = j["id"].as_str().unwrap();
        let wait = &j["wait"];
        if id == urgent {
            assert_eq!(wait["reason_kind"], "no-room", "{j}");
            assert_eq!(wait["position"], 1, "{j}");
            continue;
        }
        assert_eq!(wait["reason_kind"], "blocked", "{j}");
        assert!(
            wait["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("behind job {urgent} at the head of namespace t")),
            "{j}"
        );
        let at = if id == head {
            0
        } else {
            1 + behind.iter().position(|b| b == id).unwrap()
        };
        assert_eq!(wait["position"], 2 + at as u64, "{j}");
        assert_eq!(wait["level_position"], 1 + at as u64, "{j}");
    }
    // `describe` says the same for one of them.
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{}", behind[2]), "").await;
    assert_eq!(v["wait"]["position"], 5, "{v}");
    assert_eq!(v["wait"]["reason_kind"], "blocked", "{v}");
}
