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
