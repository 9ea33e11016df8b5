//! Time for people: RFC 3339 formatting and parsing of query parameters, and the one parser of
//! durations given in query parameters.

use std::time::{Duration, UNIX_EPOCH};

/// A query parameter that does not parse; the message names the parameter and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// Formats epoch milliseconds as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 query parameter into epoch milliseconds, naming it on error.
pub fn parse_time(field: &str, v: &str) -> Result<i64, ParamError> {
    let t = humantime::parse_rfc3339_weak(v).map_err(|e| {
        ParamError(format!(
            "query parameter `{field}` = {v:?} is not an RFC 3339 time like 2026-11-27T05:00:00Z: {e}"
        ))
    })?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

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
