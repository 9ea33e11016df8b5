use super::pool::parse_url;
use super::rows::{J_JOB_COLUMNS, JOB_COLUMNS, decode_cursor};
use crate::dialect::Dialect;
use crate::error::StoreError;

#[test]
fn urls() {
    let t = parse_url("sqlite:///tmp/x.db").unwrap();
    assert_eq!(t.dialect, Dialect::Sqlite);
    assert_eq!(t.url, "sqlite:///tmp/x.db?mode=rwc");
    assert_eq!(
        parse_url("sqlite://x.db?mode=ro").unwrap().url,
        "sqlite://x.db?mode=ro"
    );
    assert!(parse_url("sqlite::memory:").unwrap().memory);
    assert_eq!(
        parse_url("postgresql://u@h/db").unwrap().dialect,
        Dialect::Postgres
    );
    for bad in [
        "mysql://u@h/db",
        "sqlite://",
        "postgres://",
        "/tmp/x.db",
        "",
    ] {
        assert!(
            matches!(parse_url(bad), Err(StoreError::BadUrl(_))),
            "{bad}"
        );
    }
    match parse_url("mysql://u:pw@h/db") {
        Err(StoreError::BadUrl(u)) => assert_eq!(u, "mysql://u:***@h/db"),
        _ => panic!("expected BadUrl"),
    }
}

#[test]
fn qualified_columns_match() {
    assert_eq!(J_JOB_COLUMNS.replace("j.", ""), JOB_COLUMNS);
}

#[test]
fn cursors_round_trip() {
    assert_eq!(decode_cursor("17:a:b").unwrap(), (17, "a:b".to_string()));
    assert!(matches!(
        decode_cursor("x:1"),
        Err(StoreError::BadCursor(_))
    ));
    assert!(matches!(
        decode_cursor("17:"),
        Err(StoreError::BadCursor(_))
    ));
    assert!(matches!(decode_cursor("17"), Err(StoreError::BadCursor(_))));
}

/// Every migration file is compiled in, under its own version, for both databases (a file
/// left out of `MIGRATIONS` is never applied, and nothing else would notice).
#[test]
fn every_migration_file_is_registered() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for (db, pick) in [("sqlite", 2usize), ("postgres", 3usize)] {
        let mut files: Vec<(i64, String)> = std::fs::read_dir(root.join(db))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| (n[..4].parse().unwrap(), n))
            .collect();
        files.sort();
        let versions: Vec<i64> = super::pool::MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(
            files.iter().map(|f| f.0).collect::<Vec<_>>(),
            versions,
            "{db}: {files:?}"
        );
        for ((_, name), m) in files.iter().zip(super::pool::MIGRATIONS) {
            let text = std::fs::read_to_string(root.join(db).join(name)).unwrap();
            let compiled = if pick == 2 { m.2 } else { m.3 };
            assert_eq!(text, compiled, "{db}/{name} is not the one compiled in");
        }
    }
}
