//! The hostile input corpus (`tests/hostile/cases.jsonl`, described in
//! `tests/hostile/README.md`): every malformed or hostile request gets a 4xx naming the field at
//! fault, never a 5xx or a panic, and nothing is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, header};
use common::app;
use http_body_util::BodyExt;
use serde::Deserialize;
use sluice_server::config::CommandJobsConfig;
use tower::ServiceExt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Gen {
    repeat: String,
    times: usize,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    #[serde(default = "post")]
    method: String,
    #[serde(default = "jobs")]
    path: String,
    #[serde(default = "yaml")]
    ctype: Option<String>,
    #[serde(default)]
    body: String,
    #[serde(rename = "gen")]
    generated: Option<Gen>,
    status: Option<u16>,
    mentions: String,
}

fn post() -> String {
    "POST".into()
}
fn jobs() -> String {
    "/v1/jobs".into()
}
fn yaml() -> Option<String> {
    Some("application/yaml".into())
}

const CASES: &str = include_str!("hostile/cases.jsonl");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_4xx_naming_the_field_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    config.security.command_jobs = Some(CommandJobsConfig {
        namespaces: vec!["*".into()],
        executables: Some(vec!["echo".into()]),
        working_dirs: vec![],
    });
    let state = common::local_state(dir.path(), 4000, 8192, config).await;
    let r = app(state.clone());
    let cases: Vec<Case> = CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let body = match &c.generated {
            Some(g) => format!("{}{}{}", g.prefix, g.repeat.repeat(g.times), g.suffix),
            None => c.body.clone(),
        };
        let mut req = Request::builder().method(c.method.as_str()).uri(&c.path);
        if let Some(t) = &c.ctype {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let resp = r
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let ok_status = match c.status {
            Some(s) => status.as_u16() == s,
            None => status.is_client_error(),
        };
        if !ok_status || !text.contains(&c.mentions) {
            failures.push(format!(
                "{}: {status} (want {}, mentioning {:?}): {:.300}",
                c.case,
                c.status.map_or("4xx".to_string(), |s| s.to_string()),
                c.mentions,
                text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Nothing was stored.
    let (_, v) = common::call(&r, "GET", "/v1/jobs", "").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 0, "{v}");
    let (_, v) = common::call(&r, "GET", "/v1/schedules", "").await;
    assert_eq!(v.as_array().unwrap().len(), 0, "{v}");
}
