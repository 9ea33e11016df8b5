//! Reading Spark event logs from disk: a real rolling, zstd-compressed log written by Spark 4
//! (`pi.py 4` on `local[2]`, Spark's defaults), a plain file, a truncated compressed file, and a
//! codec sluice does not read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sluice_backend::eventlog::{EventLogError, read};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eventlog/eventlog_v2_local-1796308632235")
}

#[test]
fn a_real_rolling_zstd_log_from_spark() {
    let u = read(&fixture()).unwrap();
    assert!(u.complete, "{u:#?}");
    assert_eq!(u.bad_lines, 0);
    assert_eq!(u.app_id.as_deref(), Some("local-1796308632235"));
    let d = &u.executors["driver"];
    assert_eq!(d.tasks, 4);
    assert_eq!(d.cores, Some(2));
    assert!(d.run_time_ms > 0 && d.cpu_time_ns > 0);
    assert!(d.peaks.jvm_heap > 0);
    // The same file read directly (not through its directory) gives the same.
    let file = fixture().join("events_1_local-1796308632235.zstd");
    assert_eq!(read(&file).unwrap(), u);
}

#[test]
fn a_truncated_compressed_log_is_read_as_far_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture().join("events_1_local-1796308632235.zstd")).unwrap();
    let cut = dir.path().join("events_1_local-1.zstd.inprogress");
    std::fs::write(&cut, &bytes[..bytes.len() * 9 / 10]).unwrap();
    let u = read(&cut).unwrap();
    assert!(!u.complete);
    assert!(u.app_id.is_some(), "the start was read");
}

#[test]
fn plain_logs_and_refused_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("local-1");
    std::fs::write(
        &plain,
        "{\"Event\":\"SparkListenerApplicationStart\",\"App ID\":\"local-1\",\"Timestamp\":1}\n\
         {\"Event\":\"SparkListenerApplicationEnd\",\"Timestamp\":2}\n",
    )
    .unwrap();
    let u = read(&plain).unwrap();
    assert!(u.complete);
    assert_eq!((u.start_ms, u.end_ms), (Some(1), Some(2)));
    let lz4 = dir.path().join("local-2.lz4");
    std::fs::write(&lz4, b"whatever").unwrap();
    let e = read(&lz4).unwrap_err();
    assert!(
        matches!(e, EventLogError::Codec { ref codec, .. } if codec == "lz4"),
        "{e}"
    );
    assert!(
        e.to_string().contains("spark.eventLog.compression.codec"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(read(empty.path()), Err(EventLogError::Empty(_))));
    assert!(matches!(
        read(&dir.path().join("missing")),
        Err(EventLogError::Io { .. })
    ));
}
