//! A job as `sluice get ID -o yaml` prints it: the user's document with the job's state under
//! `status`, which submits again unchanged.

use crate::jobs::JobView;

/// Why a job's document could not be given back.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The stored job does not decode (a corrupt row); names the job.
    #[error("job {id}: {source}")]
    Stored {
        /// The job.
        id: String,
        /// What failed.
        #[source]
        source: sluice_core::stored::StoredJobError,
    },
    /// The stored document is not a YAML or JSON mapping.
    #[error("job {id}: the stored document does not parse: {message}")]
    Parse {
        /// The job.
        id: String,
        /// The parser's message.
        message: String,
    },
}

/// What `sluice get ID -o yaml` prints, in the way of `kubectl get -o yaml`: the user's own
/// document as submitted (every field of theirs intact; a row written before documents were
/// kept gets one rebuilt from the job), with the job as sluice sees it (state, demand, timeline,
/// ...) under a top-level `status`, which the parser ignores. Submitted again unchanged, it
/// queues the same job.
pub fn resubmittable(view: &JobView) -> Result<serde_json::Value, DocumentError> {
    let stored = sluice_core::stored::StoredJob::decode(&view.spec).map_err(|source| {
        DocumentError::Stored {
            id: view.id.clone(),
            source,
        }
    })?;
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(&stored.document).map_err(|e| DocumentError::Parse {
            id: view.id.clone(),
            message: e.to_string(),
        })?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(DocumentError::Parse {
            id: view.id.clone(),
            message: "not a mapping".into(),
        });
    };
    let mut status = serde_json::to_value(view).unwrap_or(serde_json::Value::Null);
    if let Some(s) = status.as_object_mut() {
        // The document itself is the rest of the output.
        s.remove("spec");
    }
    obj.remove(sluice_core::document::STATUS_KEY);
    obj.insert(sluice_core::document::STATUS_KEY.into(), status);
    Ok(doc)
}

#[cfg(test)]
mod tests;
