//! The shared event-log location: its settings, and finding and reading an application's log
//! under the mount (with a real Spark 4 log, the rolling zstd fixture).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::{SharedEventLog, SharedReadError};

const APP: &str = "local-1796308632235";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eventlog")
        .join(format!("eventlog_v2_{APP}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn settings_are_checked_and_name_the_key() {
    let s = SharedEventLog::new("file:///data/spark-events", None).unwrap();
    assert_eq!(s.dir, "file:///data/spark-events");
    assert_eq!(s.mount, PathBuf::from("/data/spark-events"));
    let s = SharedEventLog::new("/data/ev", None).unwrap();
    assert_eq!(s.dir, "file:///data/ev");
    assert_eq!(s.mount, PathBuf::from("/data/ev"));
    assert_eq!(
        SharedEventLog::new("file:/data/ev", None).unwrap().mount,
        PathBuf::from("/data/ev")
    );
    let s = SharedEventLog::new("s3a://bucket/events", Some(Path::new("/mnt/events"))).unwrap();
    assert_eq!(
        (s.dir.as_str(), s.mount.as_path()),
        ("s3a://bucket/events", Path::new("/mnt/events"))
    );
    let e = SharedEventLog::new("s3a://bucket/events", None).unwrap_err();
    assert_eq!(e.key, "event_log_mount");
    assert!(e.to_string().contains("s3a://bucket/events"), "{e}");
    let e = SharedEventLog::new("file:///x", Some(Path::new("rel/dir"))).unwrap_err();
    assert_eq!((e.key, e.value.as_str()), ("event_log_mount", "rel/dir"));
    for bad in [
        "",
        "relative/dir",
        "file://host-only",
        "with space:/x",
        "nocolon",
    ] {
        let e = SharedEventLog::new(bad, None).unwrap_err();
        assert_eq!(e.key, "event_log_dir", "{bad}");
        assert_eq!(e.value, bad);
    }
    let conf = s.conf();
    let get = |k: &str| {
        conf.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("spark.eventLog.enabled"), Some("true"));
    assert_eq!(get("spark.eventLog.dir"), Some("s3a://bucket/events"));
    assert_eq!(
        get("spark.executor.processTreeMetrics.enabled"),
        Some("true")
    );
    assert_eq!(get("spark.executor.metrics.pollingInterval"), Some("500ms"));
}

#[test]
fn a_real_log_is_found_by_application_id_in_every_layout() {
    let mount = tempfile::tempdir().unwrap();
    let share = SharedEventLog::new(mount.path().to_str().unwrap(), None).unwrap();
    // Missing: the reason names the application and the directory.
    let e = share.measure(APP, 0).unwrap_err();
    assert!(matches!(e, SharedReadError::Missing { .. }), "{e}");
    assert!(
        e.to_string().contains(APP) && e.to_string().contains(&mount.path().display().to_string())
    );
    // A rolling log directory.
    copy_dir(&fixture(), &mount.path().join(format!("eventlog_v2_{APP}")));
    assert_eq!(
        share.log_path(APP).unwrap(),
        mount.path().join(format!("eventlog_v2_{APP}"))
    );
    let rolling = share.measure(APP, 0).unwrap();
    assert!(rolling.complete);
    assert_eq!(rolling.source, "eventlog");
    assert!(rolling.driver.is_some());
    assert!(rolling.task_seconds > 0.0 && rolling.task_cpu_seconds > 0.0);
    // The same log as a single zstd file (Spark's layout without rolling), in progress first:
    // a finished file wins over an in-progress one.
    let single = tempfile::tempdir().unwrap();
    let share = SharedEventLog::new(single.path().to_str().unwrap(), None).unwrap();
    let part = fixture().join(format!("events_1_{APP}.zstd"));
    let progress = single.path().join(format!("{APP}.zstd.inprogress"));
    std::fs::copy(&part, &progress).unwrap();
    assert_eq!(share.log_path(APP).unwrap(), progress);
    std::fs::copy(&part, single.path().join(format!("{APP}.zstd"))).unwrap();
    assert_eq!(
        share.log_path(APP).unwrap(),
        single.path().join(format!("{APP}.zstd"))
    );
    assert_eq!(share.measure(APP, 0).unwrap(), rolling);
    // Another application's log is not this one's.
    assert!(matches!(
        share.measure("app-20250101000000-0001", 0),
        Err(SharedReadError::Missing { .. })
    ));
    // An id that is not a plain file name is never joined to the path.
    for bad in ["../etc/passwd", "a/b", "", ".hidden"] {
        assert!(
            matches!(share.log_path(bad), Err(SharedReadError::BadAppId(_))),
            "{bad}"
        );
    }
}
