//! The types of the usage records' queries ([`crate::Store::put_usage`],
//! [`crate::Store::usage`]); the record itself is [`sluice_core::cost::UsageRecord`].

/// Which usage records to read: runs that ended in `[from_ms, to_ms)`, narrowed by the fields
/// given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageFilter {
    /// Runs that ended at or after this time.
    pub from_ms: i64,
    /// Runs that ended before this time.
    pub to_ms: i64,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only one of these namespaces (the caller's); `Some(empty)` matches nothing.
    pub namespace_in: Option<Vec<String>>,
    /// Only jobs of this name.
    pub name: Option<String>,
    /// Only runs started by this schedule.
    pub schedule: Option<String>,
}
