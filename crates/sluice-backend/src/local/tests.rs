use std::path::Path;

use super::config::*;
use super::os::*;
use super::rundir::*;

#[test]
fn reserve() {
    // 2 cores, 24 GiB: every core, 90% of the memory.
    assert_eq!(budget_after_reserve(2000, 24 * 1024), (2000, 22119));
    // 4 GiB: the 1 GiB floor of the reserve is more than 10%.
    assert_eq!(budget_after_reserve(32_000, 4096), (32_000, 3072));
    // Tiny machine: floors.
    assert_eq!(budget_after_reserve(1000, 1024), (1000, 512));
    let (cpu, mem) = detect_budget();
    assert!(cpu >= 1000 && mem >= 512);
}

#[test]
fn utf8_cut() {
    let s = "aé€😀".as_bytes();
    assert_eq!(utf8_keep(s), s.len());
    assert_eq!(utf8_keep(&s[..2]), 1); // inside é
    assert_eq!(utf8_keep(&s[..5]), 3); // inside €
    assert_eq!(utf8_keep(&s[..8]), 6); // inside 😀
    assert_eq!(utf8_keep(b"abc"), 3);
    assert_eq!(utf8_keep(&[0x80, 0x80, 0x80, 0x80, 0x80]), 5); // garbage: keep
}

#[test]
fn exit_messages() {
    assert_eq!(exit_message(3), "exit code 3");
    assert!(exit_message(137).contains("SIGKILL"));
    assert!(exit_message(143).contains("SIGTERM"));
    assert!(exit_message(130).contains("SIGINT"));
}

#[test]
fn venv_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join(".venv");
    let pkg = venv.join("lib/python3.11/site-packages/pyspark");
    std::fs::create_dir_all(pkg.join("bin")).unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(pkg.join("bin/spark-submit"), "").unwrap();
    std::fs::write(venv.join("bin/spark-submit"), "").unwrap();
    std::fs::write(venv.join("bin/python"), "").unwrap();
    assert_eq!(find_spark_home(Some(&venv)), Some(pkg.clone()));
    assert_eq!(find_spark_home(Some(&pkg)), Some(pkg.clone()));
    assert_eq!(find_spark_home(Some(tmp.path())), None);
    assert_eq!(venv_python(&pkg), Some(venv.join("bin/python")));
    assert_eq!(venv_python(Path::new("/opt/spark")), None);
}
