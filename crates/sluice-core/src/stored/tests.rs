use super::*;
use crate::document::{parse_job_with_policy, parse_stored};
use crate::spec::{Levels, ParseOptions};

fn opts(levels: &Levels) -> ParseOptions<'_> {
    ParseOptions {
        priority: None,
        levels,
    }
}

const OWN: &str = "# my job\nname: pi\nnamespace: analytics\nlabels: {team: data}\nmaxRuntime: 30m\nretry: {maxAttempts: 4, backoff: {initial: 250ms, max: 2s, factor: 3}, jitter: 0.2, retryOn: [oom, application], oomMemoryFactor: 1.5, oomMemoryCap: 4g}\nmaxQueueWait: 1h\nspark:\n  mainApplicationFile: /opt/pi.py\n  arguments: [10]\n  sparkConf: {spark.ui.enabled: false}\n  executor: {instances: 2}\n";

const APP: &str = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: app\n  annotations: {sluice.io/max-queue-wait: 10m}\nspec:\n  type: Scala\n  mode: cluster\n  image: spark:4\n  mainApplicationFile: local:///a.jar\n  restartPolicy: {type: OnFailure, onFailureRetries: 2}\n  driver: {serviceAccount: spark, memory: 512m}\n";

const COMMAND: &str = "name: c\ncommand:\n  argv: [sh, -c, \"echo a\\necho b\"]\n  env: {A: \"1\"}\n  cpu: 500m\n  memory: 256m\n  workingDir: /tmp\n";

#[test]
fn encode_decode_round_trip_keeps_the_text() {
    let l = Levels::default();
    for text in [OWN, APP, COMMAND] {
        let s = parse_stored(text, opts(&l)).unwrap();
        assert_eq!(s.document, text);
        let back = StoredJob::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back, s);
        // The document parses to the same job and policy.
        let (job, policy) = parse_job_with_policy(&back.document, opts(&l)).unwrap();
        assert_eq!(job, s.job);
        assert_eq!(policy, s.policy);
    }
    // The user's own fields are intact: the comment and the fields sluice does not read.
    let s = parse_stored(APP, opts(&l)).unwrap();
    assert!(s.document.contains("mode: cluster"));
    assert!(s.document.contains("serviceAccount: spark"));
    assert!(
        parse_stored(OWN, opts(&l))
            .unwrap()
            .document
            .starts_with("# my job")
    );
}

#[test]
fn old_rows_without_a_document_decode_and_rebuild_one() {
    let l = Levels::default();
    for text in [OWN, APP, COMMAND] {
        let (job, policy) = parse_job_with_policy(text, opts(&l)).unwrap();
        // The format written before documents were kept: the job's fields and the policy.
        let old = super::encode_job(&job, &policy).unwrap();
        assert!(old.get(DOCUMENT_KEY).is_none());
        let s = StoredJob::decode(&old).unwrap();
        assert_eq!(s.job, job);
        assert_eq!(s.policy, policy);
        let (again, again_policy) = parse_job_with_policy(&s.document, opts(&l)).unwrap();
        assert_eq!(again, job, "{}", s.document);
        assert_eq!(again_policy, policy, "{}", s.document);
    }
    // A schedule's run has no text of its own either.
    let (job, policy) = parse_job_with_policy(COMMAND, opts(&l)).unwrap();
    let s = StoredJob::rebuilt(job.clone(), policy).unwrap();
    assert_eq!(parse_job_with_policy(&s.document, opts(&l)).unwrap().0, job);
}

#[test]
fn corrupt_rows_are_errors_naming_what_failed() {
    let l = Levels::default();
    let good = parse_stored(OWN, opts(&l)).unwrap().encode().unwrap();
    let mut bad_policy = good.clone();
    bad_policy[POLICY_KEY]["retry"]["maxAttempts"] = serde_json::json!("many");
    let e = StoredJob::decode(&bad_policy).unwrap_err();
    assert!(matches!(e, StoredJobError::Policy(_)), "{e}");
    assert!(e.to_string().contains("policy"), "{e}");
    assert!(matches!(
        decode_policy(&bad_policy),
        Err(StoredJobError::Policy(_))
    ));
    let mut incomplete = good.clone();
    incomplete[POLICY_KEY] = serde_json::json!({"retry": {"maxAttempts": 2}});
    assert!(matches!(
        StoredJob::decode(&incomplete),
        Err(StoredJobError::Policy(_))
    ));
    assert_eq!(
        StoredJob::decode(&good).unwrap().policy.max_queue_wait_secs,
        Some(3600)
    );
    let mut bad_ttl = good.clone();
    bad_ttl[POLICY_KEY]["maxQueueWaitSecs"] = serde_json::json!("soon");
    assert!(matches!(
        StoredJob::decode(&bad_ttl),
        Err(StoredJobError::Policy(_))
    ));
    let mut bad_job = good.clone();
    bad_job["kind"] = serde_json::json!({"type": "teleport"});
    let e = StoredJob::decode(&bad_job).unwrap_err();
    assert!(matches!(e, StoredJobError::Job(_)), "{e}");
    let mut bad_doc = good.clone();
    bad_doc[DOCUMENT_KEY] = serde_json::json!(7);
    assert!(matches!(
        StoredJob::decode(&bad_doc),
        Err(StoredJobError::Document(_))
    ));
    assert!(matches!(
        StoredJob::decode(&serde_json::json!([1])),
        Err(StoredJobError::NotAnObject(_))
    ));
    // No policy at all is not corrupt: none was set.
    let mut none = good;
    none.as_object_mut().unwrap().remove(POLICY_KEY);
    assert_eq!(
        StoredJob::decode(&none).unwrap().policy,
        JobPolicy::default()
    );
}
