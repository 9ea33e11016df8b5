//! Time for people: RFC 3339 formatting and parsing of query parameters (`sluice_api::time`,
//! which the client shares), and the one parser of durations given in query parameters.

use std::time::Duration;

pub use sluice_api::time::{ParamError, parse_time, rfc3339};

/// Parses the duration query parameter `field` (like `90s`, `30m`, `1h30m`, `1d` or a bare
/// number of seconds). Every duration the API reads goes through here, with the grammar of job
/// specs ([`sluice_core::spec::parse_duration_secs`]).
pub fn parse_duration(field: &str, v: &str) -> Result<Duration, ParamError> {
    sluice_core::spec::parse_duration_secs(field, v)
        .map(Duration::from_secs)
        .map_err(|e| ParamError(format!("query parameter {e}")))
}

/// Milliseconds since the Unix epoch from the system clock. The server reads the time through
/// its state's clock; this is for callers without one.
pub fn now_ms() -> i64 {
    sluice_backend::clock::system_now_ms()
}
