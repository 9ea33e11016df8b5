//! Types that exist only for the job spec's schema (feature `schema`).

/// The failure classes `retry.retryOn` names (the schema's allowed values).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FailureClassName {
    /// The backend refused the job.
    Submission,
    /// The application failed.
    Application,
    /// Out of memory.
    Oom,
    /// The watchdog killed it.
    Watchdog,
    /// It ran past maxRuntime.
    Timeout,
}
