//! The two rules for text the store writes, the same on SQLite and PostgreSQL (PostgreSQL cannot
//! keep a NUL character in text):
//!
//! - text sluice writes for people (transition messages, notes, dead-letter reasons, schedule
//!   messages) is always storable: [`sanitize`] replaces NUL and the other control characters
//!   except `\n` and `\t` with U+FFFD;
//! - values that must come back or match exactly (ids, names, labels, backend refs, filters)
//!   are refused if they contain NUL: [`exact`] fails with [`StoreError::InvalidInput`] naming
//!   the field. JSON columns need neither: JSON text escapes control characters.

use std::borrow::Cow;

use crate::error::StoreError;

/// `s` with every control character except `\n` and `\t` (NUL, `\r`, escape, DEL, C1 controls)
/// replaced by U+FFFD. Borrows when there is nothing to replace.
pub(crate) fn sanitize(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.contains(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if bad(c) { '\u{FFFD}' } else { c })
            .collect(),
    )
}

/// `value` unchanged, or [`StoreError::InvalidInput`] naming `field` if it contains NUL.
pub(crate) fn exact<'a>(field: &str, value: &'a str) -> Result<&'a str, StoreError> {
    if value.contains('\0') {
        return Err(StoreError::InvalidInput {
            field: field.to_string(),
            value: value.to_string(),
        });
    }
    Ok(value)
}

/// Checks every key and value of a label set or label filter with [`exact`]: a key as field
/// `labels`, a value as field `labels.KEY`.
pub(crate) fn exact_labels<'a, I>(labels: I) -> Result<(), StoreError>
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    for (key, value) in labels {
        exact("labels", key)?;
        if value.contains('\0') {
            exact(&format!("labels.{key}"), value)?;
        }
    }
    Ok(())
}

/// Checks an optional filter value with [`exact`].
pub(crate) fn exact_opt(field: &str, value: Option<&String>) -> Result<(), StoreError> {
    value.map(|v| exact(field, v)).transpose().map(|_| ())
}

#[cfg(test)]
mod tests;
