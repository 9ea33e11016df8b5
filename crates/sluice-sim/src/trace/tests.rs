use super::*;

const HEADER: &str = "submit,namespace,level,name,driver_cpu,driver_memory,executor_cpu,executor_memory,executors,duration,outcome\n";

#[test]
fn csv_round_trips_through_the_writer() {
    let text =
        format!("{HEADER}0,etl,high,a,1,2g,500m,4g,3,10m,\n1.5,ml,,b,2,1536m,1,1g,0,90,failed\n");
    let jobs = parse(&text).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].line, 2);
    assert_eq!(jobs[0].duration_ms, 600_000);
    assert_eq!(jobs[0].executor, Resources::new(500, 4096));
    assert_eq!(jobs[0].level.as_deref(), Some("high"));
    assert_eq!(jobs[1].submit_ms, 1_500);
    assert_eq!(jobs[1].level, None);
    assert_eq!(jobs[1].outcome, Outcome::Failed);
    assert_eq!(jobs[1].demand().pod_count(), 1);
    assert_eq!(parse(&write_csv(&jobs)).unwrap(), jobs);
}

#[test]
fn jsonl_reads_numbers_and_strings() {
    let text = "{\"submit\": 5, \"namespace\": \"etl\", \"name\": \"a\", \"driver_cpu\": 1, \
        \"driver_memory\": \"2g\", \"executor_cpu\": \"500m\", \"executor_memory\": 4096, \
        \"executors\": 2, \"duration\": \"1m\"}\n\n";
    let jobs = parse(text).unwrap();
    assert_eq!(jobs[0].submit_ms, 5_000);
    assert_eq!(jobs[0].executor, Resources::new(500, 4096));
    assert_eq!(
        jobs[0].demand().total(),
        Resources::new(2000, 2048 + 2 * 4096)
    );
}

#[test]
fn bad_lines_name_line_and_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{HEADER}0,etl,,a,1,2g,1,1g,2,1m,\nx,etl,,b,1,2g,1,1g,2,1m,\n"),
            "trace line 3: field `submit` = \"x\"",
        ),
        (
            format!("{HEADER}0,etl,,a,0,2g,1,1g,2,1m,\n"),
            "trace line 2: field `driver_cpu` = \"0\"",
        ),
        (
            format!("{HEADER}0,etl,,a,1,2q,1,1g,2,1m,\n"),
            "field `driver_memory` = \"2q\"",
        ),
        (
            format!("{HEADER}0,etl,,a,1,2g,1,1g,-1,1m,\n"),
            "field `executors` = \"-1\"",
        ),
        (
            format!("{HEADER}0,,,a,1,2g,1,1g,1,1m,\n"),
            "field `namespace` = \"\": must not be empty",
        ),
        (
            format!("{HEADER}0,etl,,a,1,2g,1,1g,1,1m,maybe\n"),
            "field `outcome` = \"maybe\"",
        ),
        (
            format!("{HEADER}0,etl,,a,1,2g,1,1g,1\n"),
            "trace line 2:",
        ),
        (
            "submit,namespace,name,driver_cpu,driver_memory,executor_cpu,executor_memory,executors\n".into(),
            "trace line 1: field `duration` = \"\": missing column",
        ),
        (
            "submit,nope\n".into(),
            "trace line 1: field `nope`",
        ),
        (
            "{\"submit\": 1, \"colour\": \"red\"}\n".into(),
            "trace line 1: field `colour`",
        ),
        (
            "{\"submit\": 1}\n{oops\n".into(),
            "trace line 1: field `namespace`",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: got {err}, want {want}");
    }
}

#[test]
fn max_runtime_is_read_written_and_checked() {
    let header = "submit,namespace,name,driver_cpu,driver_memory,executor_cpu,executor_memory,executors,duration,max_runtime\n";
    let jobs = parse(&format!(
        "{header}0,etl,a,1,2g,1,1g,1,10m,40m\n1,etl,b,1,2g,1,1g,1,10m,\n"
    ))
    .unwrap();
    assert_eq!(jobs[0].max_runtime_ms, Some(2_400_000));
    assert_eq!(jobs[1].max_runtime_ms, None);
    assert_eq!(parse(&write_csv(&jobs)).unwrap(), jobs);
    for (value, want) in [
        ("0", "field `max_runtime` = \"0\": must be above 0"),
        ("soon", "field `max_runtime` = \"soon\""),
    ] {
        let err = parse(&format!("{header}0,etl,a,1,2g,1,1g,1,10m,{value}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{value}: got {err}, want {want}");
    }
}
