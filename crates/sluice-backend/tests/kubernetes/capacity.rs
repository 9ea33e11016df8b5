//! The capacity snapshot (per node: fragmentation, taints and selectors, terminating pods, quotas, reserved executors), submit, status and cancel, and the dry-run check.

use super::*;

#[tokio::test]
async fn fragmentation_enough_in_total_but_no_node_holds_the_driver() {
    let fake = FakeApi::start().await;
    for n in ["a", "b", "c"] {
        fake.put(
            "nodes",
            "",
            node(n, "2", "8Gi", 110, no_labels(), json!([])),
        );
    }
    // Each node has 1.5 cores free: 4.5 cores in all.
    for n in ["a", "b", "c"] {
        fake.put(
            "pods",
            "other",
            pod(
                &format!("busy-{n}"),
                Some(n),
                "Running",
                "500m",
                "1Gi",
                no_labels(),
            ),
        );
    }
    let b = backend(&fake, |_| {}).await;
    let big_driver = request(
        "j1",
        &spark_job(
            "big",
            "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, memory: 1g}\n  executor: {instances: 1, cores: 1, memory: 512m}\n",
        ),
    );
    let (admitted, waiting) = cycle(&b, &[&big_driver]).await;
    assert!(admitted.is_empty());
    let WaitReason::NoRoom(no_fit) = &waiting[0].1 else {
        panic!("{waiting:?}")
    };
    assert_eq!(no_fit.unplaced, sluice_core::job::Role::Driver);
    let text = waiting[0].1.to_string();
    assert!(text.contains("largest free slot 1.5 cores"), "{text}");
    assert!(text.contains("4.5 cores / 21 GiB free in all"), "{text}");
    // The same job with a 1.5-core driver fits.
    let fits = request(
        "j2",
        &spark_job(
            "fits",
            "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, coreRequest: 1500m, memory: 1g}\n  executor: {instances: 1, cores: 1, memory: 512m}\n",
        ),
    );
    let (admitted, _) = cycle(&b, &[&fits]).await;
    assert_eq!(admitted, vec!["j2"]);
}

#[tokio::test]
async fn taints_and_selectors_restrict_the_nodes() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node(
            "control",
            "8",
            "32Gi",
            110,
            json!({"node-role.kubernetes.io/control-plane": ""}),
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        ),
    );
    fake.put(
        "nodes",
        "",
        node("cpu", "2", "8Gi", 110, json!({"pool": "cpu"}), json!([])),
    );
    fake.put("nodes", "", gpu_node());
    let b = backend(&fake, |_| {}).await;
    // 3 pods of 1 core: with the tainted nodes out, only "cpu" (2 cores) is left.
    let plain = request("plain", &spark_job("plain", PI));
    let (admitted, waiting) = cycle(&b, &[&plain]).await;
    assert!(admitted.is_empty(), "{waiting:?}");
    assert!(
        waiting[0]
            .1
            .to_string()
            .contains("largest free slot 2 cores"),
        "{}",
        waiting[0].1
    );
    // A SparkApplication that selects the gpu pool and tolerates its taint fits there.
    let gpu_app = "apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: gpu, namespace: spark}
spec:
  type: Python
  sparkVersion: 4.0.4
  mainApplicationFile: local:///a.py
  nodeSelector: {pool: gpu}
  driver:
    cores: 1
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  executor:
    cores: 1
    instances: 4
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
";
    let gpu = request("gpu", gpu_app);
    let (admitted, _) = cycle(&b, &[&gpu]).await;
    assert_eq!(admitted, vec!["gpu"]);
    // Without the toleration, no node accepts it: held back with the reason.
    let untolerated = request(
        "untol",
        &gpu_app.replace(
            "    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n",
            "",
        ),
    );
    assert!(
        matches!(&untolerated.job.kind, sluice_core::spec::JobKind::Spark { application: Some(a), .. } if a["spec"]["driver"].get("tolerations").is_none())
    );
    let (admitted, waiting) = cycle(&b, &[&untolerated]).await;
    assert!(admitted.is_empty());
    let why = waiting[0].1.to_string();
    assert!(why.contains("no node accepts the driver"), "{why}");
    assert!(
        why.contains("taint nvidia.com/gpu=present:NoSchedule"),
        "{why}"
    );
    assert!(why.contains("node cpu lacks label pool=gpu"), "{why}");
}

#[tokio::test]
async fn terminating_pods_still_count_and_finished_pods_do_not() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 3, no_labels(), json!([])),
    );
    let mut terminating = pod("old", Some("a"), "Running", "3", "1Gi", no_labels());
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    fake.put("pods", "other", terminating);
    fake.put(
        "pods",
        "other",
        pod("done", Some("a"), "Succeeded", "4", "16Gi", no_labels()),
    );
    fake.put(
        "pods",
        "other",
        pod("failed", Some("a"), "Failed", "4", "16Gi", no_labels()),
    );
    fake.put(
        "pods",
        "other",
        pod("pending", None, "Pending", "4", "16Gi", no_labels()),
    );
    let b = backend(&fake, |_| {}).await;
    let report = b.capacity().await.unwrap();
    assert_eq!(
        report.snapshot.nodes,
        vec![NodeCapacity::new("a", 1000, 15 * 1024, Some(2))]
    );
    assert_eq!(
        report.snapshot.allocatable,
        vec![NodeCapacity::new("a", 4000, 16 * 1024, Some(3))]
    );
    // Once it is gone, its room is free again (seen through the watch).
    fake.remove("pods", "other", "old");
    eventually("the deleted pod's room is free", || async {
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli == 4000
    })
    .await;
    // A cordoned or NotReady node offers nothing.
    assert!(
        fake.update("nodes", "", "a", |n| n["spec"]["unschedulable"] =
            json!(true))
    );
    eventually("the cordoned node is left out", || async {
        b.capacity().await.unwrap().snapshot.nodes.is_empty()
    })
    .await;
}

#[tokio::test]
async fn namespace_quota_holds_jobs_back() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "16", "64Gi", 110, no_labels(), json!([])),
    );
    fake.put(
        "resourcequotas",
        NS,
        json!({
            "metadata": {"name": "team"},
            "spec": {"hard": {"requests.cpu": "4", "requests.memory": "16Gi", "pods": "10"}},
            "status": {"hard": {"requests.cpu": "4", "requests.memory": "16Gi", "pods": "10"},
                       "used": {"requests.cpu": "1500m", "requests.memory": "1Gi", "pods": "1"}}
        }),
    );
    let b = backend(&fake, |_| {}).await;
    // 3 cores: fits the 2.5 cores left in the quota? No.
    let job = request("q1", &spark_job("q", PI));
    let (admitted, waiting) = cycle(&b, &[&job]).await;
    assert!(admitted.is_empty());
    assert_eq!(waiting[0].1.kind(), "constrained");
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("ResourceQuota team requests.cpu: needs 3 cores, 1.5 cores of 4 cores used"),
        "{why}"
    );
    // A job of 1.5 cores fits the 2.5 cores left...
    let small = |id: &str| {
        request(
            id,
            &spark_job(
                id,
                "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, coreRequest: 1500m}\n  executor: {instances: 0}\n",
            ),
        )
    };
    let (s1, s2) = (small("s1"), small("s2"));
    let (admitted, _) = cycle(&b, &[&s1]).await;
    assert_eq!(admitted, vec!["s1"]);
    b.submit(&s1).await.unwrap();
    // ...but once it is submitted (its pods not created, so not in the quota's `used` yet), a
    // second one no longer does.
    let (admitted, waiting) = cycle(&b, &[&s2]).await;
    assert!(admitted.is_empty(), "{waiting:?}");
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("needs 1.5 cores, 3 cores of 4 cores used"),
        "{why}"
    );
    // Its driver pod exists and the quota counts it: still held back, by the same amount.
    let app = fake.list("sparkapplications", NS).pop().unwrap();
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    assert!(fake.update("resourcequotas", NS, "team", |q| {
        q["status"]["used"]["requests.cpu"] = json!("3");
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, waiting) = cycle(&b, &[&s2]).await;
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("needs 1.5 cores, 3 cores of 4 cores used"),
        "{why}"
    );
}

#[tokio::test]
async fn executors_stay_reserved_until_they_exist() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("r1", &spark_job("pi", PI));
    let per_pod = req.demand.pods[0].each();
    let sub = b.submit(&req).await.unwrap();
    assert!(!sub.already_existed);
    let report = b.capacity().await.unwrap();
    assert!(report.visible.contains("r1"));
    let held = per_pod.times(3);
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    eventually("the application is watched", || async {
        b.capacity().await.unwrap().visible.contains("r1")
            && fake.get("sparkapplications", NS, &name).is_some()
    })
    .await;
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    // The driver starts: still the same room held (driver as a pod, executors reserved).
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    set_state(&fake, &name, "RUNNING", "");
    eventually("driver seen", || async {
        b.status(&RunRef {
            job_id: "r1".into(),
            attempt: 1,
            backend_ref: Some(sub.backend_ref.clone()),
        })
        .await
        .unwrap()
            == RunStatus::Running
    })
    .await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    // One executor pending (not bound): still reserved; then both bound.
    spark_pod(&fake, &app, "executor", 1, None, "Pending");
    spark_pod(&fake, &app, "executor", 2, Some("a"), "Running");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    spark_pod(&fake, &app, "executor", 1, Some("a"), "Running");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    // Finished: pods Succeeded, application COMPLETED: the room is back.
    for (role, i) in [("driver", 0), ("executor", 1), ("executor", 2)] {
        spark_pod(&fake, &app, role, i, Some("a"), "Succeeded");
    }
    set_state(&fake, &name, "COMPLETED", "");
    eventually("room freed", || async {
        free(&b).await == sluice_core::Resources::new(4000, 16 * 1024)
    })
    .await;
}

// ---------------------------------------------------------------- submit, status, cancel

#[tokio::test]
async fn submit_is_idempotent_through_409() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("01jz8m3v9q7x2kd4h6n8p0r2s4", &spark_job("pi", PI));
    let first = b.submit(&req).await.unwrap();
    assert_eq!(first.backend_ref, "spark/pi-h6n8p0r2s4-1");
    assert!(!first.already_existed);
    // A crash after the create: the same attempt again finds it and creates nothing.
    let again = b.submit(&req).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.backend_ref, first.backend_ref);
    assert_eq!(fake.list("sparkapplications", NS).len(), 1);

    // The create itself meeting 409 (the read before it missed it) is "already submitted".
    let b2 = backend(&fake, |_| {}).await;
    let req2 = request("01jz8m3v9q7x2kd4h6n8p0zzzz", &spark_job("pi", PI));
    let other_job = build_app(
        &req2.job,
        &req2.job_id,
        1,
        &req2.demand,
        &Default::default(),
    )
    .unwrap();
    let other_name = other_job["metadata"]["name"].as_str().unwrap().to_string();
    // Another job's application already holds the name: refused, never taken over.
    let mut squatter = other_job.clone();
    squatter["metadata"]["labels"][JOB_ID_LABEL] = json!("someone-else");
    fake.put("sparkapplications", NS, squatter);
    match b2.submit(&req2).await {
        Err(BackendError::Rejected(m)) => assert!(m.contains("belongs to another job"), "{m}"),
        other => panic!("{other:?}"),
    }
    fake.remove("sparkapplications", NS, &other_name);
    // 409 on the create: a hook answers 409 while the object is created behind the read.
    let fake_ref = Arc::new(std::sync::Mutex::new(None::<Value>));
    let slot = fake_ref.clone();
    fake.on_create(Box::new(move |kind, obj, _| {
        if kind == "sparkapplications" {
            *slot.lock().unwrap() = Some(obj.clone());
            return Some((
                409,
                "AlreadyExists".into(),
                "sparkapplications \"x\" already exists".into(),
            ));
        }
        None
    }));
    // The hook refuses; then the read shows nothing: the backend says "try again later".
    match b2.submit(&req2).await {
        Err(BackendError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
    let created = fake_ref.lock().unwrap().clone().unwrap();
    fake.put("sparkapplications", NS, created);
    let s = b2.submit(&req2).await.unwrap();
    assert!(s.already_existed);
}

#[tokio::test]
async fn status_follows_the_operator_and_cancel_deletes() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("st1", &spark_job("pi", PI));
    let sub = b.submit(&req).await.unwrap();
    let run = RunRef {
        job_id: "st1".into(),
        attempt: 1,
        backend_ref: Some(sub.backend_ref.clone()),
    };
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    assert_eq!(b.status(&run).await.unwrap(), RunStatus::Pending);
    for (state, want) in [
        ("SUBMITTED", RunStatus::Pending),
        ("RUNNING", RunStatus::Running),
        ("SUCCEEDING", RunStatus::Running),
        ("PENDING_RERUN", RunStatus::Pending),
    ] {
        set_state(&fake, &name, state, "");
        eventually(state, || async { b.status(&run).await.unwrap() == want }).await;
    }
    set_state(
        &fake,
        &name,
        "FAILED",
        "driver container failed with ExitCode: 1, Reason: Error",
    );
    eventually("failed", || async {
        b.status(&run).await.unwrap() == RunStatus::Failed {
            exit_code: Some(1),
            message:
                "SparkApplication FAILED: driver container failed with ExitCode: 1, Reason: Error"
                    .into(),
        }
    })
    .await;
    // Logs of the driver pod.
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Failed");
    fake.set_log(NS, &format!("{name}-driver"), "Pi is roughly 3.14\nbye\n");
    let chunk = b.logs(&run, 3, 5).await.unwrap();
    assert_eq!(chunk.data, "is ro");
    assert_eq!(chunk.next_offset, 8);
    assert!(!chunk.complete);
    let chunk = b.logs(&run, 8, 1000).await.unwrap();
    assert!(chunk.complete && chunk.data.ends_with("bye\n"));
    // Cancel deletes the application; a second cancel is fine; status then: not found.
    b.cancel(&run).await.unwrap();
    assert!(fake.get("sparkapplications", NS, &name).is_none());
    b.cancel(&run).await.unwrap();
    eventually("gone", || async {
        matches!(b.status(&run).await, Err(BackendError::NotFound { .. }))
    })
    .await;
    // Jobs outside the managed namespaces, and command jobs, are refused.
    let mut elsewhere = request("x", &spark_job("pi", PI));
    elsewhere.job.namespace = "other".into();
    assert!(
        matches!(b.submit(&elsewhere).await, Err(BackendError::Rejected(m)) if m.contains("not managed"))
    );
    let cmd = request(
        "c",
        "name: c\nnamespace: spark\ncommand: {argv: [\"true\"]}\n",
    );
    assert!(
        matches!(b.submit(&cmd).await, Err(BackendError::Rejected(m)) if m.contains("Spark applications only"))
    );
}

#[tokio::test]
async fn watch_restarts_after_410_gone() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 110, no_labels(), json!([])),
    );
    fake.put(
        "pods",
        "other",
        pod("hog", Some("a"), "Running", "3", "1Gi", no_labels()),
    );
    let b = backend(&fake, |_| {}).await;
    assert_eq!(
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli,
        1000
    );
    let lists_before = b.watch_lists()["pods"];
    // The pod goes away while the history is compacted: no DELETED event ever reaches the
    // watch; resuming it gets 410 Gone; only a new list shows the room.
    fake.remove_during_compaction("pods", "other", "hog");
    eventually("relisted after 410", || async {
        b.watch_lists()["pods"] > lists_before
            && b.capacity()
                .await
                .map(|r| r.snapshot.available && r.snapshot.nodes[0].cpu_milli == 4000)
                .unwrap_or(false)
    })
    .await;
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && !r.contains("watch=true")),
        "listed again"
    );
    // The watch works again afterwards.
    fake.put(
        "pods",
        "other",
        pod("new", Some("a"), "Running", "2", "1Gi", no_labels()),
    );
    eventually("new pod seen", || async {
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli == 2000
    })
    .await;
}

#[tokio::test]
async fn unreachable_api_is_unavailable_not_an_error() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    drop(fake);
    let b = KubeBackend::with_client(
        client,
        KubeSettings {
            namespaces: vec![NS.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let report = b.capacity().await.unwrap();
    assert!(!report.snapshot.available);
}

// ---------------------------------------------------------------- dry-run

#[tokio::test]
async fn dry_run_quota_refusal_waits_and_invalid_spec_is_rejected() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| s.mode = CapacityMode::DryRun).await;
    let answer = Arc::new(std::sync::Mutex::new(None::<(u16, String, String)>));
    let a = answer.clone();
    fake.on_create(Box::new(move |kind, _obj, dry_run| {
        if kind == "pods" && dry_run {
            return a.lock().unwrap().clone();
        }
        None
    }));
    let req = request("d1", &spark_job("pi", PI));
    *answer.lock().unwrap() = Some((
        403,
        "Forbidden".into(),
        "pods \"pi-driver\" is forbidden: exceeded quota: team, requested: requests.cpu=1, used: requests.cpu=4, limited: requests.cpu=4".into(),
    ));
    match b.submit(&req).await {
        Err(BackendError::NoRoom(m)) => assert!(m.contains("exceeded quota: team"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.list("sparkapplications", NS).is_empty());
    assert!(fake.list("pods", NS).is_empty(), "dry runs create nothing");
    *answer.lock().unwrap() = Some((
        422,
        "Invalid".into(),
        "Pod \"pi-driver\" is invalid: spec.containers[0].resources.limits: Invalid value: \"1\": must be greater than or equal to cpu request".into(),
    ));
    match b.submit(&req).await {
        Err(BackendError::Rejected(m)) => assert!(
            m.contains("must be greater than or equal to cpu request"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    *answer.lock().unwrap() = None;
    let s = b.submit(&req).await.unwrap();
    assert!(!s.already_existed);
    let dry: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("dryRun=All"))
        .collect();
    // Refused at the driver twice, then the driver and one executor (executors are alike).
    assert_eq!(dry.len(), 1 + 1 + 2, "{dry:?}");
}
