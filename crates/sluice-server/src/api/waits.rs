//! Why a queued job waits, for `describe`, the jobs list and the UI: what the last scheduling
//! cycle said of the jobs it saw ([`crate::state::CycleView::waiting`]), else, for a job it
//! did not see, what the queue says: behind the job a strict namespace's queue was cut at
//! ([`crate::state::CycleView::behind`]), or behind the first [`HEAD_WINDOW`] jobs of its
//! namespace. Positions of jobs the cycle did not see come from the in-memory queue, one walk
//! per namespace for the whole page.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::job::JobState;
use sluice_core::record::JobRecord;

use crate::queue::HEAD_WINDOW;
use crate::state::{AppState, Behind, WaitInfo};

/// The wait of each of `recs` (none for a job not queued, or one the leader's cycle has not
/// seen yet on this replica), in the same order.
pub async fn waits(st: &AppState, recs: &[&JobRecord]) -> Vec<Option<WaitInfo>> {
    let (mut out, behind) = {
        let view = st.view.read().await;
        let out: Vec<Option<WaitInfo>> = recs
            .iter()
            .map(|r| view.waiting.get(&r.id).cloned())
            .collect();
        let unseen = recs
            .iter()
            .zip(&out)
            .any(|(r, w)| w.is_none() && r.state == JobState::Queued);
        let behind: HashMap<Arc<str>, Behind> = if unseen {
            view.behind.clone()
        } else {
            HashMap::new()
        };
        (out, behind)
    };
    let unseen: Vec<usize> = (0..recs.len())
        .filter(|&i| out[i].is_none() && recs[i].state == JobState::Queued)
        .collect();
    if unseen.is_empty() {
        return out;
    }
    let now = st.now_ms();
    let q = st.queue.lock();
    if !q.loaded() {
        return out;
    }
    let ids: Vec<&str> = unseen.iter().map(|&i| recs[i].id.as_str()).collect();
    let positions = q.queue().positions(&ids, now);
    for i in unseen {
        let rec = recs[i];
        let Some(&(position, level_position)) = positions.get(rec.id.as_str()) else {
            continue;
        };
        let cut = q.queue().get(&rec.id).and_then(|e| {
            let b = behind.get(&e.namespace)?;
            let key = (e.rank, e.enqueued_at_ms, &*e.id);
            (key > (b.after.0, b.after.1, &*b.after.2)).then_some(b)
        });
        let reason = match cut {
            Some(b) => b.reason.clone(),
            None if (position as usize) > HEAD_WINDOW => format!(
                "behind the first {HEAD_WINDOW} jobs of namespace {}, which scheduling cycles consider first",
                rec.namespace
            ),
            // Queued since the last cycle: the next one says.
            None => continue,
        };
        out[i] = Some(WaitInfo {
            reason,
            reason_kind: "blocked".into(),
            position,
            level_position,
            estimated_start: None,
        });
    }
    out
}
