//! Properties of the job document parser (run in CI with the unit tests): whatever the text, it
//! answers (never panics), an error names something, and what it accepts keeps the safety
//! rules of [`crate::safety`] and the naming rules of the spec.

use proptest::prelude::*;

use crate::document::parse_job_with_policy;
use crate::safety::refused_env;
use crate::spec::{Job, JobKind, Levels, ParseOptions};

fn parse(text: &str) -> Result<Job, String> {
    let levels = Levels::default();
    parse_job_with_policy(
        text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .map(|(job, _)| job)
    .map_err(|e| e.to_string())
}

fn dns_label(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The invariants of an accepted job.
fn check_accepted(job: &Job) {
    assert!(dns_label(&job.name), "name {:?}", job.name);
    assert!(dns_label(&job.namespace), "namespace {:?}", job.namespace);
    match &job.kind {
        JobKind::Command(c) => {
            assert!(!c.argv.is_empty());
            for k in c.env.keys() {
                assert!(refused_env(k).is_none(), "env {k:?}");
                assert!(!k.contains('='), "env {k:?}");
            }
            if let Some(w) = &c.working_dir {
                assert!(!w.split('/').any(|p| p == ".."), "workingDir {w:?}");
                assert!(!w.trim_end_matches('/').is_empty(), "workingDir {w:?}");
            }
        }
        JobKind::Spark { spec, .. } => {
            if let Some(f) = &spec.main_application_file {
                assert!(!f.trim_start().starts_with('-'), "file {f:?}");
            }
            for k in spec.spark_conf.keys() {
                assert!(!k.contains('=') && !k.starts_with('-'), "conf {k:?}");
            }
        }
        JobKind::Python(p) => {
            for k in p.env.keys() {
                assert!(refused_env(k).is_none(), "env {k:?}");
            }
            if let Some(f) = &p.file {
                assert!(!f.trim_start().starts_with('-'), "file {f:?}");
            }
        }
        JobKind::Dbt(d) => {
            for k in d.env.keys() {
                assert!(refused_env(k).is_none(), "env {k:?}");
            }
            for s in d.select.iter().chain(&d.exclude) {
                assert!(!s.trim_start().starts_with('-'), "selector {s:?}");
            }
        }
        JobKind::SparkSql(q) => {
            for k in q.spark_conf.keys() {
                assert!(!k.contains('=') && !k.starts_with('-'), "conf {k:?}");
            }
        }
    }
}

/// YAML-ish fragments: structure, anchors, aliases, tags, quotes and sluice's own keys.
fn fragment() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "name",
            "namespace",
            "command",
            "spark",
            "argv",
            "env",
            "cpu",
            "memory",
            ": ",
            "\n",
            "  ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            "&a ",
            "*a",
            "!!str ",
            "<<: ",
            "\"",
            "'",
            "a",
            "1",
            "-1",
            "1e999",
            "500m",
            "..",
            "/",
            "LD_PRELOAD",
            "$(id)",
            "\t",
            "#",
            "---",
            "workingDir",
            "mainApplicationFile",
            "sparkConf",
            "é",
            "\u{202e}",
        ]),
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// A valid command job with one field replaced by `value` (a JSON string, so any text).
fn with_field(field: usize, value: &str) -> String {
    let v = serde_json::to_string(value).unwrap_or_default();
    match field {
        0 => format!("name: {v}\ncommand: {{argv: [echo]}}\n"),
        1 => format!("name: a\nnamespace: {v}\ncommand: {{argv: [echo]}}\n"),
        2 => format!("name: a\ncommand: {{argv: [echo], cpu: {v}}}\n"),
        3 => format!("name: a\ncommand: {{argv: [echo], memory: {v}}}\n"),
        4 => format!("name: a\ncommand: {{argv: [echo], env: {{{v}: x}}}}\n"),
        5 => format!("name: a\ncommand: {{argv: [echo], workingDir: {v}}}\n"),
        6 => format!("name: a\nspark: {{type: Python, mainApplicationFile: {v}}}\n"),
        7 => format!(
            "name: a\nspark: {{type: Python, mainApplicationFile: x.py, sparkConf: {{{v}: x}}}}\n"
        ),
        8 => format!("name: a\nmaxRuntime: {v}\ncommand: {{argv: [echo]}}\n"),
        _ => format!(
            "name: a\nspark: {{type: Python, mainApplicationFile: x.py, executor: {{instances: {v}}}}}\n"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_gets_an_answer(text in "(?s).{0,400}") {
        match parse(&text) {
            Ok(job) => check_accepted(&job),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn yaml_fragments_get_an_answer(text in fragment()) {
        match parse(&text) {
            Ok(job) => check_accepted(&job),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn any_field_value_is_checked(field in 0usize..10, value in "\\PC{0,40}|-[a-z=.]{0,10}|\\.\\./[a-z]{0,5}|[A-Z_]{1,12}") {
        let text = with_field(field, &value);
        match parse(&text) {
            Ok(job) => check_accepted(&job),
            Err(e) => prop_assert!(!e.is_empty(), "{text}"),
        }
    }
}
