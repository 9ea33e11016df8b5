use crate::document::parse_job;
use crate::spec::{Levels, ParseOptions};

fn parse(text: &str) -> Result<crate::spec::Job, String> {
    let levels = Levels::default();
    parse_job(
        text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .map_err(|e| e.to_string())
}

fn refused(text: &str, field: &str) {
    match parse(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => assert!(e.contains(field), "{e:?} does not name {field}"),
    }
}

#[test]
fn command_env_refuses_loader_and_shell_variables() {
    for name in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "ld_audit",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "ENV",
        "IFS",
        "GCONV_PATH",
        "MALLOC_TRACE",
        "SLUICE_RUN_DIR",
    ] {
        refused(
            &format!("name: a\ncommand: {{argv: [ls], env: {{{name}: x}}}}"),
            &format!("command.env.{name}"),
        );
    }
    for name in ["A=B", "1X", "BASH_FUNC_f%%", "X Y", ""] {
        let doc = format!("name: a\ncommand: {{argv: [ls], env: {{\"{name}\": x}}}}");
        assert!(parse(&doc).is_err(), "accepted env name {name:?}");
    }
    parse("name: a\ncommand: {argv: [ls], env: {JAVA_HOME: /x, _X1: y, PATH: /bin}}").unwrap();
}

#[test]
fn command_working_dir_stays_put() {
    for w in ["/", "//", "../x", "a/../../b", "/tmp/../etc", " "] {
        refused(
            &format!("name: a\ncommand: {{argv: [ls], workingDir: \"{w}\"}}"),
            "command.workingDir",
        );
    }
    parse("name: a\ncommand: {argv: [ls], workingDir: out/sub}").unwrap();
    parse("name: a\ncommand: {argv: [ls], workingDir: /tmp}").unwrap();
}

#[test]
fn spark_strings_cannot_become_spark_submit_options() {
    let base = |extra: &str| format!("name: a\nspark:\n  mainApplicationFile: /x/app.py\n{extra}");
    refused(
        "name: a\nspark:\n  mainApplicationFile: \"--conf=spark.master=yarn.py\"\n",
        "spark.mainApplicationFile",
    );
    refused(
        "name: a\nspark:\n  mainApplicationFile: ../../etc/app.py\n",
        "spark.mainApplicationFile",
    );
    refused(
        "name: a\nspark:\n  mainApplicationFile: /x/a.jar\n  mainClass: \"--verbose\"\n",
        "spark.mainClass",
    );
    refused(
        "name: a\nspark:\n  mainApplicationFile: /x/a.jar\n  mainClass: \"a;b\"\n",
        "spark.mainClass",
    );
    refused(
        &base("  sparkConf: {\"spark.master=yarn x\": \"1\"}\n"),
        "spark.sparkConf.spark.master=yarn x",
    );
    refused(
        &base("  sparkConf: {\"--driver-java-options\": \"1\"}\n"),
        "spark.sparkConf.--driver-java-options",
    );
    refused(
        &base("  sparkConf: {spark.executorEnv.LD_PRELOAD: /x.so}\n"),
        "spark.sparkConf.spark.executorEnv.LD_PRELOAD",
    );
    refused(
        &base("  deps: {jars: [\"a.jar,/etc/b.jar\"]}\n"),
        "spark.deps.jars[0]",
    );
    refused(
        &base("  deps: {files: [\"../secret\"]}\n"),
        "spark.deps.files[0]",
    );
    refused(
        &base("  deps: {packages: [\"--repositories\"]}\n"),
        "spark.deps.packages[0]",
    );
    // Arguments go to the application after the primary resource: anything goes.
    parse(&base(
        "  arguments: [\"--conf\", \"$(id)\", \"; rm -rf /\"]\n  sparkConf: {spark.executorEnv.JAVA_HOME: /j}\n",
    ))
    .unwrap();
}

#[test]
fn spark_application_is_checked_too() {
    let doc = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata: {name: a}\nspec:\n  type: Python\n  mainApplicationFile: \"-v\"\n";
    refused(doc, "spec.mainApplicationFile");
}
