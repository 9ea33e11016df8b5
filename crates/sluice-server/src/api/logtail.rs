//! The end of a job's log, for `GET /v1/jobs/{id}/logs?tail=N&since=D` (`sluice logs --tail N
//! --since D`): which lines of the log's last bytes are kept.
//!
//! `tail` keeps the last N lines. `since` keeps the lines whose time is at or after a cutoff;
//! a line's time is the one it begins with: RFC 3339 or ISO 8601 (`2026-12-03T19:10:01Z`,
//! `2026-12-03 19:10:01,123`, an offset like `+01:00` honoured), or log4j's default in Spark
//! (`26/12/03 19:10:01`). A time without a zone is read as UTC. A line without a time (a stack
//! trace's) goes with the line before it; lines before the first timed line go with that line.
//! A log with no timed line at all cannot be cut by time: it is kept whole, and the answer says
//! so (`since_applied: false`).

/// What the end of a log is cut to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cut {
    /// Only the last N lines.
    pub tail: Option<u32>,
    /// Only lines timed at or after this (milliseconds since the epoch).
    pub since_ms: Option<i64>,
}

/// The lines kept of a window of the log's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The kept lines.
    pub text: String,
    /// With `since`: whether any line had a time to cut by.
    pub since_applied: Option<bool>,
    /// Whether the window held everything asked for (else a larger one may hold more).
    pub enough: bool,
}

/// Keeps the lines of `data` (the last bytes of a log; `cut`: the log goes on before them, so
/// the first line may be partial and is dropped) that `c` asks for.
pub fn select(data: &str, cut: bool, c: &Cut) -> Selected {
    let mut lines: Vec<&str> = data.split_inclusive('\n').collect();
    if cut && !lines.is_empty() {
        lines.remove(0);
    }
    let mut since_applied = None;
    let mut reached_before = false;
    if let Some(cutoff) = c.since_ms {
        let times: Vec<Option<i64>> = lines.iter().map(|l| line_time(l)).collect();
        let first = times.iter().flatten().next().copied();
        since_applied = Some(first.is_some());
        if let Some(first) = first {
            reached_before = times.iter().flatten().any(|t| *t < cutoff);
            let mut current = first;
            let mut kept = Vec::with_capacity(lines.len());
            for (line, t) in lines.iter().zip(&times) {
                if let Some(t) = t {
                    current = *t;
                }
                if current >= cutoff {
                    kept.push(*line);
                }
            }
            lines = kept;
        }
    }
    let mut enough = !cut || reached_before;
    if let Some(n) = c.tail {
        let n = n as usize;
        if lines.len() >= n {
            enough = true;
            lines.drain(..lines.len() - n);
        }
    }
    Selected {
        text: lines.concat(),
        since_applied,
        enough,
    }
}

/// The time a log line begins with (after an optional `[`), in milliseconds since the epoch.
pub fn line_time(line: &str) -> Option<i64> {
    let s = line.strip_prefix('[').unwrap_or(line).as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let at = |i: usize, c: u8| s.get(i) == Some(&c);
    // 2026-12-03T19:10:01 / 2026-12-03 19:10:01
    let (y, mo, d, time_at) = if at(4, b'-') && at(7, b'-') && (at(10, b'T') || at(10, b' ')) {
        (num(0, 4)?, num(5, 2)?, num(8, 2)?, 11)
    } else if at(2, b'/') && at(5, b'/') && at(8, b' ') {
        // 26/12/03 19:10:01 (yy/MM/dd)
        (2000 + num(0, 2)?, num(3, 2)?, num(6, 2)?, 9)
    } else {
        return None;
    };
    if !(at(time_at + 2, b':') && at(time_at + 5, b':')) {
        return None;
    }
    let (h, mi, sec) = (num(time_at, 2)?, num(time_at + 3, 2)?, num(time_at + 6, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = time_at + 8;
    let mut ms = 0i64;
    if at(i, b'.') || at(i, b',') {
        i += 1;
        let digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let frac = &s[i..i + digits];
        for (k, b) in frac.iter().take(3).enumerate() {
            ms += i64::from(b - b'0') * [100, 10, 1][k];
        }
        i += digits;
    }
    let offset_min = match s.get(i) {
        Some(b'+' | b'-') => {
            let sign = if s[i] == b'-' { -1 } else { 1 };
            let oh = num(i + 1, 2)?;
            let om = if at(i + 3, b':') {
                num(i + 4, 2)?
            } else {
                num(i + 3, 2).unwrap_or(0)
            };
            sign * (oh * 60 + om)
        }
        _ => 0,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_325_001_000; // 2026-12-03T19:10:01Z

    #[test]
    fn line_times_in_the_usual_forms() {
        let cases: &[(&str, Option<i64>)] = &[
            ("2026-12-03T19:10:01Z starting", Some(T0)),
            ("2026-12-03 19:10:01,250 INFO x", Some(T0 + 250)),
            ("2026-12-03T19:10:01.5Z", Some(T0 + 500)),
            ("2026-12-03T20:10:01+01:00 x", Some(T0)),
            ("2026-12-03T18:40:01-0030 x", Some(T0)),
            ("[2026-12-03T19:10:01Z] x", Some(T0)),
            (
                "26/12/03 19:10:01 INFO SparkContext: Running Spark",
                Some(T0),
            ),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("\tat org.apache.Foo(Foo.java:1)", None),
            ("2026-13-03T19:10:01Z month 13", None),
            ("hello", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(line_time(line), *want, "{line:?}");
        }
    }

    fn lines(ts: &[(i64, &str)]) -> String {
        ts.iter()
            .map(|(secs, m)| {
                if *secs < 0 {
                    format!("{m}\n")
                } else {
                    let t = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis((T0 + secs * 1000) as u64);
                    format!("{} {m}\n", humantime::format_rfc3339_seconds(t))
                }
            })
            .collect()
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let c = Cut {
            tail: Some(2),
            since_ms: None,
        };
        let s = select("a\nb\nc\nd\n", false, &c);
        assert_eq!(s.text, "c\nd\n");
        assert!(s.enough);
        assert_eq!(s.since_applied, None);
        // A window that begins inside a line: that line is dropped.
        let s = select("rtial\nb\nc\n", true, &c);
        assert_eq!(s.text, "b\nc\n");
        assert!(s.enough);
        // Not enough lines in a cut window: a bigger one is needed.
        let s = select("rtial\nc\n", true, &c);
        assert_eq!(s.text, "c\n");
        assert!(!s.enough);
        // A last line without its newline yet is a line.
        let s = select("a\nb\nc", false, &c);
        assert_eq!(s.text, "b\nc");
    }

    #[test]
    fn since_keeps_lines_from_the_cutoff_with_their_untimed_followers() {
        let log = lines(&[
            (-1, "banner before any time"),
            (0, "old"),
            (-1, "  old's trace"),
            (60, "new"),
            (-1, "  new's trace"),
            (120, "newer"),
        ]);
        let c = Cut {
            tail: None,
            since_ms: Some(T0 + 30_000),
        };
        let s = select(&log, false, &c);
        assert_eq!(s.since_applied, Some(true));
        let kept: Vec<&str> = s
            .text
            .lines()
            .map(|l| l.rsplit('Z').next().unwrap())
            .collect();
        assert_eq!(kept, vec![" new", "  new's trace", " newer"]);
        assert!(s.enough);
        // A cut window whose lines are all newer than the cutoff: more may be older.
        let s = select(&lines(&[(-1, "x"), (60, "new")]), true, &c);
        assert!(!s.enough);
        // With tail too: the last N of those.
        let c = Cut {
            tail: Some(1),
            since_ms: Some(T0 + 30_000),
        };
        assert!(select(&log, false, &c).text.ends_with(" newer\n"));
    }

    #[test]
    fn since_on_a_log_without_times_keeps_it_whole_and_says_so() {
        let c = Cut {
            tail: None,
            since_ms: Some(T0),
        };
        let s = select("hello\nworld\n", false, &c);
        assert_eq!(s.text, "hello\nworld\n");
        assert_eq!(s.since_applied, Some(false));
    }
}
