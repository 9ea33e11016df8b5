use super::*;

#[test]
fn sanitize_replaces_controls_but_newline_and_tab() {
    assert!(matches!(sanitize("plain\ttext\nok"), Cow::Borrowed(_)));
    assert_eq!(sanitize("a\0b"), "a\u{FFFD}b");
    assert_eq!(
        sanitize("argv: [\"x\0y\", \"\r\u{1b}[31m\u{7f}\u{85}\"]\n\t"),
        "argv: [\"x\u{FFFD}y\", \"\u{FFFD}\u{FFFD}[31m\u{FFFD}\u{FFFD}\"]\n\t"
    );
    // Other characters, multi-byte ones included, are kept.
    assert_eq!(sanitize("é日本\u{FFFD}"), "é日本\u{FFFD}");
    assert!(!sanitize("\0\0").contains('\0'));
}

#[test]
fn exact_refuses_nul_naming_the_field() {
    assert_eq!(exact("name", "etl").unwrap(), "etl");
    // Other control characters are storable; validation elsewhere decides about them.
    assert_eq!(exact("name", "a\tb").unwrap(), "a\tb");
    match exact("name", "a\0b") {
        Err(StoreError::InvalidInput { field, value }) => {
            assert_eq!(field, "name");
            assert_eq!(value, "a\0b");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let e = exact("name", "a\0b").unwrap_err().to_string();
    assert!(e.contains("name") && e.contains("a\\0b"), "{e}");
    assert!(!e.contains('\0'), "{e:?}");
}

#[test]
fn labels_name_key_or_value() {
    let ok = [("team".to_string(), "data".to_string())];
    assert!(exact_labels(ok.iter().map(|(k, v)| (k, v))).is_ok());
    let bad_value = [("team".to_string(), "da\0ta".to_string())];
    match exact_labels(bad_value.iter().map(|(k, v)| (k, v))) {
        Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, "labels.team"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let bad_key = [("te\0am".to_string(), "data".to_string())];
    match exact_labels(bad_key.iter().map(|(k, v)| (k, v))) {
        Err(StoreError::InvalidInput { field, value }) => {
            assert_eq!(field, "labels");
            assert_eq!(value, "te\0am");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(exact_opt("namespace", None).is_ok());
    assert!(exact_opt("namespace", Some(&"x\0".to_string())).is_err());
}
