use super::*;

#[test]
fn redacts_passwords_only() {
    assert_eq!(
        redact_url("postgres://u:secret@h:5432/db?x=1"),
        "postgres://u:***@h:5432/db?x=1"
    );
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_url("sqlite:///tmp/a@b:c"), "sqlite:///tmp/a@b:c");
    assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
}

#[test]
fn messages_name_the_problem() {
    let e = StoreError::Conflict {
        id: "j1".into(),
        expected: JobState::Queued,
        actual: JobState::Admitted,
    };
    assert_eq!(
        e.to_string(),
        "job \"j1\" is admitted, not queued: it was changed by someone else in the meantime"
    );
    let e = StoreError::BadUrl("mysql://x".into());
    assert!(e.to_string().contains("sqlite://PATH"), "{e}");
}

#[test]
fn unavailability_by_driver_error() {
    let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    for e in [
        sqlx::Error::Io(refused()),
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
        sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed,
    ] {
        let text = e.to_string();
        let e = StoreError::from(e);
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(e.is_unavailable(), "{e:?}");
        // The client sees no driver text; the log line has it.
        assert!(!e.to_string().contains(&text), "{e}");
        assert!(e.detail().contains(&text), "{}", e.detail());
    }
    for e in [
        sqlx::Error::RowNotFound,
        sqlx::Error::Protocol("unexpected message".into()),
        sqlx::Error::ColumnNotFound("x".into()),
    ] {
        let text = e.to_string();
        let e = StoreError::from(e);
        assert!(matches!(e, StoreError::Database(_)), "{e:?}");
        assert!(!e.is_unavailable(), "{e:?}");
        assert_eq!(e.to_string(), "database error");
        assert!(e.detail().contains(&text), "{}", e.detail());
    }
    let connect = StoreError::Connect {
        url: "postgres://u@h/db".into(),
        source: sqlx::Error::Io(refused()),
    };
    assert!(connect.is_unavailable());
    let bad_password = StoreError::Connect {
        url: "postgres://u@h/db".into(),
        source: sqlx::Error::Configuration("bad".into()),
    };
    assert!(!bad_password.is_unavailable());
    for other in [
        StoreError::NotFound("j".into()),
        StoreError::BadQuery("step".into()),
        StoreError::Corrupt("x".into()),
        StoreError::InvalidInput {
            field: "name".into(),
            value: "a\0".into(),
        },
    ] {
        assert!(!other.is_unavailable(), "{other:?}");
    }
}

#[test]
fn unavailability_by_database_code() {
    for code in [
        "08000", "08003", "08006", "08001", "08P01", "57P01", "57P02", "57P03", "53300", "25006",
    ] {
        assert!(code_is_unavailable(Driver::Postgres, code), "{code}");
    }
    // Unique violation, syntax error, character not in repertoire (a NUL byte), query cancelled,
    // serialization failure: not unavailability.
    for code in ["23505", "42601", "22021", "57014", "40001", ""] {
        assert!(!code_is_unavailable(Driver::Postgres, code), "{code}");
    }
    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT (517), SQLITE_LOCKED_SHAREDCACHE (262),
    // SQLITE_IOERR_WRITE (778).
    for code in ["5", "6", "517", "262", "778", "10"] {
        assert!(code_is_unavailable(Driver::Sqlite, code), "{code}");
    }
    // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_TOOBIG, not a number.
    for code in ["2067", "1", "18", "x", ""] {
        assert!(!code_is_unavailable(Driver::Sqlite, code), "{code}");
    }
    assert!(!code_is_unavailable(Driver::Other, "08006"));
}
