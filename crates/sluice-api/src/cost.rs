//! What runs held, used and cost, and right-sizing advice (`/v1/cost`, `/v1/cost/runs`,
//! `/v1/advice`, `POST /v1/advice/{namespace}/{schedule}/apply`).

use serde::{Deserialize, Serialize};
use sluice_core::cost::advice::Advice;
use sluice_core::cost::{Aggregate, Efficiency, UsageRecord};

/// The answer of `GET /v1/cost`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CostView {
    /// What the prices are in.
    pub currency: String,
    /// The window's start (RFC 3339).
    pub from: String,
    /// Its end.
    pub to: String,
    /// What runs are summed by.
    pub by: String,
    /// One per group, by namespace then key.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub groups: Vec<Aggregate>,
}

/// One run in `GET /v1/cost/runs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RunCostView {
    /// What it held and used.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub run: UsageRecord,
    /// Its efficiency and cost.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub efficiency: Efficiency,
}

/// The answer of `GET /v1/advice`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AdviceView {
    /// What the prices are in.
    pub currency: String,
    /// Measured runs needed before advice.
    pub min_runs: usize,
    /// The safety factor.
    pub safety_factor: f64,
    /// One per job or schedule, by namespace then key.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub advice: Vec<Advice>,
}

/// The answer of `POST /v1/advice/{namespace}/{schedule}/apply`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AppliedView {
    /// The advice applied.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub advice: Advice,
    /// What changed in the schedule's template (empty: it already had the advice).
    pub changed: Vec<String>,
}
