//! `kubectl kustomize` of the repository's deploy files, for the tests that check them
//! (`deploy.rs`, `kubernetes/deploy.rs`).

use serde_json::Value;

/// `kubectl kustomize DIR` of the repository: the manifests an overlay applies.
pub fn kustomize(dir: &str) -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(root.join(dir))
        .output()
        .unwrap_or_else(|e| panic!("kubectl kustomize {dir}: {e} (kubectl must be installed)"));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}
