use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration_secs("f", "90s"), Ok(90));
    assert_eq!(parse_duration_secs("f", "1h30m"), Ok(5400));
    assert_eq!(parse_duration_secs("f", "2d"), Ok(172_800));
    assert_eq!(parse_duration_secs("f", "45"), Ok(45));
    assert!(parse_duration_secs("f", "0s").is_err());
    assert!(parse_duration_secs("f", "5 minutes").is_err());
    assert!(parse_duration_secs("f", "m").is_err());
}
