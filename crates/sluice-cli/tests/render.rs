//! `sluice render`: the real binary prints the Kubernetes objects of a job as YAML, offline.

// It runs `sluice render`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn sluice(args: &[&str], config: Option<&std::path::Path>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        // No server is contacted: point the client at a port nothing listens on.
        .env("SLUICE_SERVER", "http://127.0.0.1:9");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().expect("run sluice");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_prints_the_spark_application() {
    let (ok, out, err) = sluice(&["render", "examples/pi.yaml"], None);
    assert!(ok, "{err}");
    let app: Value = serde_saphyr::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(app["apiVersion"], "sparkoperator.k8s.io/v1beta2");
    assert_eq!(app["kind"], "SparkApplication");
    assert_eq!(app["metadata"]["namespace"], "analytics");
    assert_eq!(app["metadata"]["name"], "pi-render-1");
    assert_eq!(app["spec"]["type"], "Python");
    assert_eq!(app["spec"]["arguments"][0], "10", "kept as a string");
    assert_eq!(app["spec"]["restartPolicy"]["type"], "Never");
}

#[test]
fn render_with_placeholders_lists_the_pods_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        "[backend]\nkind = \"kubernetes\"\nnamespaces = [\"default\"]\ncapacity_check = \"placeholders\"\n\
         placeholder_priority_class = \"sluice-placeholder\"\n",
    )
    .unwrap();
    let (ok, out, err) = sluice(&["render", "examples/spark-pi-python.yaml"], Some(&cfg));
    assert!(ok, "{err}");
    let docs: Vec<&str> = out.split("\n---\n").collect();
    assert_eq!(
        docs.len(),
        3,
        "driver and executor placeholders, then the application:\n{out}"
    );
    let pod: Value = serde_saphyr::from_str(docs[0]).unwrap();
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["spec"]["priorityClassName"], "sluice-placeholder");
    let app: Value = serde_saphyr::from_str(docs[2]).unwrap();
    assert_eq!(app["kind"], "SparkApplication");
    assert_eq!(
        app["metadata"]["labels"]["sluice.io/priority"], "high",
        "every field kept"
    );
}

#[test]
fn render_refuses_a_bad_job_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("bad.yaml");
    std::fs::write(
        &job,
        "name: x\nspark:\n  mainApplicationFile: a.py\n  driver: {memroy: 1g}\n",
    )
    .unwrap();
    let (ok, _, err) = sluice(&["render", job.to_str().unwrap()], None);
    assert!(!ok);
    assert!(err.contains("spark.driver.memroy"), "{err}");
}

/// `sluice completion SHELL` prints a completion script that knows the verbs; an unknown shell
/// is refused with the list of the known ones; a reader that closes the pipe early is fine.
#[test]
fn completion_scripts_for_each_shell() {
    let (ok, bash, err) = sluice(&["completion", "bash"], None);
    assert!(ok, "{err}");
    assert!(bash.contains("_sluice()"), "{bash}");
    for verb in ["submit", "describe", "logs", "completion", "token"] {
        assert!(bash.contains(verb), "bash completion lacks {verb}");
    }
    let (ok, zsh, _) = sluice(&["completion", "zsh"], None);
    assert!(ok && zsh.starts_with("#compdef sluice"), "{zsh}");
    let (ok, fish, _) = sluice(&["completion", "fish"], None);
    assert!(ok && fish.contains("complete -c sluice"), "{fish}");
    let (ok, _, err) = sluice(&["completion", "tcsh"], None);
    assert!(!ok);
    assert!(
        err.contains("invalid value 'tcsh'") && err.contains("bash"),
        "{err}"
    );
    // `sluice completion bash | head -1`: the closed pipe is not a panic.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} completion bash | head -c 10 >/dev/null; echo \"${{PIPESTATUS:-x}}\"",
            env!("CARGO_BIN_EXE_sluice")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `sluice render rbac --namespaces a,b`: one Role and one RoleBinding per namespace, each Role
/// granting exactly the namespaced permissions the Kubernetes backend uses (`PERMISSIONS`, what
/// the deploy test checks the overlays against), bound to sluice's ServiceAccount.
#[test]
fn render_rbac_gives_each_namespace_its_role_and_binding() {
    use sluice_backend::kubernetes::PERMISSIONS;
    let (ok, out, err) = sluice(&["render", "rbac", "--namespaces", "team-a,team-b"], None);
    assert!(ok, "{err}");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(docs.len(), 4, "{out}");
    let want: std::collections::BTreeSet<(String, String, String)> = PERMISSIONS
        .iter()
        .filter(|p| !p.3)
        .map(|p| (p.0.to_string(), p.1.to_string(), p.2.to_string()))
        .collect();
    for ns in ["team-a", "team-b"] {
        let of = |kind: &str| -> Vec<&Value> {
            docs.iter()
                .filter(|d| d["kind"] == kind && d["metadata"]["namespace"] == ns)
                .collect()
        };
        let roles = of("Role");
        let bindings = of("RoleBinding");
        assert_eq!((roles.len(), bindings.len()), (1, 1), "{ns}:\n{out}");
        let (role, binding) = (roles[0], bindings[0]);
        assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
        let mut granted = std::collections::BTreeSet::new();
        for rule in role["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        let new = granted.insert((
                            g.as_str().unwrap().to_string(),
                            r.as_str().unwrap().to_string(),
                            v.as_str().unwrap().to_string(),
                        ));
                        assert!(new, "{ns}: {v} {g}/{r} granted twice");
                    }
                }
            }
        }
        assert_eq!(granted, want, "{ns}");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        let subjects = binding["subjects"].as_array().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], "sluice");
        assert_eq!(subjects[0]["namespace"], "sluice-system");
    }
}

/// `sluice render rbac --config FILE` takes the namespaces from `backend.namespaces`.
#[test]
fn render_rbac_reads_the_namespaces_of_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        "[backend]\nkind = \"kubernetes\"\nnamespaces = [\"etl\", \"ml\", \"adhoc\"]\n",
    )
    .unwrap();
    let (ok, out, err) = sluice(&["render", "rbac"], Some(&cfg));
    assert!(ok, "{err}");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out).unwrap();
    let roles: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Role")
        .map(|d| &d["metadata"]["namespace"])
        .collect();
    assert_eq!(roles, ["etl", "ml", "adhoc"], "{out}");
    // A configuration whose backend manages no namespaces is refused.
    std::fs::write(&cfg, "[backend]\nkind = \"local\"\n").unwrap();
    let (ok, _, err) = sluice(&["render", "rbac"], Some(&cfg));
    assert!(!ok);
    assert!(err.contains("not \"kubernetes\""), "{err}");
}

/// Names that are not DNS-1123 labels are refused, naming the value; so is no namespace at all.
#[test]
fn render_rbac_refuses_bad_namespace_names() {
    let long = "a".repeat(64);
    for bad in ["Team-A", "team_b", "-team", "team-", "a.b", long.as_str()] {
        let list = format!("ok,{bad}");
        let (ok, out, err) = sluice(&["render", "rbac", "--namespaces", &list], None);
        assert!(!ok, "{bad} accepted:\n{out}");
        assert!(err.contains(&format!("\"{bad}\"")), "{bad}: {err}");
        assert!(out.is_empty(), "nothing printed for {bad}: {out}");
    }
    let (ok, _, err) = sluice(&["render", "rbac", "--namespaces", "a,a"], None);
    assert!(!ok);
    assert!(err.contains("\"a\" is given twice"), "{err}");
    let (ok, _, err) = sluice(&["render", "rbac"], None);
    assert!(!ok);
    assert!(err.contains("--namespaces"), "{err}");
}
