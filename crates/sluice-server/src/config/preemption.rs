//! `[scheduler.preemption]`: which queued jobs may stop running jobs of lower priority to make
//! room, in which namespaces, with what grace period and how often per job (see
//! `docs/scheduling.md`, "Preemption"). Off by default.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sluice_core::cycle::PreemptionSettings;

use super::{ConfigError, duration, invalid};

/// `[scheduler.preemption]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PreemptionConfig {
    /// Levels whose queued jobs may preempt (names from `scheduler.levels`); empty: off.
    pub enabled_levels: Vec<String>,
    /// Namespaces that take part: their jobs may preempt and be preempted. Empty: every
    /// namespace.
    pub namespaces: Vec<String>,
    /// How long a victim is given to stop after it is told to (SIGTERM on the local backend,
    /// then SIGKILL), ms or a duration text.
    #[serde(deserialize_with = "duration::ms")]
    pub grace_ms: u64,
    /// A job preempted this many times is not preempted again (it runs to its end).
    pub max_per_job: u32,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        PreemptionConfig {
            enabled_levels: Vec::new(),
            namespaces: Vec::new(),
            grace_ms: 30_000,
            max_per_job: 3,
        }
    }
}

impl PreemptionConfig {
    /// Checks the levels against `scheduler.levels` and the other values.
    pub fn validate(&self, levels: &[String]) -> Result<(), ConfigError> {
        for l in &self.enabled_levels {
            if !levels.contains(l) {
                return Err(invalid(
                    "scheduler.preemption.enabled_levels",
                    l,
                    format!("is not one of scheduler.levels ({})", levels.join(", ")),
                ));
            }
        }
        // The lowest level has nobody below it to preempt.
        if let Some(last) = levels.last()
            && self.enabled_levels.contains(last)
        {
            return Err(invalid(
                "scheduler.preemption.enabled_levels",
                last,
                "is the lowest level: there is no lower priority to preempt",
            ));
        }
        for ns in &self.namespaces {
            if ns.is_empty() || ns.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "scheduler.preemption.namespaces",
                    ns,
                    "must be a namespace name",
                ));
            }
        }
        if !self.enabled_levels.is_empty() && self.max_per_job == 0 {
            return Err(invalid(
                "scheduler.preemption.max_per_job",
                0,
                "must be at least 1 when preemption is on (leave enabled_levels empty to turn it off)",
            ));
        }
        if self.grace_ms > 3_600_000 {
            return Err(invalid(
                "scheduler.preemption.grace_ms",
                self.grace_ms,
                "must be at most one hour",
            ));
        }
        Ok(())
    }

    /// True when some level may preempt.
    pub fn enabled(&self) -> bool {
        !self.enabled_levels.is_empty()
    }

    /// The cycle's settings, for `levels` (highest first).
    pub fn settings(&self, levels: &[String]) -> PreemptionSettings {
        PreemptionSettings {
            levels: levels
                .iter()
                .map(|l| self.enabled_levels.contains(l))
                .collect(),
            namespaces: (!self.namespaces.is_empty()).then(|| {
                self.namespaces
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<String>>()
            }),
            max_per_job: self.max_per_job,
        }
    }

    /// The grace period.
    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Vec<String> {
        vec!["high".into(), "normal".into(), "low".into()]
    }

    #[test]
    fn off_by_default_and_settings_follow_the_levels() {
        let c = PreemptionConfig::default();
        assert!(!c.enabled());
        assert!(c.validate(&levels()).is_ok());
        assert!(!c.settings(&levels()).enabled());
        let c = PreemptionConfig {
            enabled_levels: vec!["high".into(), "normal".into()],
            namespaces: vec!["etl".into()],
            ..PreemptionConfig::default()
        };
        let s = c.settings(&levels());
        assert_eq!(s.levels, vec![true, true, false]);
        assert!(s.may_preempt("etl", 1));
        assert!(!s.may_preempt("web", 0));
        assert_eq!(s.max_per_job, 3);
    }

    #[test]
    fn bad_values_name_the_key_and_value() {
        let bad = [
            (
                PreemptionConfig {
                    enabled_levels: vec!["urgent".into()],
                    ..PreemptionConfig::default()
                },
                "urgent",
            ),
            (
                PreemptionConfig {
                    enabled_levels: vec!["low".into()],
                    ..PreemptionConfig::default()
                },
                "lowest level",
            ),
            (
                PreemptionConfig {
                    enabled_levels: vec!["high".into()],
                    max_per_job: 0,
                    ..PreemptionConfig::default()
                },
                "max_per_job",
            ),
            (
                PreemptionConfig {
                    namespaces: vec!["a b".into()],
                    ..PreemptionConfig::default()
                },
                "namespaces",
            ),
        ];
        for (c, want) in bad {
            let e = c.validate(&levels()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("scheduler.preemption"), "{e}");
        }
    }

    fn load_toml(text: &str) -> Result<super::super::Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        super::super::Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_")
    }

    #[test]
    fn preemption_keys() {
        let c = load_toml(
            r#"
[scheduler]
levels = ["high", "normal", "low"]
[scheduler.preemption]
enabled_levels = ["high", "normal"]
namespaces = ["etl"]
grace_ms = "5s"
max_per_job = 2
"#,
        )
        .unwrap();
        let p = &c.scheduler.preemption;
        assert_eq!((p.grace_ms, p.max_per_job), (5_000, 2));
        assert_eq!(
            p.settings(&c.scheduler.levels).levels,
            vec![true, true, false]
        );
        let e = load_toml("[scheduler.preemption]\nenabled_levels = [\"urgent\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scheduler.preemption.enabled_levels") && e.contains("urgent"),
            "{e}"
        );
    }
}
