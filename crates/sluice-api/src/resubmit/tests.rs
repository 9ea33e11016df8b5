use std::collections::BTreeMap;

use sluice_core::document::parse_stored;
use sluice_core::spec::{Levels, ParseOptions};

use super::*;
use crate::jobs::DemandView;

const DOC: &str = "# kept as written\nname: pi\nnamespace: analytics\nlabels: {team: a}\n\
                   spark:\n  type: Python\n  mainApplicationFile: local:///pi.py\n";

fn job(spec: serde_json::Value) -> JobView {
    JobView {
        id: "j1".into(),
        namespace: "analytics".into(),
        name: "pi".into(),
        level: "normal".into(),
        state: "succeeded".into(),
        attempt: 1,
        labels: BTreeMap::new(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        enqueued_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:01.000Z".into(),
        started_at: None,
        finished_at: None,
        backend_ref: None,
        exit_code: Some(0),
        message: None,
        demand: DemandView {
            pods: Vec::new(),
            total_cpu_milli: 0,
            total_memory_mib: 0,
        },
        spec,
        wait: None,
        timeline: None,
        orchestration: None,
        set_aside: None,
        results: None,
    }
}

#[test]
fn the_users_document_comes_back_with_the_job_under_status() {
    let levels = Levels::default();
    let opts = ParseOptions {
        priority: None,
        levels: &levels,
    };
    let stored = parse_stored(DOC, opts).unwrap();
    let doc = resubmittable(&job(stored.encode().unwrap())).unwrap();
    assert_eq!(doc["name"], "pi");
    assert_eq!(doc["labels"]["team"], "a");
    assert_eq!(doc["status"]["id"], "j1");
    assert_eq!(doc["status"]["state"], "succeeded");
    assert!(doc["status"].get("spec").is_none(), "{doc}");
    // Without `status`, it is the document as submitted.
    let mut again = doc.clone();
    again.as_object_mut().unwrap().remove("status");
    let original: serde_json::Value = serde_saphyr::from_str(DOC).unwrap();
    assert_eq!(again, original);
}

#[test]
fn a_stored_job_that_does_not_decode_names_the_job() {
    let e = resubmittable(&job(serde_json::Value::Null)).unwrap_err();
    assert!(matches!(e, DocumentError::Stored { .. }), "{e:?}");
    assert!(e.to_string().starts_with("job j1: "), "{e}");
}
