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
