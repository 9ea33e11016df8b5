//! `sluice render`: the Kubernetes objects sluice would create for a job, as YAML, without
//! contacting a cluster (like `kubectl create --dry-run=client -o yaml`); and the per-namespace
//! Role and RoleBinding that grant exactly what the backend uses (`sluice render rbac`).

use serde_json::Value;
use sluice_core::job::Demand;
use sluice_core::spec::Job;

use super::app::build_app;
use super::objects::{PodKind, job_pods};
use super::{CapacityMode, KubeSettings};
use crate::BackendError;

/// The job id [`render_job`] uses when none is given: the objects of a real submission carry
/// the job's id (a ULID) instead.
pub const RENDER_JOB_ID: &str = "render";

/// The objects sluice creates for one attempt of `job`, in creation order: in `placeholders`
/// mode the placeholder pods (driver first), then the SparkApplication. In `dry-run` mode the
/// driver and executor pods are only sent with `dryRun=All` (never created), so they are not
/// listed.
pub fn render_job(
    job: &Job,
    job_id: &str,
    attempt: u32,
    demand: &Demand,
    settings: &KubeSettings,
) -> Result<Vec<Value>, BackendError> {
    let app = build_app(job, job_id, attempt, demand, &settings.app)?;
    let mut out = Vec::new();
    if settings.mode == CapacityMode::Placeholders {
        for p in job_pods(
            &app,
            demand,
            job_id,
            attempt,
            PodKind::Placeholder {
                image: &settings.placeholder_image,
                priority_class: settings.placeholder_priority_class.as_deref(),
            },
        ) {
            let mut v = serde_json::to_value(&p)
                .map_err(|e| BackendError::Config(format!("encoding a pod: {e}")))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("apiVersion".into(), Value::String("v1".into()));
                m.insert("kind".into(), Value::String("Pod".into()));
            }
            out.push(v);
        }
    }
    out.push(app);
    Ok(out)
}

/// The objects as one YAML stream (documents separated by `---`).
pub fn to_yaml(objects: &[Value]) -> Result<String, BackendError> {
    serde_saphyr::to_string_multiple(objects)
        .map_err(|e| BackendError::Config(format!("writing YAML: {e}")))
}

/// The name of the Role and RoleBinding [`namespace_rbac`] writes in each managed namespace.
pub const JOBS_ROLE: &str = "sluice-jobs";

/// Whether `name` is a DNS-1123 label, as Kubernetes namespace names must be: 1 to 63 lowercase
/// letters, digits and '-', starting and ending with a letter or digit.
pub fn is_dns1123_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The Role and RoleBinding sluice needs in each of `namespaces` (one pair per namespace, in the
/// order given), granting exactly the namespaced [`super::PERMISSIONS`] to the ServiceAccount
/// `service_account` (`NAMESPACE/NAME`). Refuses, naming the value, a namespace that is not a
/// DNS-1123 label, one given twice, an empty list and a malformed service account.
pub fn namespace_rbac(
    namespaces: &[String],
    service_account: &str,
) -> Result<Vec<Value>, BackendError> {
    let (sa_ns, sa_name) = service_account
        .split_once('/')
        .filter(|(ns, name)| is_dns1123_label(ns) && !name.is_empty())
        .ok_or_else(|| {
            BackendError::Config(format!(
                "service account {service_account:?}: must be NAMESPACE/NAME"
            ))
        })?;
    if namespaces.is_empty() {
        return Err(BackendError::Config(
            "namespaces: give at least one namespace".into(),
        ));
    }
    for (i, ns) in namespaces.iter().enumerate() {
        if !is_dns1123_label(ns) {
            return Err(BackendError::Config(format!(
                "namespace {ns:?} is not a Kubernetes namespace name (a DNS-1123 label: at most \
                 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
            )));
        }
        if namespaces[..i].contains(ns) {
            return Err(BackendError::Config(format!(
                "namespace {ns:?} is given twice"
            )));
        }
    }
    // One rule per (group, resource), verbs in the order PERMISSIONS lists them.
    let mut rules: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for (group, resource, verb, cluster) in super::PERMISSIONS {
        if *cluster {
            continue;
        }
        match rules
            .iter_mut()
            .find(|(g, r, _)| g == group && r == resource)
        {
            Some((_, _, verbs)) => verbs.push(verb),
            None => rules.push((group, resource, vec![verb])),
        }
    }
    let rules: Vec<Value> = rules
        .into_iter()
        .map(
            |(g, r, verbs)| serde_json::json!({"apiGroups": [g], "resources": [r], "verbs": verbs}),
        )
        .collect();
    let mut out = Vec::new();
    for ns in namespaces {
        out.push(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": JOBS_ROLE, "namespace": ns},
            "rules": rules,
        }));
        out.push(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": JOBS_ROLE, "namespace": ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": JOBS_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns}],
        }));
    }
    Ok(out)
}
