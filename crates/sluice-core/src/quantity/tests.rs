use super::*;

#[test]
fn memory_table() {
    let table: &[(&str, Result<u64, QuantityError>)] = &[
        ("512m", Ok(512)),
        ("512M", Ok(512)),
        ("512mb", Ok(512)),
        ("1g", Ok(1024)),
        ("4G", Ok(4096)),
        ("2gb", Ok(2048)),
        ("1t", Ok(1024 * 1024)),
        ("2048", Ok(2048)), // bare number: MiB, as in spark.driver.memory
        ("1Gi", Ok(1024)),
        ("512Mi", Ok(512)),
        ("1048576k", Ok(1024)),
        ("1536k", Ok(2)), // rounded up
        ("1b", Ok(1)),
        ("12qb", Err(QuantityError::BadUnit("qb".into()))),
        ("", Err(QuantityError::Empty)),
        ("g", Err(QuantityError::BadNumber)),
        ("-1g", Err(QuantityError::BadNumber)),
        ("1.5g", Err(QuantityError::BadNumber)),
        ("0", Err(QuantityError::Zero)),
        ("0m", Err(QuantityError::Zero)),
        (
            "99999999999999999999999999999999999999999",
            Err(QuantityError::TooLarge),
        ),
    ];
    for (text, want) in table {
        assert_eq!(&parse_mem_mib(text), want, "parse_mem_mib({text:?})");
    }
}

#[test]
fn cpu_table() {
    let table: &[(&str, Result<u64, QuantityError>)] = &[
        ("1", Ok(1000)),
        ("2", Ok(2000)),
        ("0.5", Ok(500)),
        (".25", Ok(250)),
        ("1.5", Ok(1500)),
        ("500m", Ok(500)),
        ("0", Err(QuantityError::Zero)),
        ("0m", Err(QuantityError::Zero)),
        ("-1", Err(QuantityError::BadCpu)),
        ("1.2345", Err(QuantityError::BadCpu)),
        ("two", Err(QuantityError::BadCpu)),
        ("m", Err(QuantityError::BadCpu)),
        ("", Err(QuantityError::Empty)),
    ];
    for (text, want) in table {
        assert_eq!(&parse_cpu_milli(text), want, "parse_cpu_milli({text:?})");
    }
}

#[test]
fn formatting() {
    assert_eq!(format_cpu(1000), "1 core");
    assert_eq!(format_cpu(4000), "4 cores");
    assert_eq!(format_cpu(1500), "1.5 cores");
    assert_eq!(format_cpu_plain(250), "0.25");
    assert_eq!(format_mem(512), "512 MiB");
    assert_eq!(format_mem(9216), "9 GiB");
    assert_eq!(format_mem(1408), "1.4 GiB");
    assert_eq!(SparkMem(1408).to_string(), "1408m");
}
