//! Durations in the configuration, in the one duration grammar of [`sluice_core::duration`].
//!
//! A duration key takes either a whole number in the unit its name ends with (`interval_ms =
//! 500`, `kill_grace_secs = 10`: every config written before keeps working) or a text in the
//! grammar specs and query parameters use ("90" or "90s", "1h30m", "1h 30m", "500ms", "2d").
//! A text is always read by the grammar, so `interval_ms = "500"` is 500 seconds: write the
//! unit (`interval_ms = "500ms"`). (The keys keep their names: the configuration is merged over
//! its serialized defaults, so an alias would be a duplicate key.)

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A number in the key's unit, or a text in the duration grammar.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Whole(u64),
    Text(String),
}

fn parse<E: de::Error>(text: &str) -> Result<std::time::Duration, E> {
    sluice_core::duration::parse("", text)
        .map_err(|e| E::custom(format!("{text:?} {}", e.problem())))
}

/// Milliseconds: a whole number of them, or a duration text.
pub(crate) fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Whole(n) => Ok(n),
        Raw::Text(t) => u64::try_from(parse::<D::Error>(&t)?.as_millis())
            .map_err(|_| de::Error::custom(format!("{t:?} is too long a duration"))),
    }
}

/// A map of names to milliseconds, each a whole number of them or a duration text.
pub(crate) fn ms_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, u64>, D::Error> {
    let raw = std::collections::BTreeMap::<String, Raw>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let ms = match v {
                Raw::Whole(n) => n,
                Raw::Text(t) => u64::try_from(parse::<D::Error>(&t)?.as_millis())
                    .map_err(|_| de::Error::custom(format!("{t:?} is too long a duration")))?,
            };
            Ok((k, ms))
        })
        .collect()
}

/// Seconds: a whole number of them, or a duration text that is a whole number of seconds.
pub(crate) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Whole(n) => Ok(n),
        Raw::Text(t) => {
            let d = parse::<D::Error>(&t)?;
            if d.subsec_nanos() != 0 {
                return Err(de::Error::custom(format!(
                    "{t:?} is not a whole number of seconds"
                )));
            }
            Ok(d.as_secs())
        }
    }
}

/// Seconds, optional: as [`secs`].
pub(crate) fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    secs(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct T {
        #[serde(default, deserialize_with = "super::ms")]
        interval_ms: u64,
        #[serde(default, deserialize_with = "super::secs")]
        grace_secs: u64,
        #[serde(default, deserialize_with = "super::opt_secs")]
        watchdog_secs: Option<u64>,
    }

    fn t(text: &str) -> Result<T, String> {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(text))
            .extract()
            .map_err(|e: figment::Error| e.to_string())
    }

    #[test]
    fn numbers_in_the_keys_unit_or_texts_in_the_grammar() {
        type Want = (u64, u64, Option<u64>);
        let cases: &[(&str, Want)] = &[
            ("interval_ms = 500", (500, 0, None)),
            ("interval_ms = \"1s\"", (1000, 0, None)),
            ("interval_ms = \"250ms\"", (250, 0, None)),
            ("interval_ms = \"1h 30m\"", (5_400_000, 0, None)),
            ("grace_secs = 10", (0, 10, None)),
            ("grace_secs = \"90\"", (0, 90, None)),
            ("grace_secs = \"1h30m\"", (0, 5400, None)),
            ("watchdog_secs = \"10m\"", (0, 0, Some(600))),
            ("watchdog_secs = 0", (0, 0, Some(0))),
        ];
        for (text, (i, g, w)) in cases {
            let got = t(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                got,
                T {
                    interval_ms: *i,
                    grace_secs: *g,
                    watchdog_secs: *w
                },
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_name_the_key_and_value() {
        for (text, key, value) in [
            ("interval_ms = \"soon\"", "interval_ms", "soon"),
            ("grace_secs = \"1500ms\"", "grace_secs", "1500ms"),
            ("watchdog_secs = \"-1s\"", "watchdog_secs", "-1s"),
            ("interval_ms = -5", "interval_ms", ""),
        ] {
            let e = t(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
            assert!(e.contains(value), "{text}: {e}");
        }
    }
}
