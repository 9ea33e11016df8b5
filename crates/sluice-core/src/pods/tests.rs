use super::*;

fn r(cpu: u64, mem: u64) -> Resources {
    Resources::new(cpu, mem)
}

#[test]
fn quantities() {
    use Round::*;
    use Unit::*;
    let cases: &[(&str, Unit, Round, Result<u64, ()>)] = &[
        ("500m", Milli, Up, Ok(500)),
        ("2", Milli, Up, Ok(2000)),
        ("1.5", Milli, Up, Ok(1500)),
        ("0.1", Milli, Up, Ok(100)),
        ("100u", Milli, Up, Ok(1)),
        ("100u", Milli, Down, Ok(0)),
        ("1k", Milli, Up, Ok(1_000_000)),
        ("1Gi", Mebi, Up, Ok(1024)),
        ("512Mi", Mebi, Up, Ok(512)),
        ("1G", Mebi, Up, Ok(954)),
        ("1G", Mebi, Down, Ok(953)),
        ("128974848", Mebi, Up, Ok(123)),
        ("129e6", Mebi, Up, Ok(124)),
        ("129e6", Mebi, Down, Ok(123)),
        ("1.5Gi", Mebi, Up, Ok(1536)),
        ("16Ti", Mebi, Up, Ok(16 << 20)),
        ("110", One, Down, Ok(110)),
        ("0", Mebi, Up, Ok(0)),
        (".5", Milli, Up, Ok(500)),
        ("+1", One, Up, Ok(1)),
        ("", Milli, Up, Err(())),
        ("-1", Milli, Up, Err(())),
        ("1.2.3", Milli, Up, Err(())),
        ("1Xi", Mebi, Up, Err(())),
        ("abc", Mebi, Up, Err(())),
        ("1e", Mebi, Up, Err(())),
    ];
    for (text, unit, round, want) in cases {
        let got = parse_quantity(text, *unit, *round).map_err(|_| ());
        assert_eq!(got, *want, "{text} {unit:?} {round:?}");
    }
    assert_eq!(
        parse_quantity("1e30", Unit::Milli, Round::Up),
        Ok(u64::MAX),
        "saturates"
    );
    assert!(
        parse_quantity("x", Unit::One, Round::Up)
            .unwrap_err()
            .to_string()
            .contains("\"x\"")
    );
}

#[test]
fn pod_request_rule() {
    let ic = |cpu, mem, sidecar| InitContainer {
        request: r(cpu, mem),
        sidecar,
    };
    let cases: Vec<(&str, PodResources, Resources)> = vec![
        ("empty pod", PodResources::default(), r(0, 0)),
        (
            "containers are summed",
            PodResources {
                containers: vec![r(500, 256), r(250, 128)],
                ..Default::default()
            },
            r(750, 384),
        ),
        (
            "a large init container wins per resource",
            PodResources {
                containers: vec![r(500, 256), r(250, 128)],
                init_containers: vec![ic(2000, 64, false)],
                ..Default::default()
            },
            r(2000, 384),
        ),
        (
            "init containers run one at a time: max, not sum",
            PodResources {
                containers: vec![r(100, 100)],
                init_containers: vec![ic(1000, 50, false), ic(50, 1000, false)],
                ..Default::default()
            },
            r(1000, 1000),
        ),
        (
            "sidecars are added to the containers",
            PodResources {
                containers: vec![r(1000, 1024)],
                init_containers: vec![ic(100, 64, true)],
                ..Default::default()
            },
            r(1100, 1088),
        ),
        (
            "an init container after a sidecar runs beside it",
            PodResources {
                containers: vec![r(100, 100)],
                init_containers: vec![ic(200, 200, true), ic(1000, 1000, false)],
                ..Default::default()
            },
            r(1200, 1200),
        ),
        (
            "an init container before a sidecar does not",
            PodResources {
                containers: vec![r(100, 100)],
                init_containers: vec![ic(1000, 1000, false), ic(200, 200, true)],
                ..Default::default()
            },
            r(1000, 1000),
        ),
        (
            "overhead is added last",
            PodResources {
                containers: vec![r(1000, 1024)],
                init_containers: vec![ic(3000, 10, false)],
                overhead: r(250, 120),
            },
            r(3250, 1144),
        ),
    ];
    for (name, pod, want) in cases {
        assert_eq!(pod_request(&pod), want, "{name}");
    }
}

fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
    }
}

fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
    Toleration {
        key: key.into(),
        operator: op.into(),
        value: value.into(),
        effect: effect.into(),
    }
}

#[test]
fn tolerations_table() {
    let t = taint("dedicated", "spark", "NoSchedule");
    let cases = [
        (
            "equal, same value",
            tol("dedicated", "Equal", "spark", ""),
            true,
        ),
        (
            "default operator is Equal",
            tol("dedicated", "", "spark", ""),
            true,
        ),
        ("other value", tol("dedicated", "Equal", "gpu", ""), false),
        (
            "exists on the key",
            tol("dedicated", "Exists", "", ""),
            true,
        ),
        ("other key", tol("gpu", "Exists", "", ""), false),
        (
            "empty key with Exists tolerates all",
            tol("", "Exists", "", ""),
            true,
        ),
        (
            "empty key with Equal is invalid",
            tol("", "Equal", "", ""),
            false,
        ),
        (
            "matching effect",
            tol("dedicated", "Exists", "", "NoSchedule"),
            true,
        ),
        (
            "other effect",
            tol("dedicated", "Exists", "", "NoExecute"),
            false,
        ),
        (
            "unknown operator",
            tol("dedicated", "Maybe", "spark", ""),
            false,
        ),
    ];
    for (name, tl, want) in cases {
        assert_eq!(tolerates(&tl, &t), want, "{name}");
    }
    let taints = [
        taint("soft", "", "PreferNoSchedule"),
        taint("a", "1", "NoSchedule"),
        taint("b", "", "NoExecute"),
    ];
    assert_eq!(untolerated(&taints, &[]), Some(&taints[1]));
    assert_eq!(
        untolerated(&taints, &[tol("a", "Equal", "1", "")]),
        Some(&taints[2])
    );
    assert_eq!(
        untolerated(
            &taints,
            &[tol("a", "Equal", "1", ""), tol("b", "Exists", "", "")]
        ),
        None,
        "PreferNoSchedule need not be tolerated"
    );
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expr(key: &str, op: &str, values: &[&str]) -> MatchExpression {
    MatchExpression {
        key: key.into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn selectors_and_affinity() {
    let l = labels(&[("zone", "a"), ("cores", "16")]);
    let cases = [
        (expr("zone", "In", &["a", "b"]), true),
        (expr("zone", "In", &["b"]), false),
        (expr("zone", "NotIn", &["b"]), true),
        (expr("disk", "NotIn", &["ssd"]), true),
        (expr("zone", "Exists", &[]), true),
        (expr("zone", "DoesNotExist", &[]), false),
        (expr("cores", "Gt", &["8"]), true),
        (expr("cores", "Lt", &["8"]), false),
        (expr("zone", "Gt", &["8"]), false),
        (expr("zone", "Near", &["a"]), false),
    ];
    for (e, want) in cases {
        assert_eq!(e.matches(&l), want, "{e:?}");
    }
    let term = NodeSelectorTerm {
        match_expressions: vec![expr("zone", "In", &["a"])],
        match_fields: vec![expr("metadata.name", "In", &["n1"])],
    };
    assert!(term.matches("n1", &l));
    assert!(!term.matches("n2", &l));
    assert!(!NodeSelectorTerm::default().matches("n1", &l));

    let node = NodeInfo {
        name: "n1".into(),
        labels: l.clone(),
        taints: vec![taint("dedicated", "spark", "NoSchedule")],
        ready: true,
        ..Default::default()
    };
    let mut p = PodPlacement::default();
    assert!(
        p.allows(&node)
            .unwrap_err()
            .contains("taint dedicated=spark")
    );
    p.tolerations
        .push(tol("dedicated", "Equal", "spark", "NoSchedule"));
    assert_eq!(p.allows(&node), Ok(()));
    p.node_selector = labels(&[("zone", "b")]);
    assert!(p.allows(&node).unwrap_err().contains("lacks label zone=b"));
    p.node_selector = labels(&[("zone", "a")]);
    p.affinity = vec![NodeSelectorTerm {
        match_expressions: vec![expr("zone", "In", &["c"])],
        match_fields: vec![],
    }];
    assert!(p.allows(&node).unwrap_err().contains("affinity"));
    p.affinity.push(term);
    assert_eq!(p.allows(&node), Ok(()), "terms are ORed");
}

#[test]
fn free_room_per_node() {
    let node = |name: &str, ready, unschedulable| NodeInfo {
        name: name.into(),
        ready,
        unschedulable,
        allocatable: r(4000, 8192),
        max_pods: Some(10),
        ..Default::default()
    };
    let nodes = [
        node("a", true, false),
        node("notready", false, false),
        node("cordoned", true, true),
        node("b", true, false),
    ];
    let pod = |n: Option<&str>, terminal, cpu, mem| PodUsage {
        node: n.map(String::from),
        terminal,
        request: r(cpu, mem),
    };
    let pods = [
        pod(Some("a"), false, 1000, 1024),
        // Being deleted, but not gone: still counts (the caller passes it as non-terminal).
        pod(Some("a"), false, 500, 512),
        pod(Some("a"), true, 3000, 4096),
        pod(None, false, 4000, 8192),
        pod(Some("b"), false, 5000, 100),
        pod(Some("gone-node"), false, 1000, 1000),
    ];
    let (free, alloc) = node_free(&nodes, &pods);
    assert_eq!(
        free,
        vec![
            NodeCapacity::new("a", 2500, 6656, Some(8)),
            NodeCapacity::new("b", 0, 8092, Some(9)),
        ]
    );
    assert_eq!(
        alloc,
        vec![
            NodeCapacity::new("a", 4000, 8192, Some(10)),
            NodeCapacity::new("b", 4000, 8192, Some(10)),
        ]
    );
}

/// Needs of pods with no particular scope (NotBestEffort, NotTerminating, no priority).
fn plain(need: QuotaNeed) -> ScopedNeed {
    [(PodScope::default(), need)].into()
}

#[test]
fn quota_table() {
    let q = Quota {
        name: "team".into(),
        hard: [
            (QuotaResource::RequestsCpu, 4000),
            (QuotaResource::RequestsMemory, 8192),
            (QuotaResource::Pods, 5),
        ]
        .into(),
        used: [
            (QuotaResource::RequestsCpu, 1000),
            (QuotaResource::RequestsMemory, 1024),
            (QuotaResource::Pods, 1),
        ]
        .into(),
        scopes: vec![],
    };
    let none = ScopedNeed::new();
    let need = plain(quota_need(r(3000, 2048), r(3000, 2048), 3));
    assert_eq!(quota_check(std::slice::from_ref(&q), &none, &need), Ok(()));
    let err = quota_check(
        std::slice::from_ref(&q),
        &plain(quota_need(r(500, 0), r(0, 0), 0)),
        &need,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "ResourceQuota team requests.cpu: needs 3 cores, 1.5 cores of 4 cores used"
    );
    let err = quota_check(
        std::slice::from_ref(&q),
        &none,
        &plain(quota_need(r(0, 0), r(0, 0), 5)),
    )
    .unwrap_err();
    assert!(
        err.contains("pods: needs 5 pods, 1 pods of 5 pods used"),
        "{err}"
    );
    // Limits are not in this quota: not checked.
    assert_eq!(
        quota_check(
            std::slice::from_ref(&q),
            &none,
            &plain(quota_need(r(0, 0), r(99_000, 99_999), 0))
        ),
        Ok(())
    );
    assert_eq!(quota_check(&[], &none, &need), Ok(()));
    let n = quota_need(r(3000, 2048), r(3000, 2048), 3);
    assert_eq!(add_need(&n, &n).get(&QuotaResource::Pods), Some(&6));
    assert_eq!(
        QuotaResource::from_key("count/pods"),
        Some(QuotaResource::Pods)
    );
    assert_eq!(QuotaResource::from_key("services"), None);

    // Hard limits alone: 3 cores fit under 4 whatever is used; 5 do not.
    assert_eq!(quota_hard_check(std::slice::from_ref(&q), &need), Ok(()));
    assert_eq!(
            quota_hard_check(
                std::slice::from_ref(&q),
                &plain(quota_need(r(5000, 0), r(5000, 0), 1))
            ),
            Err(
                "ResourceQuota team requests.cpu: the job needs 5 cores, more than its hard limit of 4 cores"
                    .into()
            )
        );
}

fn scope(name: &str, op: &str, values: &[&str]) -> ScopeRequirement {
    ScopeRequirement {
        scope: name.into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn quota_scopes_table() {
    let spark = PodScope::default();
    let high = PodScope {
        priority_class: Some("high".into()),
        ..PodScope::default()
    };
    let best_effort = PodScope {
        best_effort: true,
        ..PodScope::default()
    };
    let terminating = PodScope {
        terminating: true,
        ..PodScope::default()
    };
    let cross = PodScope {
        cross_namespace_affinity: true,
        ..PodScope::default()
    };
    // (requirement, spark pod without priority class, with class "high", best effort,
    // terminating, cross-namespace affinity)
    let cases = [
        (
            scope("BestEffort", "Exists", &[]),
            [false, false, true, false, false],
        ),
        (
            scope("NotBestEffort", "Exists", &[]),
            [true, true, false, true, true],
        ),
        (
            scope("Terminating", "Exists", &[]),
            [false, false, false, true, false],
        ),
        (
            scope("NotTerminating", "Exists", &[]),
            [true, true, true, false, true],
        ),
        (
            scope("PriorityClass", "Exists", &[]),
            [false, true, false, false, false],
        ),
        (
            scope("PriorityClass", "DoesNotExist", &[]),
            [true, false, true, true, true],
        ),
        (
            scope("PriorityClass", "In", &["high", "mid"]),
            [false, true, false, false, false],
        ),
        (
            scope("PriorityClass", "In", &["low"]),
            [false, false, false, false, false],
        ),
        (
            scope("PriorityClass", "NotIn", &["high"]),
            [true, false, true, true, true],
        ),
        (
            scope("PriorityClass", "NotIn", &["low"]),
            [true, true, true, true, true],
        ),
        (scope("PriorityClass", "Near", &["high"]), [false; 5]),
        (
            scope("CrossNamespacePodAffinity", "Exists", &[]),
            [false, false, false, false, true],
        ),
        (scope("VolumeAttributesClass", "Exists", &[]), [false; 5]),
    ];
    let pods = [&spark, &high, &best_effort, &terminating, &cross];
    for (req, want) in cases {
        for (pod, w) in pods.iter().zip(want) {
            assert_eq!(req.matches(pod), w, "{req:?} on {pod:?}");
        }
    }
    // A quota applies when every requirement matches; none: every pod.
    let mut q = Quota {
        name: "q".into(),
        ..Quota::default()
    };
    assert!(q.applies_to(&best_effort));
    q.scopes = vec![
        scope("NotBestEffort", "Exists", &[]),
        scope("PriorityClass", "In", &["high"]),
    ];
    assert!(q.applies_to(&high));
    assert!(!q.applies_to(&spark));
    assert!(!q.applies_to(&PodScope {
        best_effort: true,
        ..high.clone()
    }));
}

#[test]
fn scoped_quotas_count_only_their_pods() {
    let hard = |cpu| -> BTreeMap<QuotaResource, u64> { [(QuotaResource::RequestsCpu, cpu)].into() };
    let quota = |name: &str, scopes: Vec<ScopeRequirement>| Quota {
        name: name.into(),
        hard: hard(1000),
        used: hard(0),
        scopes,
    };
    let high = PodScope {
        priority_class: Some("high".into()),
        ..PodScope::default()
    };
    // A driver of 1 core with class "high", two executors of 1 core with none.
    let mut need = ScopedNeed::new();
    add_scoped(&mut need, &high, &quota_need(r(1000, 0), r(1000, 0), 1));
    add_scoped(
        &mut need,
        &PodScope::default(),
        &quota_need(r(2000, 0), r(2000, 0), 2),
    );
    let ok = |q: Quota| quota_check(&[q], &ScopedNeed::new(), &need);
    assert_eq!(
        ok(quota("be", vec![scope("BestEffort", "Exists", &[])])),
        Ok(())
    );
    assert_eq!(
        ok(quota("high", vec![scope("PriorityClass", "In", &["high"])])),
        Ok(()),
        "counts the driver only"
    );
    assert!(
        ok(quota(
            "others",
            vec![scope("PriorityClass", "NotIn", &["high"])]
        ))
        .unwrap_err()
        .contains("ResourceQuota others requests.cpu: needs 2 cores")
    );
    assert!(
        ok(quota("nbe", vec![scope("NotBestEffort", "Exists", &[])]))
            .unwrap_err()
            .contains("needs 3 cores")
    );
    // What admitted jobs reserve is scoped the same way.
    let q = quota("high", vec![scope("PriorityClass", "Exists", &[])]);
    let mut reserved = ScopedNeed::new();
    add_scoped(
        &mut reserved,
        &PodScope::default(),
        &quota_need(r(5000, 0), r(0, 0), 0),
    );
    assert_eq!(
        quota_check(std::slice::from_ref(&q), &reserved, &need),
        Ok(())
    );
    add_scoped(&mut reserved, &high, &quota_need(r(500, 0), r(0, 0), 0));
    assert!(quota_check(std::slice::from_ref(&q), &reserved, &need).is_err());
    assert_eq!(
        need_for(&q, &add_scoped_needs(&need, &reserved)).get(&QuotaResource::RequestsCpu),
        Some(&1500)
    );
    // Hard limits, scoped too.
    assert_eq!(quota_hard_check(std::slice::from_ref(&q), &need), Ok(()));
    assert!(
        quota_hard_check(
            &[quota("nbe", vec![scope("NotBestEffort", "Exists", &[])])],
            &need
        )
        .is_err()
    );
}

#[test]
fn never_placed_table() {
    let node = |name: &str, labels_: &[(&str, &str)], taints: Vec<Taint>, cpu, mem| NodeInfo {
        name: name.into(),
        labels: labels(labels_),
        taints,
        ready: true,
        allocatable: r(cpu, mem),
        max_pods: Some(110),
        ..Default::default()
    };
    let nodes = vec![
        node("small", &[("pool", "cpu")], vec![], 2000, 8192),
        node(
            "gpu",
            &[("pool", "gpu")],
            vec![taint("nvidia.com/gpu", "present", "NoSchedule")],
            16000,
            65536,
        ),
    ];
    let anywhere = PodPlacement::default();
    assert_eq!(
        never_placed("driver", &anywhere, r(1000, 1024), &nodes),
        Ok(())
    );
    assert_eq!(
        never_placed("driver", &anywhere, r(1000, 1024), &[]),
        Ok(()),
        "nothing known"
    );
    // A selector that matches no node.
    let ssd = PodPlacement {
        node_selector: labels(&[("disk", "ssd")]),
        ..Default::default()
    };
    let err = never_placed("executor", &ssd, r(1000, 1024), &nodes).unwrap_err();
    assert!(err.starts_with("no node accepts the executor: "), "{err}");
    assert!(err.contains("node small lacks label disk=ssd"), "{err}");
    // Only the tainted node is big enough, and the pod does not tolerate its taint.
    let err = never_placed("driver", &anywhere, r(4000, 1024), &nodes).unwrap_err();
    assert!(err.contains("one driver pod needs 4 cores"), "{err}");
    assert!(err.contains("node small has 2 cores"), "{err}");
    let gpu = PodPlacement {
        tolerations: vec![tol("nvidia.com/gpu", "Exists", "", "")],
        ..Default::default()
    };
    assert_eq!(never_placed("driver", &gpu, r(4000, 1024), &nodes), Ok(()));
    let pool_gpu = PodPlacement {
        node_selector: labels(&[("pool", "gpu")]),
        ..Default::default()
    };
    let err = never_placed("driver", &pool_gpu, r(1000, 1024), &nodes).unwrap_err();
    assert!(
        err.contains("taint nvidia.com/gpu=present:NoSchedule"),
        "{err}"
    );
    // Temporary conditions never make a pod impossible: cordoned, not Ready, condition taints.
    let mut down = node(
        "down",
        &[("disk", "ssd")],
        vec![
            taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),
            taint("node.kubernetes.io/not-ready", "", "NoExecute"),
        ],
        4000,
        8192,
    );
    down.ready = false;
    down.unschedulable = true;
    assert!(anywhere.allows(&down).is_err());
    assert_eq!(anywhere.allows_ever(&down), Ok(()));
    let mut with_down = nodes.clone();
    with_down.push(down);
    assert_eq!(
        never_placed("executor", &ssd, r(1000, 1024), &with_down),
        Ok(())
    );
    assert!(is_condition_taint(&taint(
        "node.kubernetes.io/memory-pressure",
        "",
        "NoSchedule"
    )));
    assert!(!is_condition_taint(&taint(
        "nvidia.com/gpu",
        "",
        "NoSchedule"
    )));
}
