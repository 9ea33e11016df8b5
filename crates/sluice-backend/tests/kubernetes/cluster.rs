//! A real cluster (opt-in through `KUBECONFIG`), the same checks against the fake, and the Waiting events.

use super::*;

/// Runs only when `KUBECONFIG` is set: when the Spark Operator's CRD is installed (else it says
/// "skipped: CRD not installed"), connects, reads the capacity and creates a small job's
/// SparkApplication and a placeholder pod with `dryRun=All` in `SLUICE_TEST_NAMESPACE` (default
/// "default"): the API server validates them against the real schema and admission, and
/// nothing is left behind.
#[tokio::test]
async fn real_cluster_when_kubeconfig_is_set() {
    let Ok(path) = std::env::var("KUBECONFIG") else {
        eprintln!("skipped: KUBECONFIG is not set, no real cluster to test against");
        return;
    };
    let ns = std::env::var("SLUICE_TEST_NAMESPACE").unwrap_or_else(|_| "default".into());
    let creds = sluice_backend::kubernetes::Credentials::Kubeconfig {
        path: path.into(),
        context: None,
    };
    cluster_checks(&creds, &ns).await;
}

/// The opt-in test's checks, run here against the fake (through a kubeconfig file, as with a
/// real cluster), with and without the operator's CRD.
#[tokio::test]
async fn opt_in_cluster_checks_run_against_the_fake() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody}}\nusers:\n- name: nobody\n  user: {{}}\n",
            fake.url
        ),
    )
    .unwrap();
    let creds = sluice_backend::kubernetes::Credentials::Kubeconfig {
        path: kubeconfig,
        context: None,
    };
    assert!(cluster_checks(&creds, NS).await, "dry runs made");
    let dry: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("dryRun=All"))
        .collect();
    assert_eq!(dry.len(), 2, "{dry:?}");
    assert!(dry[0].contains("/sparkapplications?"), "{dry:?}");
    assert!(dry[1].contains("/pods?"), "{dry:?}");
    assert!(
        fake.list("sparkapplications", NS).is_empty(),
        "nothing created"
    );
    assert!(fake.list("pods", NS).is_empty(), "nothing created");
    fake.uninstall_crd();
    assert!(!cluster_checks(&creds, NS).await, "skipped without the CRD");
}

/// Connects, reads the capacity and, when the operator's CRD is served, dry-runs a small job's
/// SparkApplication and a placeholder pod in `ns`. Returns whether the dry runs were made.
async fn cluster_checks(creds: &sluice_backend::kubernetes::Credentials, ns: &str) -> bool {
    use kube::api::{Api, DynamicObject, PostParams};
    use sluice_backend::kubernetes::objects::{PodKind, role_pod};
    use sluice_backend::kubernetes::{client_for, spark_application_resource};

    let ns = ns.to_string();
    // The backend watches SparkApplications: without the CRD it never gets ready.
    let client = client_for(creds).await.unwrap();
    let served = match client
        .list_api_group_resources("sparkoperator.k8s.io/v1beta2")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "sparkapplications"),
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => {
            eprintln!("discovery of sparkoperator.k8s.io/v1beta2: {e}");
            false
        }
    };
    if !served {
        eprintln!(
            "skipped: CRD not installed (sparkapplications.sparkoperator.k8s.io/v1beta2; \
             the backend needs the Spark Operator)"
        );
        return false;
    }
    let settings = KubeSettings {
        namespaces: vec![ns.clone()],
        ..Default::default()
    };
    let b = KubeBackend::connect(creds, settings.clone()).await.unwrap();
    b.wait_ready(Duration::from_secs(60)).await.unwrap();
    let report = b.capacity().await.unwrap();
    assert!(report.snapshot.available);
    assert!(
        !report.snapshot.allocatable.is_empty(),
        "a cluster with nodes"
    );
    eprintln!(
        "real cluster: {} schedulable nodes",
        report.snapshot.allocatable.len()
    );
    let text = format!(
        "name: sluice-dry-run\nnamespace: {ns}\nspark:\n  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py\n  driver: {{cores: 1, memory: 512m}}\n  executor: {{cores: 1, instances: 1, memory: 512m}}\n"
    );
    let (job, demand) = parse(&text);
    assert_eq!(b.never_runs(&job, &demand), None, "a small job can run");
    let app = build_app(
        &job,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        &demand,
        &settings.app,
    )
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        field_manager: Some("sluice".into()),
    };
    let obj: DynamicObject = serde_json::from_value(app.clone()).unwrap();
    let created =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &spark_application_resource())
            .create(&dry, &obj)
            .await
            .unwrap_or_else(|e| panic!("dry-run create of the SparkApplication in {ns}: {e}"));
    eprintln!(
        "real cluster: SparkApplication {:?} accepted (dry run)",
        created.metadata.name
    );
    let driver = demand.role(sluice_core::job::Role::Driver).unwrap().each();
    let ph = role_pod(
        &app,
        sluice_core::job::Role::Driver,
        driver,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        PodKind::Placeholder {
            image: &settings.placeholder_image,
            priority_class: None,
        },
    );
    let pod = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, &ns)
        .create(&dry, &ph)
        .await
        .unwrap_or_else(|e| panic!("dry-run create of a placeholder pod in {ns}: {e}"));
    eprintln!(
        "real cluster: placeholder pod {:?} accepted (dry run)",
        pod.metadata.name
    );
    true
}

/// A held job's `Waiting` event regards the SparkApplication it will become (no uid: it does
/// not exist yet), in the job's namespace; none is written where sluice manages nothing.
#[tokio::test]
async fn note_waiting_writes_a_waiting_event_per_held_job_in_managed_namespaces() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    assert!(b.notes_waiting());
    let held = |id: &str, ns: &str| Held {
        job_id: id.into(),
        attempt: 2,
        namespace: ns.into(),
        name: "nightly.etl".into(),
        reason: "needs 3 cores, 2048 MiB in 3 pods".into(),
        position: 4,
    };
    b.note_waiting(&[held("h1", NS), held("h2", "elsewhere")])
        .await;
    let evs = fake.list("events", NS);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!(e["reason"], "Waiting");
    assert_eq!(e["type"], "Normal");
    assert_eq!(
        e["regarding"],
        json!({"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
               "namespace": NS, "name": app_name("nightly.etl", "h1", 2)})
    );
    assert_eq!(
        e["note"],
        "held by sluice: needs 3 cores, 2048 MiB in 3 pods; position 4 in the queue of \
         namespace spark (job h1, attempt 2)"
    );
    assert!(e["eventTime"].is_string(), "{e}");
    assert!(fake.list("events", "elsewhere").is_empty());
}
