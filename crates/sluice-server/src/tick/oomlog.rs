//! Whether a run's log says it ran out of memory: read by the OOM retry
//! ([`super::orchestrate`]) and by the usage record ([`super::usage`]).

use sluice_backend::RunRef;
use sluice_core::record::JobRecord;
use sluice_core::retry::JAVA_OOM;

use crate::state::AppState;

/// Most bytes of a run's log searched for `java.lang.OutOfMemoryError`.
pub const OOM_LOG_SCAN_BYTES: u64 = 16 << 20;

/// Whether the run's log mentions `java.lang.OutOfMemoryError` (read through
/// `Backend::logs`, at most [`OOM_LOG_SCAN_BYTES`]).
pub(crate) async fn log_has_oom(state: &AppState, rec: &JobRecord) -> bool {
    let run = RunRef {
        job_id: rec.id.clone(),
        attempt: rec.attempt,
        backend_ref: rec.backend_ref.clone(),
    };
    let mut offset = 0u64;
    let mut carry = String::new();
    while offset < OOM_LOG_SCAN_BYTES {
        let chunk = match state.backend.logs(&run, offset, 1 << 20).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(job = %rec.id, "log scan: {e}");
                return false;
            }
        };
        let text = format!("{carry}{}", chunk.data);
        if text.contains(JAVA_OOM) {
            return true;
        }
        if chunk.next_offset <= offset {
            return false;
        }
        offset = chunk.next_offset;
        // Keep the end of this chunk, in case the marker spans two chunks.
        let keep = text.len().saturating_sub(JAVA_OOM.len());
        carry = text
            .char_indices()
            .find(|(i, _)| *i >= keep)
            .map(|(i, _)| text[i..].to_string())
            .unwrap_or_default();
    }
    false
}
