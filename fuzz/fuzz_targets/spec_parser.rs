//! Any text given to `POST /v1/jobs` (YAML or JSON): the parser answers, never panics, and what
//! it accepts keeps the safety rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::document::parse_stored;
use sluice_core::spec::{JobKind, Levels, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let levels = Levels::default();
    let opts = ParseOptions {
        priority: None,
        levels: &levels,
    };
    if let Ok(stored) = parse_stored(text, opts) {
        let job = &stored.job;
        assert!(!job.name.is_empty() && !job.namespace.is_empty());
        if let JobKind::Command(c) = &job.kind {
            for k in c.env.keys() {
                assert!(sluice_core::safety::refused_env(k).is_none());
            }
        }
        // What is stored decodes again.
        let encoded = stored.encode().expect("encode");
        sluice_core::stored::StoredJob::decode(&encoded).expect("decode");
    }
});
