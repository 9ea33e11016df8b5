use super::*;

#[test]
fn grammar_table() {
    let ok: &[(&str, u64)] = &[
        ("90", 90_000),
        ("0", 0),
        (" 45 ", 45_000),
        ("90s", 90_000),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("1h  30m 15s", 5_415_000),
        ("500ms", 500),
        ("1s500ms", 1_500),
        ("2d", 172_800_000),
        ("0s", 0),
        ("10m", 600_000),
    ];
    for (text, ms) in ok {
        assert_eq!(parse("f", text), Ok(Duration::from_millis(*ms)), "{text:?}");
    }
    let bad = [
        "",
        " ",
        "m",
        "5 minutes",
        "1.5h",
        "-1s",
        "10x",
        "h1",
        "1h30",
        "s10",
        "1 h",
    ];
    for text in bad {
        let e = parse("spec.field", text).expect_err(text);
        assert!(
            matches!(e, DurationError::Malformed { .. }),
            "{text:?}: {e}"
        );
        assert!(e.to_string().contains("`spec.field`"), "{e}");
        assert!(e.to_string().contains(&format!("{text:?}")), "{e}");
    }
    for text in [
        "99999999999999999999",
        "999999999999999999d",
        "18446744073709551615s",
    ] {
        assert!(
            matches!(parse("f", text), Err(DurationError::TooLarge { .. })),
            "{text:?}"
        );
    }
    assert!(matches!(
        parse_positive("f", "0ms"),
        Err(DurationError::Zero { .. })
    ));
    assert_eq!(parse_positive("f", "1ms"), Ok(Duration::from_millis(1)));
    let e = parse("older_than", "soon").unwrap_err();
    assert_eq!(e.field(), "older_than");
    assert_eq!(e.value(), "soon");
    assert!(
        e.problem().starts_with("is not a duration"),
        "{}",
        e.problem()
    );
}
