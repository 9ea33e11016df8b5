//! Resolving a job's secret references ([`SecretRef`]) when its run starts, on this host: a
//! file or an environment variable of the sluice server. The values go only into the
//! environment of the process started; errors name the field, never the value.

use std::collections::BTreeMap;

use sluice_core::secretref::SecretRef;

use crate::BackendError;

/// The `(name, value)` pairs of `refs` (at `prefix`, like `command.secretEnv`), read now.
/// A Kubernetes Secret cannot be read here: `Rejected`.
pub(crate) fn resolve_here(
    prefix: &str,
    refs: &BTreeMap<String, SecretRef>,
) -> Result<Vec<(String, String)>, BackendError> {
    let mut out = Vec::with_capacity(refs.len());
    for (k, r) in refs {
        let value = match r {
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    BackendError::Rejected(format!(
                        "{prefix}.{k}.file = {path:?} could not be read: {}",
                        e.kind()
                    ))
                })?;
                text.strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_string()
            }
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                BackendError::Rejected(format!(
                    "{prefix}.{k}.env = {name:?} is not set (or not UTF-8) in the sluice server's environment"
                ))
            })?,
            SecretRef::SecretKeyRef { .. } => {
                return Err(BackendError::Rejected(format!(
                    "{prefix}.{k}: a Kubernetes Secret can only be used on the kubernetes backend"
                )));
            }
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}
