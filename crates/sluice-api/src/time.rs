//! Times on the wire: RFC 3339 formatting of epoch milliseconds and parsing back, for the
//! server's answers and query parameters and for the client that reads them.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_names_a_bad_value() {
        let ms = 1_764_910_800_123;
        let s = rfc3339(ms);
        assert_eq!(s, "2025-12-05T05:00:00.123Z");
        assert_eq!(parse_time("from", &s), Ok(ms));
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        let e = parse_time("from", "yesterday").unwrap_err().to_string();
        assert!(e.contains("`from`") && e.contains("\"yesterday\""), "{e}");
    }
}
