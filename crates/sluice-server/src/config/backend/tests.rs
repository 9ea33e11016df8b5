use std::path::Path;

use super::*;
use crate::config::{Config, ConfigError};

fn load_toml(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    Config::load_with_env_prefix(Some(&p), "SLUICE_BACKEND_ONLY_TEST_")
}

#[test]
fn kind_defaults_to_local() {
    let c = load_toml("[backend]\ncores = 3").unwrap();
    assert_eq!(c.backend.kind(), "local");
    assert_eq!(c.budget().unwrap(), (Some(3000), None));
    let BackendConfig::Local(l) = &c.backend else {
        panic!("{:?}", c.backend)
    };
    assert_eq!(l.kill_grace_secs, 10);
    assert_eq!(l.image_spark_home, "/opt/spark");
    let c = load_toml("listen = \"127.0.0.1:9000\"").unwrap();
    assert_eq!(c.backend, BackendConfig::default());
}

#[test]
fn a_key_of_another_kind_names_the_key_and_its_kind() {
    let cases = [
        // (config, key named, words the message must contain)
        (
            "[backend]\nkind = \"spark-standalone\"\nmaster_url = \"spark://h:7077\"\n\
             web_url = \"http://h:8080\"\ncores = 2",
            "backend.cores",
            "is a key of kind = \"local\", but backend.kind is \"spark-standalone\"",
        ),
        (
            "[backend]\nkind = \"kubernetes\"\nkill_grace_secs = 5",
            "backend.kill_grace_secs",
            "kind = \"local\" or kind = \"spark-standalone\"",
        ),
        (
            "[backend]\nwatchdog_secs = 5",
            "backend.watchdog_secs",
            "is a key of kind = \"kubernetes\", but backend.kind is \"local\"",
        ),
        (
            "[backend]\nkind = \"local\"\ncors = 2",
            "backend.cors",
            "is not a key of [backend] (kind = \"local\" takes: cores, memory",
        ),
    ];
    for (text, key, words) in cases {
        let e = load_toml(text).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(words), "{text}: {e}");
    }
}

#[test]
#[allow(clippy::result_large_err)]
fn the_environment_can_choose_the_kind() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "[backend]\nmaster_url = \"spark://h:7077\"")?;
        jail.set_env("SLUICE_BACKEND__KIND", "spark-standalone");
        jail.set_env("SLUICE_BACKEND__WEB_URL", "http://h:8080");
        let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(c.backend.kind(), "spark-standalone");
        jail.set_env("SLUICE_BACKEND__KIND", "kubernetes");
        let e = Config::load(Some(Path::new("c.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend.master_url") && e.contains("spark-standalone"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn keys_of_each_kind() {
    assert!(keys_of("local").contains(&"kill_grace_secs"));
    assert!(keys_of("spark-standalone").contains(&"master_url"));
    assert!(keys_of("kubernetes").contains(&"capacity_check"));
    assert!(keys_of("yarn").is_empty());
    assert_eq!(owner_of("memory"), ["local", "spark-standalone"]);
    assert!(owner_of("nothing").is_empty());
}

#[test]
fn the_simulated_example_config_is_valid() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/simulated.toml");
    let c = Config::load_with_env_prefix(Some(&p), "SLUICE_BACKEND_ONLY_TEST_").unwrap();
    assert_eq!(c.backend.kind(), "simulated");
    let BackendConfig::Simulated(s) = &c.backend else {
        panic!("{:?}", c.backend)
    };
    let clock = std::sync::Arc::new(sluice_backend::clock::ManualClock::new(0));
    let b = sluice_backend::simulated::SimulatedBackend::new(s, clock).unwrap();
    assert_eq!(b.nodes().len(), 12);
    assert_eq!(b.nodes()[10].name, "big-0");
    assert_eq!(b.nodes()[10].pods, Some(110));
}

#[test]
fn simulated_keys_are_checked_naming_the_key() {
    let base = "[backend]\nkind = \"simulated\"\n";
    let cases = [
        (
            "nodes = [{ prefix = \"n\", count = 0, cpu = \"1\", memory = \"1g\" }]",
            "backend.nodes[0].count",
            "at least 1",
        ),
        (
            "nodes = [{ prefix = \"n\", count = 1, cpu = \"x\", memory = \"1g\" }]",
            "backend.nodes[0].cpu",
            "\"x\"",
        ),
        (
            "duration = { dist = \"lognormal\", median = \"5m\", sigma = -1.0 }",
            "backend.duration.sigma",
            "between 0 and 10",
        ),
        ("start_delay = \"later\"", "backend.start_delay", "later"),
        (
            "nodes = [{ prefix = \"n\", count = 1, cpu = \"1\", memory = \"1g\", gpu = 1 }]",
            "gpu",
            "prefix",
        ),
        (
            "cores = 4",
            "backend.cores",
            "is a key of kind = \"local\", but backend.kind is \"simulated\"",
        ),
    ];
    for (extra, key, words) in cases {
        let e = load_toml(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(words), "{extra}: {e}");
    }
    let e = load_toml("[backend]\nkind = \"yarn\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("backend.kind") && e.contains("simulated"), "{e}");
}

#[test]
fn shared_event_log_keys_are_checked_naming_the_key() {
    let k = "[backend]\nkind = \"kubernetes\"\n";
    let s = "[backend]\nkind = \"spark-standalone\"\nmaster_url = \"spark://m:7077\"\n\
             web_url = \"http://m:8080\"\nrest_url = \"http://m:6066\"\ndeploy_mode = \"cluster\"\n";
    let c = load_toml(&format!("{s}event_log_dir = \"file:///shared/ev\"\n")).unwrap();
    let BackendConfig::SparkStandalone(sc) = &c.backend else {
        panic!("{:?}", c.backend)
    };
    let share = sc.event_log().unwrap().unwrap();
    assert_eq!(share.mount, Path::new("/shared/ev"));
    for (base, extra, key, value) in [
        (
            k,
            "event_log_dir = \"s3a://b/ev\"",
            "backend.event_log_mount",
            "",
        ),
        (
            k,
            "event_log_mount = \"/mnt/ev\"",
            "backend.event_log_mount",
            "/mnt/ev",
        ),
        (
            k,
            "event_log_dir = \"rel/ev\"",
            "backend.event_log_dir",
            "rel/ev",
        ),
        (
            s,
            "event_log_dir = \"file:///x\"\nevent_log_mount = \"rel\"",
            "backend.event_log_mount",
            "rel",
        ),
    ] {
        let e = load_toml(&format!("{base}{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{key}` = {value:?}")), "{extra}: {e}");
    }
}
