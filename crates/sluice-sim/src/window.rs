//! A daily batch window: the hours of each day (trace time 0 is the start of day 0) in
//! which a nightly batch arrives. The generator's rhythm submits the batch in it, and the report
//! measures utilisation over it ([`crate::stats::Summary::window_utilisation`]).

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// A window of `length_ms` that opens `start_ms` after the start of every day (a day begins at
/// trace time 0). It may run over midnight (start 22h, length 8h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWindow {
    /// When it opens, ms after the start of each day (0 to 24 h).
    pub start_ms: i64,
    /// How long it stays open, ms (more than 0, less than a day).
    pub length_ms: i64,
}

impl BatchWindow {
    /// From midnight to 6 in the morning: the sample's nightly window.
    pub const NIGHTLY: BatchWindow = BatchWindow {
        start_ms: 0,
        length_ms: 6 * 3_600_000,
    };

    /// A checked window.
    pub fn new(start_ms: i64, length_ms: i64) -> Result<Self, SimError> {
        if !(0..DAY_MS).contains(&start_ms) {
            return Err(bad(
                format!("{start_ms} ms"),
                "opens before the day starts or after it ends (0 to 24 h)",
            ));
        }
        if length_ms <= 0 || length_ms >= DAY_MS {
            return Err(bad(
                format!("{length_ms} ms long"),
                "must be open more than 0 and less than 24 h",
            ));
        }
        Ok(BatchWindow {
            start_ms,
            length_ms,
        })
    }

    /// Parses `FROM-TO`, two times of day in the duration grammar (`0h-6h`, `22h-6h`, `1h
    /// 30m-5h`): the window opens at FROM and closes at TO, the next day when TO is not after
    /// FROM.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let Some((from, to)) = text.split_once('-') else {
            return Err(bad(text, "expected FROM-TO, e.g. 0h-6h"));
        };
        let at = |s: &str| -> Result<i64, SimError> {
            let d = sluice_core::duration::parse("window", s.trim())
                .map_err(|e| bad(text, &e.problem()))?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if ms > DAY_MS {
                return Err(bad(text, "a time of day is at most 24h"));
            }
            Ok(ms % DAY_MS)
        };
        let (from, to) = (at(from)?, at(to)?);
        let length = if to > from {
            to - from
        } else {
            to + DAY_MS - from
        };
        BatchWindow::new(from, length)
    }

    /// Is `t_ms` (from the start of day 0) inside the window?
    pub fn contains(&self, t_ms: i64) -> bool {
        let in_day = t_ms.rem_euclid(DAY_MS);
        let end = self.start_ms + self.length_ms;
        (in_day >= self.start_ms && in_day < end) || in_day + DAY_MS < end
    }

    /// The first moment at or after `t_ms` at which the window opens or closes.
    pub fn next_edge(&self, t_ms: i64) -> i64 {
        let day = t_ms.div_euclid(DAY_MS) * DAY_MS;
        let end = self.start_ms + self.length_ms;
        [
            self.start_ms - DAY_MS,
            end - DAY_MS,
            self.start_ms,
            end,
            self.start_ms + DAY_MS,
            end + DAY_MS,
        ]
        .into_iter()
        .map(|e| day + e)
        .filter(|&e| e > t_ms)
        .min()
        .unwrap_or(t_ms + DAY_MS)
    }

    /// How much of `[a_ms, b_ms)` lies inside the window, ms.
    pub fn overlap(&self, a_ms: i64, b_ms: i64) -> i64 {
        let mut t = a_ms;
        let mut inside = 0;
        while t < b_ms {
            let next = self.next_edge(t).min(b_ms);
            if self.contains(t) {
                inside += next - t;
            }
            t = next;
        }
        inside
    }
}

impl std::fmt::Display for BatchWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |ms: i64| {
            let m = ms.rem_euclid(DAY_MS) / 60_000;
            format!("{}h{:02}", m / 60, m % 60)
        };
        write!(
            f,
            "{}-{}",
            hm(self.start_ms),
            hm(self.start_ms + self.length_ms)
        )
    }
}

fn bad(value: impl ToString, message: &str) -> SimError {
    SimError::Generator {
        key: "window".into(),
        value: value.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn windows_parse_wrap_and_measure_overlap() {
        let w = BatchWindow::parse("0h-6h").unwrap();
        assert_eq!(w, BatchWindow::NIGHTLY);
        assert!(w.contains(0) && w.contains(5 * H + 59 * 60_000) && !w.contains(6 * H));
        assert!(w.contains(DAY_MS + H) && !w.contains(DAY_MS - H));
        assert_eq!(w.overlap(0, 2 * DAY_MS), 12 * H);
        assert_eq!(w.overlap(5 * H, 25 * H), 2 * H);
        let late = BatchWindow::parse("22h-6h").unwrap();
        assert_eq!((late.start_ms, late.length_ms), (22 * H, 8 * H));
        assert!(late.contains(23 * H) && late.contains(2 * H) && !late.contains(12 * H));
        assert_eq!(late.overlap(0, DAY_MS), 8 * H);
        assert_eq!(late.to_string(), "22h00-6h00");
        assert_eq!(
            BatchWindow::parse("1h 30m-5h").unwrap().start_ms,
            90 * 60_000
        );
    }

    #[test]
    fn bad_windows_are_named() {
        for bad in ["6h", "0h-0h", "25h-2h", "x-6h"] {
            let err = BatchWindow::parse(bad).unwrap_err().to_string();
            assert!(err.contains("`window`"), "{bad}: {err}");
        }
    }
}
