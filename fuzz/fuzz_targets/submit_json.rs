//! A JSON body of `POST /v1/jobs` (`Content-Type: application/json`): whatever JSON arrives,
//! shaped like a job or not, the parser answers without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::document::parse_job_with_policy;
use sluice_core::spec::{Levels, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // The same value as a job's body, and nested as sluice's own spec would have it.
    let wrapped = serde_json::json!({"name": "a", "command": value});
    let levels = Levels::default();
    for text in [value.to_string(), wrapped.to_string()] {
        let opts = ParseOptions {
            priority: None,
            levels: &levels,
        };
        let _ = parse_job_with_policy(&text, opts);
    }
});
