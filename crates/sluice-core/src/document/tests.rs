use super::*;
use crate::spec::{AppType, Levels};

fn levels() -> Levels {
    let mut l = Levels::default();
    l.namespace_defaults.insert("etl".into(), "high".into());
    l
}

fn parse(text: &str) -> Result<Job, SpecError> {
    parse_job(
        text,
        ParseOptions {
            priority: None,
            levels: &levels(),
        },
    )
}

const OWN: &str = r#"
name: pi
namespace: analytics
priority: high
labels: {team: data, tier: 1}
maxRuntime: 30m
spark:
  mainApplicationFile: /opt/pi.py
  arguments: [10, "x"]
  sparkConf:
    spark.ui.enabled: false
    spark.sql.shuffle.partitions: 8
  driver: {cores: 1, memory: 512m}
  executor: {cores: 2, instances: 3, memory: 1g}
"#;

#[test]
fn own_spec_parses() {
    let job = parse(OWN).unwrap();
    assert_eq!(job.name, "pi");
    assert_eq!(job.namespace, "analytics");
    assert_eq!(job.level, "high");
    assert_eq!(job.labels.get("tier").map(String::as_str), Some("1"));
    assert_eq!(job.max_runtime_secs, Some(1800));
    let JobKind::Spark {
        spec, application, ..
    } = &job.kind
    else {
        panic!("not spark")
    };
    assert!(application.is_none());
    assert_eq!(spec.app_type(), AppType::Python);
    assert_eq!(spec.arguments, vec![Text("10".into()), Text("x".into())]);
    assert_eq!(spec.conf("spark.ui.enabled"), Some("false"));
    assert_eq!(spec.conf("spark.sql.shuffle.partitions"), Some("8"));
    // The resolved job survives a JSON round trip (that is how the store keeps it).
    let back: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    assert_eq!(back, job);
}

#[test]
fn bad_input_names_field_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        ("name: [", "malformed", ""),
        ("- a\n- b", "mapping", ""),
        ("namespace: x\ncommand: {argv: [true]}", "`name`", ""),
        (
            "name: a\ncomand: {argv: [ls]}",
            "unknown field `comand`",
            "",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {memroy: 1g}}",
            "unknown field `spark.driver.memroy`",
            "",
        ),
        (
            "name: a\npriority: urgent\ncommand: {argv: [ls]}",
            "`priority`",
            "urgent",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {cores: 0}}",
            "`spark.executor.cores`",
            "0",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: -2}}",
            "`spark.driver.cores`",
            "-2",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {memory: 12qb}}",
            "`spark.executor.memory`",
            "12qb",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: two}}",
            "`spark.driver.cores`",
            "",
        ),
        (
            "name: a\ncommand: {argv: [ls], memory: 12qb}",
            "`command.memory`",
            "12qb",
        ),
        (
            "name: a\ncommand: {argv: [ls], cpu: 0}",
            "`command.cpu`",
            "\"0\"",
        ),
        ("name: a\ncommand: {argv: []}", "`command.argv`", ""),
        (
            "name: Bad_Name\ncommand: {argv: [ls]}",
            "`name`",
            "Bad_Name",
        ),
        (
            "name: a\nmaxRuntime: soon\ncommand: {argv: [ls]}",
            "`maxRuntime`",
            "soon",
        ),
        ("name: a", "`spark`", ""),
        ("name: a\nspark: {}", "`spark.mainApplicationFile`", ""),
        (
            "name: a\nspark: {type: Scala, mainApplicationFile: x.txt}",
            "`spark.mainClass`",
            "",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a}",
            "`kind`",
            "Pod",
        ),
    ];
    for (text, want_field, want_value) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(want_field), "{text:?}: {err}");
        assert!(err.contains(want_value), "{text:?}: {err}");
    }
}

fn shared(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/spark-operator/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn spark_application_keeps_every_field() {
    let text = shared("spark-pi-python.yaml");
    let job = parse(&text).unwrap();
    assert_eq!(job.name, "spark-pi-python");
    assert_eq!(job.namespace, "default");
    assert_eq!(job.level, "normal");
    let JobKind::Spark {
        spec,
        application,
        source,
    } = &job.kind
    else {
        panic!("not spark")
    };
    assert_eq!(spec.app_type(), AppType::Python);
    assert_eq!(spec.executor.instances, Some(1));
    let app = application.as_ref().unwrap();
    // Fields sluice does not interpret are still there.
    assert_eq!(app["spec"]["image"], "docker.io/apache/spark:4.0.4");
    assert_eq!(
        app["spec"]["driver"]["securityContext"]["runAsUser"],
        serde_json::json!(185)
    );
    assert_eq!(
        app["spec"]["driver"]["serviceAccount"],
        "spark-operator-spark"
    );
    assert_eq!(source.as_deref(), Some(text.as_str()));
    let scala = parse(&shared("spark-pi.yaml")).unwrap();
    let JobKind::Spark { spec, .. } = &scala.kind else {
        panic!("not spark")
    };
    assert_eq!(
        spec.main_class.as_deref(),
        Some("org.apache.spark.examples.SparkPi")
    );
    assert_eq!(spec.arguments, vec![Text("5000".into())]);
}

#[test]
fn spark_application_priority_order() {
    let base = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: a\n  namespace: NS\n  labels: {LABEL}\nspec: {type: Python, mainApplicationFile: a.py}\n";
    let doc = |ns: &str, label: &str| base.replace("NS", ns).replace("LABEL", label);
    let l = levels();
    let with = |p: Option<&str>, text: &str| {
        parse_job(
            text,
            ParseOptions {
                priority: p,
                levels: &l,
            },
        )
        .map(|j| j.level)
    };
    // Flag beats label beats namespace default.
    let labelled = doc("default", "sluice.io/priority: high");
    assert_eq!(with(Some("normal"), &labelled).unwrap(), "normal");
    assert_eq!(with(None, &labelled).unwrap(), "high");
    assert_eq!(with(None, &doc("default", "x: y")).unwrap(), "normal");
    assert_eq!(with(None, &doc("etl", "x: y")).unwrap(), "high");
    let err = with(None, &doc("default", "sluice.io/priority: urgent")).unwrap_err();
    assert!(err.to_string().contains("sluice.io/priority"), "{err}");
    assert!(err.to_string().contains("urgent"), "{err}");
    assert!(with(Some("bogus"), &labelled).is_err());
    // Unknown fields in a SparkApplication are kept, not refused.
    let extra = doc("default", "x: y").replace("spec: {", "spec: {futureField: 1, ");
    assert!(with(None, &extra).is_ok());
}

#[test]
fn shipped_examples_parse() {
    let dir = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let job = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        crate::sizing::job_demand(&job).unwrap();
        n += 1;
    }
    assert!(n >= 3, "expected the example jobs in {dir}");
}

#[test]
fn control_characters_are_refused_naming_the_field() {
    // (document, field named, value shown escaped)
    let cases: &[(&str, &str, &str)] = &[
        (
            "name: a\ncommand: {argv: [ls, \"a\\0b\"]}",
            "`command.argv[1]`",
            "\"a\\0b\"",
        ),
        (
            "name: a\ncommand: {argv: [ls], workingDir: \"/tmp/\\0x\"}",
            "`command.workingDir`",
            "\"/tmp/\\0x\"",
        ),
        (
            "name: a\ncommand: {argv: [ls], workingDir: \"/tmp/\\nx\"}",
            "`command.workingDir`",
            "\"/tmp/\\nx\"",
        ),
        (
            "name: a\ncommand: {argv: [ls], env: {A: \"x\\u001by\"}}",
            "`command.env.A`",
            "\"x\\u{1b}y\"",
        ),
        (
            "name: a\nlabels: {team: \"da\\tta\"}\ncommand: {argv: [ls]}",
            "`labels.team`",
            "\"da\\tta\"",
        ),
        (
            "name: a\nlabels: {\"te\\u0085am\": x}\ncommand: {argv: [ls]}",
            "`labels.te\u{85}am`",
            "\"te\\u{85}am\"",
        ),
        (
            "name: a\nspark: {mainApplicationFile: \"a\\0.py\"}",
            "`spark.mainApplicationFile`",
            "\"a\\0.py\"",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.jar, mainClass: \"A\\nB\"}",
            "`spark.mainClass`",
            "\"A\\nB\"",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, sparkConf: {\"spark.x\\u007f\": y}}",
            "`spark.sparkConf.spark.x\u{7f}`",
            "\"spark.x\\u{7f}\"",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, arguments: [\"x\\u0007\"]}",
            "`spark.arguments[0]`",
            "\"x\\u{7}\"",
        ),
        (
            "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata: {name: a}\nspec: {type: Python, mainApplicationFile: a.py, image: \"spark\\n:4\"}",
            "`spec.image`",
            "\"spark\\n:4\"",
        ),
        (
            "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata: {name: a}\nspec: {type: Python, mainApplicationFile: a.py, driver: {serviceAccount: \"s\\0a\"}}",
            "`spec.driver.serviceAccount`",
            "\"s\\0a\"",
        ),
    ];
    for (text, field, value) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(field), "{text:?}: {err}");
        assert!(err.contains(value), "{text:?}: {err}");
        assert!(err.contains("control character"), "{text:?}: {err}");
    }
    // Line breaks and tabs are text in arguments, environment and conf values: a script.
    let script = "name: a\ncommand:\n  argv:\n    - sh\n    - -c\n    - |\n      echo a\n      echo\tb\n  env: {A: \"x\\ny\"}\n";
    assert!(parse(script).is_ok());
}

#[test]
fn multi_byte_labels_are_measured_in_characters_without_panicking() {
    let long = |c: &str, n: usize| c.repeat(n);
    for (value, ok) in [
        (long("é", 1024), true),
        (long("é", 1025), false),
        (long("😀", 1024), true),
        (long("😀", 1100), false),
        (format!("a{}", long("é", 1100)), false),
    ] {
        let text = format!("name: a\nlabels: {{k: \"{value}\"}}\ncommand: {{argv: [ls]}}");
        match parse(&text) {
            Ok(job) => {
                assert!(ok, "accepted {} characters", value.chars().count());
                assert_eq!(job.labels["k"], value);
            }
            Err(e) => {
                assert!(!ok, "{e}");
                let e = e.to_string();
                assert!(
                    e.contains("`labels.k`") && e.contains("1024 characters"),
                    "{e}"
                );
                let head: String = value.chars().take(32).collect();
                assert!(e.contains(&head), "{e}");
            }
        }
    }
}

#[test]
fn quantities_that_overflow_are_refused_naming_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "name: a\nspark: {mainApplicationFile: a.py, sparkConf: {spark.driver.cores: 18446744073709552}}",
            "spark.driver.cores",
            "18446744073709552",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: 9223372036854775807}}",
            "`spark.driver.cores`",
            "9223372036854775807",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {cores: 18446744073709552}}",
            "`spark.executor.cores`",
            "18446744073709552",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {memory: 17179869183p}}",
            "`spark.driver.memory`",
            "17179869183p",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {memory: 9000000000p, memoryOverhead: 9000000000p}}",
            "`spark.driver.memory`",
            "9000000000p",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {instances: 4294967295, memory: 8192p}}",
            "`spark.executor.instances`",
            "4294967295",
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {instances: 4294967296}}",
            "`spark.executor.instances`",
            "4294967296",
        ),
        (
            "name: a\ncommand: {argv: [ls], cpu: \"18446744073709552\"}",
            "`command.cpu`",
            "18446744073709552",
        ),
        (
            "name: a\ncommand: {argv: [ls], memory: \"99999999999999999999\"}",
            "`command.memory`",
            "99999999999999999999",
        ),
    ];
    for (text, field, value) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(field), "{text:?}: {err}");
        assert!(err.contains(value), "{text:?}: {err}");
    }
}
