use super::*;
use crate::spec::Levels;

fn at(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    let tz: Tz = tz.parse().unwrap();
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

fn z(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    at("UTC", y, mo, d, h, mi)
}

fn cad(expr: &str, tz: &str) -> Cadence {
    Cadence::new(expr, tz, 0, "").unwrap()
}

const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;

#[test]
fn expressions() {
    let c = cad("0 2 * * *", "UTC");
    assert_eq!(c.next_after(z(2025, 1, 1, 0, 0)), Some(z(2025, 1, 1, 2, 0)));
    // Strictly after: a fire time equal to `after` is not next.
    assert_eq!(c.next_after(z(2025, 1, 1, 2, 0)), Some(z(2025, 1, 2, 2, 0)));
    assert_eq!(
        c.next_after(z(2025, 1, 1, 2, 0) + 500),
        Some(z(2025, 1, 2, 2, 0))
    );
    assert_eq!(
        c.latest_at_or_before(z(2025, 1, 1, 2, 0)),
        Some(z(2025, 1, 1, 2, 0))
    );
    // Six fields: seconds first.
    let c = cad("*/10 * * * * *", "UTC");
    assert_eq!(
        c.next_after(z(2025, 1, 1, 0, 0)),
        Some(z(2025, 1, 1, 0, 0) + 10_000)
    );
    // Nicknames.
    let c = cad("@hourly", "UTC");
    assert_eq!(
        c.upcoming(z(2025, 1, 1, 0, 30), 2),
        vec![z(2025, 1, 1, 1, 0), z(2025, 1, 1, 2, 0)]
    );
    let c = cad("@midnight", "UTC");
    assert_eq!(
        c.next_after(z(2025, 1, 1, 0, 30)),
        Some(z(2025, 1, 2, 0, 0))
    );
    // @every counts from its anchor.
    let anchor = z(2025, 1, 1, 0, 3);
    let c = Cadence::new("@every 10m", "Europe/Berlin", anchor, "").unwrap();
    assert_eq!(c.next_after(anchor - 1), Some(anchor));
    assert_eq!(c.next_after(anchor), Some(anchor + 10 * MIN));
    assert_eq!(
        c.latest_at_or_before(anchor + 25 * MIN),
        Some(anchor + 20 * MIN)
    );
    assert_eq!(
        c.upcoming(anchor, 3),
        vec![anchor + 10 * MIN, anchor + 20 * MIN, anchor + 30 * MIN]
    );
    for (bad, want) in [
        ("* * *", "3 fields"),
        ("0 0 0 1 1 * 2030", "7 fields"),
        ("61 * * * *", "not a cron expression"),
        ("@every soon", "@every DURATION"),
        ("@every 500ms", "at least one second"),
        ("0 0 30 2 *", "never matches"),
        ("@fortnightly", "not a cron expression"),
    ] {
        let e = Cadence::new(bad, "UTC", 0, "spec").unwrap_err().to_string();
        assert!(
            e.contains("spec.schedule") && e.contains(want),
            "{bad}: {e}"
        );
    }
    let e = Cadence::new("@daily", "Mars/Olympus", 0, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("timeZone") && e.contains("Mars/Olympus"), "{e}");
    // Local is taken as UTC.
    assert_eq!(
        cad("0 2 * * *", "Local").next_after(0),
        cad("0 2 * * *", "UTC").next_after(0)
    );
}

#[test]
fn time_zone_shifts_fire_times() {
    let c = cad("0 9 * * *", "America/New_York");
    // 09:00 EST = 14:00 UTC in January, 09:00 EDT = 13:00 UTC in July.
    assert_eq!(
        c.next_after(z(2025, 1, 10, 0, 0)),
        Some(z(2025, 1, 10, 14, 0))
    );
    assert_eq!(
        c.next_after(z(2025, 7, 10, 0, 0)),
        Some(z(2025, 7, 10, 13, 0))
    );
    assert_eq!(c.format(z(2025, 7, 10, 13, 0)), "2025-07-10T09:00:00-04:00");
}

/// The fire times of `c` during the local day `y-m-d` in `tz`.
fn day_runs(c: &Cadence, tz: &str, y: i32, mo: u32, d: u32) -> Vec<i64> {
    let start = at(tz, y, mo, d, 0, 0);
    let next = chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|n| n.succ_opt())
        .unwrap();
    use chrono::Datelike;
    let end = at(tz, next.year(), next.month(), next.day(), 0, 0);
    let mut out = Vec::new();
    let mut t = start - 1;
    while let Some(n) = c.next_after(t) {
        if n >= end {
            break;
        }
        out.push(n);
        t = n;
    }
    out
}

#[test]
fn dst_spring_forward_fixed_time_runs_once_after_the_gap() {
    // Berlin, 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    let c = cad("30 2 * * *", "Europe/Berlin");
    let runs = day_runs(&c, "Europe/Berlin", 2025, 3, 30);
    assert_eq!(
        runs,
        vec![z(2025, 3, 30, 1, 0)],
        "once, at 03:00 CEST (01:00 UTC)"
    );
    assert_eq!(c.format(runs[0]), "2025-03-30T03:00:00+02:00");
    // The days around keep their 02:30.
    assert_eq!(
        day_runs(&c, "Europe/Berlin", 2025, 3, 29),
        vec![z(2025, 3, 29, 1, 30)]
    );
    assert_eq!(
        day_runs(&c, "Europe/Berlin", 2025, 3, 31),
        vec![z(2025, 3, 31, 0, 30)]
    );
    // A fixed time outside the gap is unaffected.
    let c = cad("30 3 * * *", "Europe/Berlin");
    assert_eq!(
        day_runs(&c, "Europe/Berlin", 2025, 3, 30),
        vec![z(2025, 3, 30, 1, 30)]
    );
}

#[test]
fn dst_fall_back_fixed_time_runs_once_at_the_first_instant() {
    // Berlin, 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    let c = cad("30 2 * * *", "Europe/Berlin");
    let runs = day_runs(&c, "Europe/Berlin", 2025, 10, 26);
    assert_eq!(runs, vec![z(2025, 10, 26, 0, 30)], "once, at 02:30 CEST");
    assert_eq!(c.format(runs[0]), "2025-10-26T02:30:00+02:00");
}

#[test]
fn dst_interval_schedules_follow_real_time() {
    let c = cad("0 * * * *", "Europe/Berlin");
    let spring = day_runs(&c, "Europe/Berlin", 2025, 3, 30);
    assert_eq!(spring.len(), 23);
    let fall = day_runs(&c, "Europe/Berlin", 2025, 10, 26);
    assert_eq!(fall.len(), 25);
    // Every run is one real hour after the previous: none twice, none dropped.
    for w in spring.windows(2).chain(fall.windows(2)) {
        assert_eq!(w[1] - w[0], HOUR);
    }
    // @every ignores the zone entirely.
    let e = Cadence::new(
        "@every 1h",
        "Europe/Berlin",
        at("Europe/Berlin", 2025, 10, 26, 0, 0),
        "",
    )
    .unwrap();
    assert_eq!(day_runs(&e, "Europe/Berlin", 2025, 10, 26).len(), 25);
}

#[test]
fn plan_on_time_and_not_yet() {
    let c = cad("0 * * * *", "UTC");
    let next = z(2025, 1, 1, 10, 0);
    let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, next - 1, MIN);
    assert_eq!(p.fire_for, None);
    assert_eq!(p.next_fire_at, Some(next));
    let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, next + 300, MIN);
    assert_eq!(p.fire_for, Some(next));
    assert!(!p.catch_up);
    assert_eq!(p.skipped, 0);
    assert_eq!(p.next_fire_at, Some(z(2025, 1, 1, 11, 0)));
}

#[test]
fn plan_after_downtime() {
    // Down from 09:59 to 13:20: 10:00, 11:00, 12:00 and 13:00 were missed.
    let c = cad("0 * * * *", "UTC");
    let next = z(2025, 1, 1, 10, 0);
    let now = z(2025, 1, 1, 13, 20);
    let skip = plan_fire(&c, MissedRunPolicy::Skip, HOUR, next, now, MIN);
    assert_eq!(skip.fire_for, None);
    assert_eq!(skip.skipped, 4);
    assert_eq!(skip.skipped_range, Some((next, z(2025, 1, 1, 13, 0))));
    assert_eq!(skip.next_fire_at, Some(z(2025, 1, 1, 14, 0)));
    let once = plan_fire(&c, MissedRunPolicy::RunOnce, HOUR, next, now, MIN);
    assert_eq!(
        once.fire_for,
        Some(z(2025, 1, 1, 13, 0)),
        "one run, for the latest"
    );
    assert!(once.catch_up);
    assert_eq!(once.skipped, 3);
    assert_eq!(once.skipped_range, Some((next, z(2025, 1, 1, 12, 0))));
    assert_eq!(once.next_fire_at, Some(z(2025, 1, 1, 14, 0)));
    // Beyond the catch-up window: nothing is caught up.
    let old = plan_fire(&c, MissedRunPolicy::RunOnce, 10 * MIN, next, now, MIN);
    assert_eq!(old.fire_for, None);
    assert_eq!(old.skipped, 4);
    // Back just in time for a fire time: it runs on time under either policy; the earlier
    // missed ones are dropped.
    let now = z(2025, 1, 1, 13, 0) + 5_000;
    for policy in [MissedRunPolicy::Skip, MissedRunPolicy::RunOnce] {
        let p = plan_fire(&c, policy, HOUR, next, now, MIN);
        assert_eq!(p.fire_for, Some(z(2025, 1, 1, 13, 0)));
        assert!(!p.catch_up);
        assert_eq!(p.skipped, 3);
    }
    // A daily schedule down for a week, run-once with a 2-day window: one catch-up.
    let c = cad("0 2 * * *", "UTC");
    let p = plan_fire(
        &c,
        MissedRunPolicy::RunOnce,
        48 * HOUR,
        z(2025, 1, 1, 2, 0),
        z(2025, 1, 8, 9, 0),
        MIN,
    );
    assert_eq!(p.fire_for, Some(z(2025, 1, 8, 2, 0)));
    assert_eq!(p.skipped, 7);
    assert_eq!(p.next_fire_at, Some(z(2025, 1, 9, 2, 0)));
}

#[test]
fn plan_counts_are_bounded() {
    let c = cad("* * * * * *", "UTC");
    let now = 10 * 86_400_000;
    let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, 0, now, 1000);
    assert_eq!(p.fire_for, Some(now));
    assert_eq!(p.skipped, MAX_COUNTED_MISSES);
    let p = plan_fire(&c, MissedRunPolicy::Skip, HOUR, 0, now + 1500, 100);
    assert_eq!(p.fire_for, None);
    assert_eq!(p.skipped, MAX_COUNTED_MISSES + 1);
}

#[test]
fn concurrency() {
    let none: Vec<String> = vec![];
    let one = vec!["j1".to_string()];
    for p in [
        ConcurrencyPolicy::Allow,
        ConcurrencyPolicy::Forbid,
        ConcurrencyPolicy::Replace,
    ] {
        assert_eq!(concurrency_action(p, &none), ConcurrencyAction::Fire);
    }
    assert_eq!(
        concurrency_action(ConcurrencyPolicy::Allow, &one),
        ConcurrencyAction::Fire
    );
    match concurrency_action(ConcurrencyPolicy::Forbid, &one) {
        ConcurrencyAction::Skip { reason } => assert!(reason.contains("j1"), "{reason}"),
        a => panic!("{a:?}"),
    }
    assert_eq!(
        concurrency_action(ConcurrencyPolicy::Replace, &one),
        ConcurrencyAction::Replace {
            cancel: one.clone()
        }
    );
    assert_eq!(
        "forbid".parse::<ConcurrencyPolicy>(),
        Ok(ConcurrencyPolicy::Forbid)
    );
    assert!(
        "Sometimes"
            .parse::<ConcurrencyPolicy>()
            .unwrap_err()
            .contains("Allow, Forbid, Replace")
    );
}

fn parse(text: &str) -> Result<Schedule, SpecError> {
    parse_schedule(
        text,
        ParseOptions {
            priority: None,
            levels: &Levels::default(),
        },
        0,
    )
}

#[test]
fn own_schedule_document() {
    let s = parse(
            "name: nightly\nnamespace: etl\nschedule: \"30 2 * * *\"\ntimeZone: Europe/Berlin\nconcurrencyPolicy: Forbid\nmissedRunPolicy: Skip\ncatchUpWindow: 2h\npriority: high\ntemplate:\n  labels: {team: data}\n  retry: {maxAttempts: 2}\n  command: {argv: [echo, hi]}\n",
        )
        .unwrap();
    assert_eq!((s.namespace.as_str(), s.name.as_str()), ("etl", "nightly"));
    assert_eq!(s.template.name, "nightly");
    assert_eq!(s.template.level, "high");
    assert_eq!(s.concurrency, ConcurrencyPolicy::Forbid);
    assert_eq!(s.missed_runs, MissedRunPolicy::Skip);
    assert_eq!(s.catch_up_window_secs, 7200);
    assert_eq!(s.policy.max_attempts(), 2);
    // Defaults.
    let s = parse("name: a\nschedule: \"@every 10m\"\ntemplate: {command: {argv: [ls]}}").unwrap();
    assert_eq!(s.namespace, "default");
    assert_eq!(s.time_zone, "UTC");
    assert_eq!(s.concurrency, ConcurrencyPolicy::Allow);
    assert_eq!(s.missed_runs, MissedRunPolicy::RunOnce);
    assert_eq!(s.catch_up_window_secs, DEFAULT_CATCH_UP_WINDOW_SECS);
    let bad: &[(&str, &str, &str)] = &[
        (
            "name: a\ntemplate: {command: {argv: [ls]}}",
            "`schedule`",
            "",
        ),
        ("name: a\nschedule: \"@daily\"", "`template`", ""),
        (
            "name: a\nschedule: \"@daily\"\nschedul: x\ntemplate: {command: {argv: [ls]}}",
            "`schedul`",
            "",
        ),
        (
            "name: a\nschedule: \"@daily\"\ntemplate: {command: {argv: [ls], memroy: 1g}}",
            "`template.command.memroy`",
            "",
        ),
        (
            "name: a\nschedule: \"@daily\"\ntemplate: {command: {argv: [ls], memory: 12qb}}",
            "`template.command.memory`",
            "12qb",
        ),
        (
            "name: a\nschedule: \"@daily\"\ntemplate: {retry: {maxAttempts: 0}, command: {argv: [ls]}}",
            "`template.retry.maxAttempts`",
            "0",
        ),
        (
            "name: a\nschedule: \"99 * * * *\"\ntemplate: {command: {argv: [ls]}}",
            "`schedule`",
            "99 * * * *",
        ),
        (
            "name: a\nschedule: \"@daily\"\ntimeZone: Nowhere/City\ntemplate: {command: {argv: [ls]}}",
            "`timeZone`",
            "Nowhere/City",
        ),
        (
            "name: a\nschedule: \"@daily\"\nconcurrencyPolicy: Sometimes\ntemplate: {command: {argv: [ls]}}",
            "`concurrencyPolicy`",
            "Sometimes",
        ),
        (
            "name: a\nschedule: \"@daily\"\nmissedRunPolicy: All\ntemplate: {command: {argv: [ls]}}",
            "`missedRunPolicy`",
            "All",
        ),
        (
            "name: a\nnamespace: x\nschedule: \"@daily\"\ntemplate: {namespace: other, command: {argv: [ls]}}",
            "`template.namespace`",
            "other",
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}",
            "`kind`",
            "CronJob",
        ),
    ];
    for (text, field, value) in bad {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.contains(field) && e.contains(value), "{text}: {e}");
    }
}

#[test]
fn scheduled_spark_application() {
    let text = r#"
apiVersion: sparkoperator.k8s.io/v1beta2
kind: ScheduledSparkApplication
metadata:
  name: spark-pi-scheduled
  namespace: default
  labels: {sluice.io/priority: high}
  annotations: {sluice.io/missed-run-policy: Skip}
spec:
  schedule: "@every 3m"
  concurrencyPolicy: Replace
  timeZone: Europe/Paris
  successfulRunHistoryLimit: 3
  template:
    type: Python
    mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
    sparkVersion: 4.0.4
    image: docker.io/apache/spark:4.0.4
    restartPolicy: {type: OnFailure, onFailureRetries: 2, onFailureRetryInterval: 1}
    driver: {cores: 1, memory: 512m}
    executor: {cores: 1, instances: 1, memory: 512m}
"#;
    let s = parse(text).unwrap();
    assert_eq!(s.name, "spark-pi-scheduled");
    assert_eq!(s.cron, "@every 3m");
    assert_eq!(s.time_zone, "Europe/Paris");
    assert_eq!(s.concurrency, ConcurrencyPolicy::Replace);
    assert_eq!(s.missed_runs, MissedRunPolicy::Skip);
    assert_eq!(s.template.level, "high");
    assert_eq!(s.policy.max_attempts(), 3);
    let crate::spec::JobKind::Spark { application, .. } = &s.template.kind else {
        panic!("not spark")
    };
    let app = application.as_ref().unwrap();
    assert_eq!(app["kind"], "SparkApplication");
    assert_eq!(app["spec"]["image"], "docker.io/apache/spark:4.0.4");
    // Errors point into spec.template.
    let e = parse(&text.replace("memory: 512m}\n    executor", "memory: 12qb}\n    executor"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spec.template.driver.memory") && e.contains("12qb"),
        "{e}"
    );
    let e = parse(&text.replace("  schedule: \"@every 3m\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("spec.schedule"), "{e}");
    // Default zone of a ScheduledSparkApplication is Local (read as UTC).
    let s = parse(&text.replace("  timeZone: Europe/Paris\n", "")).unwrap();
    assert_eq!(s.time_zone, "Local");
}

#[test]
fn shipped_schedule_examples_parse() {
    let dir = format!("{}/../../examples/schedules", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 2, "expected schedule examples in {dir}");
}
