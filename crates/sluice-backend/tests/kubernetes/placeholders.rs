//! Placeholder pods (all scheduled or none), their timeout and orphans, and the watchdog that kills a driver left without executors, also after a restart.

use super::*;

fn bind_all_placeholders(fake: &FakeApi, node: &str) {
    for p in fake.list("pods", NS) {
        if p["metadata"]["labels"][PLACEHOLDER_LABEL] == "true" {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            fake.update("pods", NS, &name, |p| {
                p["spec"]["nodeName"] = json!(node);
                p["status"]["phase"] = json!("Running");
            });
        }
    }
}

/// Placeholder pods of sluice jobs (by label).
fn placeholders(fake: &FakeApi) -> Vec<Value> {
    fake.list("pods", NS)
        .into_iter()
        .filter(|p| {
            p["metadata"]["labels"][PLACEHOLDER_LABEL] == "true"
                && p["metadata"]["labels"].get(JOB_ID_LABEL).is_some()
        })
        .collect()
}

#[tokio::test]
async fn placeholders_submit_when_all_are_scheduled() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_priority_class = Some("sluice-placeholder".into());
    })
    .await;
    let req = request("p1", &spark_job("pi", PI));
    assert!(matches!(b.submit(&req).await, Err(BackendError::NotYet(_))));
    let ph = placeholders(&fake);
    assert_eq!(ph.len(), 3);
    assert!(
        ph.iter()
            .all(|p| p["spec"]["priorityClassName"] == "sluice-placeholder")
    );
    assert!(
        ph.iter()
            .all(|p| p["metadata"]["labels"][JOB_ID_LABEL] == "p1")
    );
    // While they wait, the job is visible and its room held once (not twice).
    let report = b.capacity().await.unwrap();
    assert!(report.visible.contains("p1"));
    assert!(
        matches!(b.submit(&req).await, Err(BackendError::NotYet(m)) if m.contains("0 of 3 scheduled"))
    );
    assert!(fake.list("sparkapplications", NS).is_empty());
    bind_all_placeholders(&fake, "a");
    let names: Vec<String> = placeholders(&fake)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let before = fake.requests().len();
    let s = b.submit(&req).await.unwrap();
    assert!(!s.already_existed);
    // kubectl users see the placeholders come and go on the application.
    let app = s.backend_ref.split('/').nth(1).unwrap().to_string();
    let on_app = |reason: &str| -> Vec<Value> {
        fake.list("events", NS)
            .into_iter()
            .filter(|e| e["regarding"]["name"] == app.as_str() && e["reason"] == reason)
            .collect()
    };
    eventually("placeholder events written", || async {
        !on_app("PlaceholdersCreated").is_empty() && !on_app("PlaceholdersRemoved").is_empty()
    })
    .await;
    let created = on_app("PlaceholdersCreated");
    assert_eq!(created.len(), 1, "created once: {created:?}");
    assert_eq!(created[0]["type"], "Normal");
    let note = created[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("sluice created 3 placeholder pod(s) for job p1 (attempt 1)"),
        "{note}"
    );
    let removed = &on_app("PlaceholdersRemoved")[0];
    assert_eq!(
        removed["note"],
        "sluice deleted the 3 placeholder pod(s) of job p1 (attempt 1): the application was \
         created and holds the room now"
    );
    assert!(
        placeholders(&fake).is_empty(),
        "deleted once the application is submitted"
    );
    assert_eq!(fake.list("sparkapplications", NS).len(), 1);
    // The application was created while the placeholders still held the room: no placeholder
    // was deleted before the create, every one after it.
    let reqs = fake.requests()[before..].to_vec();
    let create = reqs
        .iter()
        .position(|r| {
            r.starts_with(&format!(
                "POST /apis/sparkoperator.k8s.io/v1beta2/namespaces/{NS}/sparkapplications"
            ))
        })
        .unwrap_or_else(|| panic!("{reqs:#?}"));
    for n in &names {
        let del = reqs
            .iter()
            .position(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{NS}/pods/{n}")))
            .unwrap_or_else(|| panic!("{n} not deleted: {reqs:#?}"));
        assert!(del > create, "{n} deleted before the create: {reqs:#?}");
    }
    // A job cancelled while its placeholders wait (still admitted, no run yet): they go.
    let p2 = request("p2", &spark_job("pi2", PI));
    assert!(matches!(b.submit(&p2).await, Err(BackendError::NotYet(_))));
    assert_eq!(placeholders(&fake).len(), 3);
    b.cancel(&RunRef {
        job_id: "p2".into(),
        attempt: 1,
        backend_ref: None,
    })
    .await
    .unwrap();
    assert!(placeholders(&fake).is_empty());
    eventually("nothing held for the cancelled job", || async {
        !b.capacity().await.unwrap().visible.contains("p2")
    })
    .await;
}

#[tokio::test]
async fn placeholder_timeout_releases_and_orphans_are_removed() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    // Left by a crashed sluice, of a job no longer being submitted.
    let orphan = |name: &str| {
        pod(
            name,
            Some("a"),
            "Running",
            "1",
            "1Gi",
            json!({"app.kubernetes.io/managed-by": "sluice", "sluice.io/placeholder": "true",
                   "sluice.io/job-id": "gone", "sluice.io/attempt": "1"}),
        )
    };
    fake.put("pods", NS, orphan("old-ph-driver-1"));
    fake.put(
        "pods",
        NS,
        pod(
            "not-ours",
            Some("a"),
            "Running",
            "1",
            "1Gi",
            json!({"sluice.io/placeholder": "true"}),
        ),
    );
    // In the modes that make no placeholders, every one is an orphan: removed at start-up.
    drop(backend(&fake, |_| {}).await);
    assert!(fake.get("pods", NS, "old-ph-driver-1").is_none());
    assert!(
        fake.get("pods", NS, "not-ours").is_some(),
        "only sluice's placeholders go"
    );
    // In placeholders mode, one that no resubmit adopts goes once older than the timeout.
    fake.put("pods", NS, orphan("old-ph-driver-2"));
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_timeout = Duration::from_millis(300);
    })
    .await;
    eventually("the orphan swept", || async {
        fake.get("pods", NS, "old-ph-driver-2").is_none()
    })
    .await;
    assert!(fake.get("pods", NS, "not-ours").is_some());
    let req = request("t1", &spark_job("pi", PI));
    assert!(matches!(b.submit(&req).await, Err(BackendError::NotYet(_))));
    // Only the driver's placeholder gets scheduled.
    let first = placeholders(&fake)
        .into_iter()
        .find(|p| p["metadata"]["labels"]["sluice.io/role"] == "driver")
        .unwrap();
    fake.update(
        "pods",
        NS,
        first["metadata"]["name"].as_str().unwrap(),
        |p| {
            p["spec"]["nodeName"] = json!("a");
        },
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    match b.submit(&req).await {
        Err(BackendError::NoRoom(m)) => assert!(m.contains("2 of 3 pods not scheduled"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(placeholders(&fake).is_empty(), "released");
    assert!(fake.list("sparkapplications", NS).is_empty());
    // The server sends the job back to its queue: a warning on the application it would have
    // been says why.
    let app = app_name("pi", "t1", 1);
    let requeued = || {
        fake.list("events", NS)
            .into_iter()
            .find(|e| e["reason"] == "Requeued" && e["regarding"]["name"] == app.as_str())
    };
    eventually("Requeued event written", || async { requeued().is_some() }).await;
    let e = requeued().unwrap();
    assert_eq!(e["type"], "Warning");
    let note = e["note"].as_str().unwrap();
    assert!(
        note.starts_with("sluice sent job t1 (attempt 1) back to its queue"),
        "{note}"
    );
    assert!(note.contains("2 of 3 pods not scheduled"), "{note}");
    eventually("nothing held for the requeued job", || async {
        !b.capacity().await.unwrap().visible.contains("t1")
    })
    .await;
}

// ---------------------------------------------------------------- watchdog

#[tokio::test]
async fn watchdog_kills_and_requeues_a_driver_without_executors() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| s.watchdog = Some(Duration::from_millis(300))).await;
    let req = request("w1", &spark_job("pi", PI));
    let sub = b.submit(&req).await.unwrap();
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    let run = RunRef {
        job_id: "w1".into(),
        attempt: 1,
        backend_ref: Some(sub.backend_ref.clone()),
    };
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    // RUNNING alone (the operator's word) with executors running: no deadlock.
    set_state(&fake, &name, "RUNNING", "");
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    spark_pod(&fake, &app, "executor", 1, Some("a"), "Running");
    spark_pod(&fake, &app, "executor", 2, None, "Pending");
    eventually("running", || async {
        b.status(&run).await.unwrap() == RunStatus::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.status(&run).await.unwrap(), RunStatus::Running);
    // The running executor is lost; the other stays Pending: after the timeout, requeue.
    spark_pod(&fake, &app, "executor", 1, None, "Pending");
    let got = Arc::new(std::sync::Mutex::new(None));
    eventually("watchdog fired", || {
        let (b, run, got) = (&b, &run, got.clone());
        async move {
            match b.status(run).await {
                Ok(RunStatus::Requeue { message }) => {
                    *got.lock().unwrap() = Some(message);
                    true
                }
                _ => false,
            }
        }
    })
    .await;
    let message = got.lock().unwrap().clone().unwrap();
    assert!(message.contains("deadlock watchdog"), "{message}");
    assert!(
        message.contains("none of its 2 executors running (2 pending"),
        "{message}"
    );
    assert!(fake.get("sparkapplications", NS, &name).is_none(), "killed");
    // kubectl users see sluice's part on the application: admitted, then killed by the watchdog.
    eventually("events written", || async {
        let evs = fake.list("events", NS);
        let reasons: Vec<&str> = evs
            .iter()
            .filter(|e| e["regarding"]["name"] == name.as_str())
            .filter_map(|e| e["reason"].as_str())
            .collect();
        reasons.contains(&"Admitted") && reasons.contains(&"DeadlockWatchdog")
    })
    .await;
    let evs = fake.list("events", NS);
    let admitted = evs.iter().find(|e| e["reason"] == "Admitted").unwrap();
    assert_eq!(admitted["regarding"]["kind"], "SparkApplication");
    assert_eq!(admitted["reportingController"], "sluice");
    assert_eq!(admitted["type"], "Normal");
    let note = admitted["note"].as_str().unwrap();
    assert!(note.contains("job w1 (attempt 1)"), "{note}");
    assert!(note.contains("all 2 executor(s) fit"), "{note}");
    let killed = evs
        .iter()
        .find(|e| e["reason"] == "DeadlockWatchdog")
        .unwrap();
    assert_eq!(killed["type"], "Warning");
    assert!(
        killed["note"]
            .as_str()
            .unwrap()
            .contains("deadlock watchdog"),
        "{killed}"
    );
    // The watchdog's deletion is not also reported as a cancel.
    assert!(!evs.iter().any(|e| e["reason"] == "Cancelled"), "{evs:?}");
}

/// Long before any test runs: what a restarted sluice finds from its earlier life.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// A placeholder pod of job `job` attempt 1, as sluice creates them, created at `created`.
fn placeholder_pod(name: &str, job: &str, role: &str, node: Option<&str>, created: &str) -> Value {
    let mut p = pod(
        name,
        node,
        "Pending",
        "1",
        "896Mi",
        json!({"app.kubernetes.io/managed-by": "sluice", "sluice.io/placeholder": "true",
               "sluice.io/job-id": job, "sluice.io/attempt": "1", "sluice.io/role": role}),
    );
    p["metadata"]["creationTimestamp"] = json!(created);
    p
}

#[tokio::test]
async fn placeholder_timeout_counts_from_their_creation_across_restarts() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    // Left by the sluice that ran before this one: the placeholders of two jobs still admitted
    // (the server submits them again after a restart). Those of r1 were created long ago and
    // two of them never got a node; those of r2 were created just now.
    for (name, role, node) in [
        ("r1-ph-driver", "driver", Some("a")),
        ("r1-ph-executor-1", "executor", None),
        ("r1-ph-executor-2", "executor", None),
    ] {
        fake.put(
            "pods",
            NS,
            placeholder_pod(name, "r1", role, node, LONG_AGO),
        );
    }
    let now = kube_fake::rfc3339_now();
    for (name, role, node) in [
        ("r2-ph-driver", "driver", Some("a")),
        ("r2-ph-executor-1", "executor", Some("a")),
        ("r2-ph-executor-2", "executor", None),
    ] {
        fake.put("pods", NS, placeholder_pod(name, "r2", role, node, &now));
    }
    // A fresh backend, as after a restart, with a timeout of a minute.
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_timeout = Duration::from_secs(60);
    })
    .await;
    let r1 = request("r1", &spark_job("pi", PI));
    match b.submit(&r1).await {
        Err(BackendError::NoRoom(m)) => {
            assert!(m.contains("2 of 3 pods not scheduled after 60 s"), "{m}")
        }
        other => panic!("released on the first try, not {other:?}"),
    }
    assert!(
        placeholders(&fake)
            .iter()
            .all(|p| p["metadata"]["labels"][JOB_ID_LABEL] != "r1"),
        "released"
    );
    // r2's are adopted (not created again) and still within their time.
    let r2 = request("r2", &spark_job("pi2", PI));
    match b.submit(&r2).await {
        Err(BackendError::NotYet(m)) => assert!(m.contains("2 of 3 scheduled"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut names: Vec<String> = placeholders(&fake)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["r2-ph-driver", "r2-ph-executor-1", "r2-ph-executor-2"]
    );
    // The API cannot be reached for the create: the placeholders stay for the next try.
    let fail = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let f = fail.clone();
    fake.on_create(Box::new(move |kind, _, _| {
        if kind != "sparkapplications" {
            return None;
        }
        match f.load(std::sync::atomic::Ordering::SeqCst) {
            // 503 is what kube-rs would retry for minutes inside the call: sluice's client
            // does not, it answers Unavailable and the next tick tries again.
            1 => Some((503, "ServiceUnavailable".into(), "etcd is away".into())),
            2 => Some((
                403,
                "Forbidden".into(),
                "exceeded quota: team, requested: requests.cpu=3".into(),
            )),
            _ => None,
        }
    }));
    bind_all_placeholders(&fake, "a");
    assert!(matches!(
        b.submit(&r2).await,
        Err(BackendError::Unavailable(_))
    ));
    assert_eq!(
        placeholders(&fake).len(),
        3,
        "kept while the job stays admitted"
    );
    assert!(b.capacity().await.unwrap().visible.contains("r2"));
    // A quota refusal sends the job back to its queue: the placeholders go.
    fail.store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(b.submit(&r2).await, Err(BackendError::NoRoom(_))));
    assert!(placeholders(&fake).is_empty());
    assert!(fake.list("sparkapplications", NS).is_empty());
}

// ---------------------------------------------------------------- watchdog, after a restart

/// `pod` with a creation time and, when running, its Spark container's start.
fn timed(mut p: Value, created: &str, started: Option<&str>) -> Value {
    p["metadata"]["creationTimestamp"] = json!(created);
    if let Some(t) = started {
        let container = if p["metadata"]["labels"]["spark-role"] == "driver" {
            "spark-kubernetes-driver"
        } else {
            "spark-kubernetes-executor"
        };
        p["status"]["startTime"] = json!(created);
        p["status"]["containerStatuses"] = json!([{
            "name": container, "image": "spark", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": t}}
        }]);
    }
    p
}

/// Plays the operator before a restart of sluice: the RUNNING application of `req`, its driver
/// running since `driver_started` and its two executors pending since `pending_since`.
fn running_app(
    fake: &FakeApi,
    req: &SubmitRequest,
    driver_started: &str,
    pending_since: &str,
) -> RunRef {
    let mut app = build_app(&req.job, &req.job_id, 1, &req.demand, &Default::default()).unwrap();
    app["status"] = json!({"applicationState": {"state": "RUNNING"}});
    let name = app["metadata"]["name"].as_str().unwrap().to_string();
    fake.put("sparkapplications", NS, app.clone());
    fake.put(
        "pods",
        NS,
        timed(
            pod(
                &format!("{name}-driver"),
                Some("a"),
                "Running",
                "1",
                "896Mi",
                spark_labels(&app, "driver"),
            ),
            driver_started,
            Some(driver_started),
        ),
    );
    for i in 1..=2 {
        fake.put(
            "pods",
            NS,
            timed(
                pod(
                    &format!("{name}-exec-{i}"),
                    None,
                    "Pending",
                    "1",
                    "896Mi",
                    spark_labels(&app, "executor"),
                ),
                pending_since,
                None,
            ),
        );
    }
    RunRef {
        job_id: req.job_id.clone(),
        attempt: 1,
        backend_ref: Some(format!("{NS}/{name}")),
    }
}

#[tokio::test]
async fn watchdog_counts_from_the_cluster_after_a_restart() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let now = kube_fake::rfc3339_now();
    // Driver running and executors pending since long before this sluice started.
    let stuck = running_app(
        &fake,
        &request("w2", &spark_job("stuck", PI)),
        LONG_AGO,
        LONG_AGO,
    );
    // Driver running for long, but its executors were created (after losing the first ones)
    // just now: the clock starts at the later of the two.
    let fresh = running_app(
        &fake,
        &request("w3", &spark_job("fresh", PI)),
        LONG_AGO,
        &now,
    );
    // The driver itself started just now (executors older: pending since before it ran).
    let young = running_app(
        &fake,
        &request("w4", &spark_job("young", PI)),
        &now,
        LONG_AGO,
    );
    let b = backend(&fake, |s| s.watchdog = Some(Duration::from_secs(600))).await;
    match b.status(&stuck).await.unwrap() {
        RunStatus::Requeue { message } => {
            assert!(message.contains("more than 600 s"), "{message}");
            assert!(message.contains("(2 pending, 0 not created)"), "{message}");
        }
        other => panic!("killed on the first look, not {other:?}"),
    }
    let name = stuck
        .backend_ref
        .as_deref()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap();
    assert!(fake.get("sparkapplications", NS, name).is_none(), "killed");
    assert_eq!(b.status(&fresh).await.unwrap(), RunStatus::Running);
    assert_eq!(b.status(&young).await.unwrap(), RunStatus::Running);
}
