//! One duration grammar for job specs, retry policies, schedules, query parameters and config.
//!
//! A duration is a bare whole number of seconds (`"90"`) or one or more parts, each a whole
//! number and a unit, optionally separated by spaces: `"90s"`, `"1h30m"`, `"1h 30m"`,
//! `"500ms"`, `"2d"`. Units: `ms` (milliseconds), `s`, `m` (minutes), `h`, `d` (days of 24
//! hours). Surrounding spaces are ignored; fractions, signs and long unit names ("5 minutes")
//! are refused. Every error names the field and shows the value.
//!
//! [`parse`] accepts zero; [`parse_positive`] does not (what job specs and policies need).

use std::time::Duration;

/// Why a duration was refused. Every message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not a duration in this grammar.
    #[error(
        "field `{field}` = {value:?} is not a duration (like 90, 90s, 500ms, 30m, 1h30m, 1h 30m, 2d)"
    )]
    Malformed {
        /// The field (or parameter, or setting) that held it.
        field: String,
        /// The text given.
        value: String,
    },
    /// The duration is zero where a positive one is needed.
    #[error("field `{field}` = {value:?} must be greater than zero")]
    Zero {
        /// The field that held it.
        field: String,
        /// The text given.
        value: String,
    },
    /// The duration is too long to represent.
    #[error("field `{field}` = {value:?} is too long a duration")]
    TooLarge {
        /// The field that held it.
        field: String,
        /// The text given.
        value: String,
    },
}

impl DurationError {
    /// The field named in the error.
    pub fn field(&self) -> &str {
        match self {
            DurationError::Malformed { field, .. }
            | DurationError::Zero { field, .. }
            | DurationError::TooLarge { field, .. } => field,
        }
    }

    /// The text that was refused.
    pub fn value(&self) -> &str {
        match self {
            DurationError::Malformed { value, .. }
            | DurationError::Zero { value, .. }
            | DurationError::TooLarge { value, .. } => value,
        }
    }

    /// What is wrong, without the field and value ("is not a duration (...)").
    pub fn problem(&self) -> String {
        let full = self.to_string();
        let head = format!("field `{}` = {:?} ", self.field(), self.value());
        full.strip_prefix(&head).unwrap_or(&full).to_string()
    }
}

/// Parses a duration (zero allowed). `field` names the field in errors.
pub fn parse(field: &str, text: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed {
        field: field.to_string(),
        value: text.to_string(),
    };
    let too_large = || DurationError::TooLarge {
        field: field.to_string(),
        value: text.to_string(),
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(malformed());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = t.parse().map_err(|_| too_large())?;
        return Ok(Duration::from_secs(secs));
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(malformed());
        }
        let (num, tail) = rest.split_at(digits);
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let per_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(malformed()),
        };
        let n: u64 = num.parse().map_err(|_| too_large())?;
        total_ms = n
            .checked_mul(per_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(too_large)?;
        rest = tail.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a duration that must be greater than zero.
pub fn parse_positive(field: &str, text: &str) -> Result<Duration, DurationError> {
    let d = parse(field, text)?;
    if d.is_zero() {
        return Err(DurationError::Zero {
            field: field.to_string(),
            value: text.to_string(),
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
