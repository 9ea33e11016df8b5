//! The shipped alerts (`deploy/monitoring/prometheusrule.yaml`): `promtool check rules` is clean
//! on them, `promtool test rules` passes their unit tests (`deploy/monitoring/tests/`), every
//! alert is tested firing and has a runbook in docs/metrics.md, and every metric they use is one
//! sluice documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}: apt-get install prometheus (scripts/test.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn rules() -> Vec<Value> {
    let rule: Value =
        serde_saphyr::from_str(&read("deploy/monitoring/prometheusrule.yaml")).unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn alerts_pass_promtool_check_and_their_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    let rule: Value =
        serde_saphyr::from_str(&read("deploy/monitoring/prometheusrule.yaml")).unwrap();
    // promtool reads a rule file (`groups:`): the PrometheusRule's spec. JSON is YAML.
    std::fs::write(dir.path().join("rules.yaml"), rule["spec"].to_string()).unwrap();
    std::fs::write(
        dir.path().join("alerts.test.yaml"),
        read("deploy/monitoring/tests/alerts.test.yaml"),
    )
    .unwrap();
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(dir.path(), &["test", "rules", "alerts.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_tested_firing_and_has_a_runbook() {
    let tests: Value =
        serde_saphyr::from_str(&read("deploy/monitoring/tests/alerts.test.yaml")).unwrap();
    let mut firing = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for a in t["alert_rule_test"].as_array().unwrap() {
            if a["exp_alerts"].as_array().is_some_and(|e| !e.is_empty()) {
                firing.insert(a["alertname"].as_str().unwrap().to_string());
            }
        }
    }
    let docs = read("docs/metrics.md");
    let rules = rules();
    assert!(rules.len() >= 7, "{rules:?}");
    for r in &rules {
        let name = r["alert"].as_str().unwrap();
        assert!(
            firing.contains(name),
            "{name} has no test in which it fires"
        );
        assert!(
            docs.contains(&format!("\n### {name}\n")),
            "docs/metrics.md has no runbook section `### {name}`"
        );
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        assert!(
            url.ends_with(&format!("docs/metrics.md#{}", name.to_lowercase())),
            "{name}: {url}"
        );
        for key in ["summary", "description"] {
            assert!(r["annotations"][key].is_string(), "{name} lacks {key}");
        }
        assert!(
            r["labels"]["severity"].is_string(),
            "{name} lacks a severity"
        );
    }
}

#[test]
fn alerts_use_only_metrics_sluice_documents() {
    let docs = read("docs/metrics.md");
    for r in rules() {
        let expr = r["expr"].as_str().unwrap();
        let mut rest = expr;
        while let Some(i) = rest.find("sluice_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = name.strip_suffix("_count").unwrap_or(&name);
            assert!(
                docs.contains(&format!("| `{base}` |")),
                "{}: {name} is not in docs/metrics.md",
                r["alert"]
            );
            rest = &rest[i + name.len()..];
        }
    }
}
