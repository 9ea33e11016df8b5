//! `[cost]`: the prices of what sluice holds and the settings of right-sizing advice (see
//! `docs/cost.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_core::cost::Prices;
use sluice_core::cost::advice::AdviceConfig;

use super::{ConfigError, invalid};

/// `[cost]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Price of one core held for an hour (default 0.04).
    pub core_hour_price: f64,
    /// Price of one GiB of memory held for an hour (default 0.005).
    pub gib_hour_price: f64,
    /// What the prices are in, for people (default "USD").
    pub currency: String,
    /// `[cost.namespaces.NAME]`: other prices for a namespace.
    pub namespaces: BTreeMap<String, PriceOverride>,
    /// Measured runs a job or schedule needs before it gets advice (default 5).
    pub advice_min_runs: usize,
    /// The advised memory is the largest peak times this (default 1.2; at least 1).
    pub safety_factor: f64,
    /// A run whose heap peak reaches this fraction of its request is warned about (0.9).
    pub near_limit: f64,
    /// The window `sluice cost` and `sluice advise` look at by default, days (default 30).
    pub window_days: u32,
}

/// `[cost.namespaces.NAME]`: a price not given is the global one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PriceOverride {
    /// Price of a core-hour in this namespace.
    pub core_hour_price: Option<f64>,
    /// Price of a GiB-hour in this namespace.
    pub gib_hour_price: Option<f64>,
}

impl Default for CostConfig {
    fn default() -> Self {
        let advice = AdviceConfig::default();
        CostConfig {
            core_hour_price: 0.04,
            gib_hour_price: 0.005,
            currency: "USD".into(),
            namespaces: BTreeMap::new(),
            advice_min_runs: advice.min_runs,
            safety_factor: advice.safety_factor,
            near_limit: advice.near_limit,
            window_days: 30,
        }
    }
}

fn price(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(key, v, "must be a price of 0 or more"))
    }
}

impl CostConfig {
    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        price("cost.core_hour_price", self.core_hour_price)?;
        price("cost.gib_hour_price", self.gib_hour_price)?;
        for (ns, o) in &self.namespaces {
            if let Some(v) = o.core_hour_price {
                price(&format!("cost.namespaces.{ns}.core_hour_price"), v)?;
            }
            if let Some(v) = o.gib_hour_price {
                price(&format!("cost.namespaces.{ns}.gib_hour_price"), v)?;
            }
        }
        if self.advice_min_runs == 0 {
            return Err(invalid("cost.advice_min_runs", 0, "must be at least 1"));
        }
        if !(1.0..=10.0).contains(&self.safety_factor) {
            return Err(invalid(
                "cost.safety_factor",
                self.safety_factor,
                "must be from 1 to 10 (advice never goes below a measured peak)",
            ));
        }
        if !(self.near_limit > 0.0 && self.near_limit <= 1.0) {
            return Err(invalid(
                "cost.near_limit",
                self.near_limit,
                "must be a fraction above 0, at most 1",
            ));
        }
        if self.window_days == 0 || self.window_days > 3660 {
            return Err(invalid(
                "cost.window_days",
                self.window_days,
                "must be from 1 to 3660",
            ));
        }
        Ok(())
    }

    /// The prices in namespace `ns`.
    pub fn prices(&self, ns: &str) -> Prices {
        let o = self.namespaces.get(ns);
        Prices {
            core_hour: o
                .and_then(|o| o.core_hour_price)
                .unwrap_or(self.core_hour_price),
            gib_hour: o
                .and_then(|o| o.gib_hour_price)
                .unwrap_or(self.gib_hour_price),
        }
    }

    /// The advice settings.
    pub fn advice(&self) -> AdviceConfig {
        AdviceConfig {
            min_runs: self.advice_min_runs,
            safety_factor: self.safety_factor,
            near_limit: self.near_limit,
        }
    }

    /// The default window, ms.
    pub fn window_ms(&self) -> i64 {
        i64::from(self.window_days) * 86_400_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_per_namespace_and_bad_values() {
        let mut c = CostConfig::default();
        c.validate().unwrap();
        c.namespaces.insert(
            "gpu".into(),
            PriceOverride {
                core_hour_price: Some(1.5),
                gib_hour_price: None,
            },
        );
        assert_eq!(c.prices("gpu").core_hour, 1.5);
        assert_eq!(c.prices("gpu").gib_hour, 0.005);
        assert_eq!(c.prices("other").core_hour, 0.04);
        c.validate().unwrap();
        let bad = |f: &dyn Fn(&mut CostConfig), key: &str| {
            let mut c = CostConfig::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        };
        bad(&|c| c.core_hour_price = -1.0, "cost.core_hour_price");
        bad(&|c| c.gib_hour_price = f64::NAN, "cost.gib_hour_price");
        bad(&|c| c.safety_factor = 0.8, "cost.safety_factor");
        bad(&|c| c.advice_min_runs = 0, "cost.advice_min_runs");
        bad(&|c| c.near_limit = 1.5, "cost.near_limit");
        bad(&|c| c.window_days = 0, "cost.window_days");
        bad(
            &|c| {
                c.namespaces.insert(
                    "x".into(),
                    PriceOverride {
                        core_hour_price: None,
                        gib_hour_price: Some(-2.0),
                    },
                );
            },
            "cost.namespaces.x.gib_hour_price",
        );
    }
}
