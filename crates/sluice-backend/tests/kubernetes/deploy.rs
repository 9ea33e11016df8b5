//! The deploy files: the kustomize overlays render and grant what the backend uses and no more.

use super::*;
use crate::kustomize::kustomize;

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// What an overlay grants sluice: (group, resource, verb, cluster-wide, namespace).
fn granted(docs: &[Value]) -> Vec<(String, String, String, bool, String)> {
    let mut granted = Vec::new();
    for d in docs {
        let cluster = match d["kind"].as_str().unwrap() {
            "ClusterRole" => true,
            "Role" => false,
            _ => continue,
        };
        let ns = d["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for rule in d["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        let v = v.as_str().unwrap();
                        assert_ne!(v, "*", "no wildcard verbs");
                        granted.push((
                            g.as_str().unwrap().into(),
                            r.as_str().unwrap().into(),
                            v.into(),
                            cluster,
                            ns.clone(),
                        ));
                    }
                }
            }
        }
    }
    granted
}

/// Both overlays render with `kubectl kustomize` (what `kubectl apply -k` applies), and what
/// they grant is what the backend uses, in every namespace the configuration manages, bound to
/// sluice's service account, and no more.
#[test]
fn deploy_overlays_render_and_grant_what_the_backend_uses_and_no_more() {
    use sluice_backend::kubernetes::PERMISSIONS;
    for overlay in ["deploy/overlays/sqlite", "deploy/overlays/postgres"] {
        let docs = kustomize(overlay);
        assert!(
            docs.iter()
                .all(|d| d["apiVersion"].is_string() && d["kind"].is_string()),
            "{overlay}"
        );
        // The namespaces the configuration manages.
        let config = find(&docs, "ConfigMap", "sluice-config")["data"]["sluice.toml"]
            .as_str()
            .unwrap()
            .to_string();
        let config: toml_probe::Config = toml_probe::parse(&config);
        assert!(!config.namespaces.is_empty(), "{overlay}");
        let granted = granted(&docs);
        for ns in &config.namespaces {
            for (g, r, v, cluster) in PERMISSIONS {
                assert!(
                    granted.iter().any(|x| x.0 == *g
                        && x.1 == *r
                        && x.2 == *v
                        && (x.3 || (!cluster && x.4 == *ns))),
                    "{overlay} lacks {v} {g}/{r} (cluster-wide: {cluster}) in {ns}"
                );
            }
        }
        for (g, r, v, cluster, ns) in &granted {
            // `get` comes with list for nodes and pods (kubectl-style reads); nothing else extra.
            let needed = PERMISSIONS
                .iter()
                .any(|p| p.0 == g && p.1 == r && (p.2 == v || v == "get"));
            assert!(
                needed,
                "{overlay} grants {v} {g}/{r} that sluice does not use"
            );
            if *cluster {
                assert!(
                    ["get", "list", "watch"].contains(&v.as_str()),
                    "cluster-wide writes: {v} {r}"
                );
            } else {
                assert!(
                    config.namespaces.contains(ns),
                    "{overlay}: a Role in {ns}, which sluice does not manage"
                );
            }
        }
        // Every binding binds sluice's service account, which the Deployment runs as.
        let deployment = find(&docs, "Deployment", "sluice");
        let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap();
        find(&docs, "ServiceAccount", sa);
        for d in docs
            .iter()
            .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        {
            let subjects = d["subjects"].as_array().unwrap();
            assert_eq!(subjects.len(), 1, "{d}");
            assert_eq!(subjects[0]["name"], sa, "{d}");
            assert_eq!(subjects[0]["namespace"], "sluice-system", "{d}");
            let role = &d["roleRef"];
            find(
                &docs,
                role["kind"].as_str().unwrap(),
                role["name"].as_str().unwrap(),
            );
        }
        // The image is set in one place (deploy/base/kustomization.yaml).
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "sluice:dev", "{overlay}");
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
        if overlay.ends_with("sqlite") {
            // One writer of the SQLite file: one replica, never two pods at once.
            assert_eq!(deployment["spec"]["replicas"], 1);
            assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
            assert_eq!(data["persistentVolumeClaim"]["claimName"], "sluice-data");
            assert!(data.get("emptyDir").is_none(), "{data}");
            find(&docs, "PersistentVolumeClaim", "sluice-data");
        } else {
            let env = container["env"].as_array().unwrap();
            let url = env
                .iter()
                .find(|e| e["name"] == "SLUICE_STORE__URL")
                .unwrap();
            assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "sluice-store");
            assert!(
                !docs.iter().any(|d| d["kind"] == "PersistentVolumeClaim"),
                "{overlay}"
            );
        }
    }
}

/// Reads the managed namespaces of the `sluice.toml` in the ConfigMap, without the server crate.
mod toml_probe {
    pub struct Config {
        pub namespaces: Vec<String>,
    }

    /// The `namespaces = [...]` line of `[backend]`.
    pub fn parse(text: &str) -> Config {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("namespaces"))
            .expect("backend.namespaces in the ConfigMap");
        let list = line.split('#').next().unwrap();
        let inner = list.split_once('[').unwrap().1.split_once(']').unwrap().0;
        Config {
            namespaces: inner
                .split(',')
                .map(|n| n.trim().trim_matches('"').to_string())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }
}
