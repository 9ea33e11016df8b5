//! Telling the backend which jobs sluice holds back and why, where its users look (on
//! Kubernetes a `Waiting` Event per job, so `kubectl get events` says why a job has no
//! SparkApplication yet): [`sluice_backend::Backend::note_waiting`].
//!
//! The admit step publishes the waiting jobs of each cycle ([`HeldNotices::publish`]: a
//! `watch` channel, so the tick never waits and only the latest cycle counts); a task of its
//! own compares them with what it last told the backend and tells it only about the jobs that
//! started waiting, were requeued as a new attempt, or whose reason changed ([`changed`]), at
//! most [`PER_ROUND`] per round with a pause of [`ROUND_PAUSE`] between full rounds. A reason
//! is compared by its stable part ([`reason_key`]): the free room or a reserved start that
//! moves every tick does not make a new event, a job now blocked behind another, or held by a
//! quota instead of room, does.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sluice_backend::{Backend, Held};
use sluice_core::cycle::WaitReason;
use tokio::sync::watch;

/// At most this many jobs per call of [`Backend::note_waiting`].
pub const PER_ROUND: usize = 16;
/// The pause after a full round before the next (the rest waits for it).
pub const ROUND_PAUSE: Duration = Duration::from_secs(1);

/// A waiting job as the cycle left it, with the stable part of its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// What the backend is told.
    pub held: Held,
    /// What must change for it to be told again ([`reason_key`]).
    pub key: String,
}

/// The stable part of a wait reason: its kind and what it names (the demand, the head it
/// waits behind, the backend's message), not the free room or times that move every tick.
pub fn reason_key(reason: &WaitReason) -> String {
    match reason {
        WaitReason::BackendUnavailable => reason.kind().to_string(),
        WaitReason::NoRoom(no_fit) => format!(
            "{}: {} in {} pods{}",
            reason.kind(),
            no_fit.need,
            no_fit.pods,
            if no_fit.never { ", never" } else { "" }
        ),
        WaitReason::BlockedBehind { head_id, namespace }
        | WaitReason::WouldDelay {
            head_id, namespace, ..
        } => format!("{}: {namespace}/{head_id}", reason.kind()),
        WaitReason::Constrained { message } => format!("{}: {message}", reason.kind()),
    }
}

/// What was last told about each job: its attempt and reason key.
pub type Told = HashMap<String, (u32, String)>;

/// The jobs of `waiting` (in its order) that `told` does not already show with the same
/// attempt and reason key, at most `limit`; jobs no longer waiting are forgotten from `told`.
pub fn changed<'a>(waiting: &'a [Waiting], told: &mut Told, limit: usize) -> Vec<&'a Waiting> {
    let ids: std::collections::HashSet<&str> =
        waiting.iter().map(|w| w.held.job_id.as_str()).collect();
    told.retain(|id, _| ids.contains(id.as_str()));
    waiting
        .iter()
        .filter(|w| {
            told.get(&w.held.job_id)
                .is_none_or(|(attempt, key)| *attempt != w.held.attempt || *key != w.key)
        })
        .take(limit)
        .collect()
}

/// A cycle's waiting jobs, numbered in the order they were published.
type Published = (u64, Arc<Vec<Waiting>>);

/// The channel to the task that tells the backend (started by the first publish).
#[derive(Default)]
pub struct HeldNotices {
    tx: OnceLock<watch::Sender<Published>>,
    /// The number of the last publish the task has fully handled.
    done: Arc<watch::Sender<u64>>,
}

impl HeldNotices {
    /// Hands the jobs the cycle left waiting to the task (starting it the first time); never
    /// waits.
    pub fn publish(&self, backend: &Arc<dyn Backend>, waiting: Vec<Waiting>) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = watch::channel((0, Arc::new(Vec::new())));
            tokio::spawn(run(backend.clone(), rx, self.done.clone()));
            tx
        });
        let waiting = Arc::new(waiting);
        tx.send_modify(|(n, w)| {
            *n += 1;
            *w = waiting;
        });
    }

    /// Waits until the task has told the backend what every publish so far asked for (tests
    /// wait on it before they look at what the backend was told).
    pub async fn settled(&self) {
        let Some(tx) = self.tx.get() else {
            return;
        };
        let want = tx.borrow().0;
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|done| *done >= want).await;
    }
}

/// The task: for each cycle published, tell the backend what changed, [`PER_ROUND`] at a
/// time; ends when the state is dropped.
async fn run(
    backend: Arc<dyn Backend>,
    mut rx: watch::Receiver<Published>,
    done: Arc<watch::Sender<u64>>,
) {
    let mut told = Told::new();
    while rx.changed().await.is_ok() {
        loop {
            let (n, waiting) = rx.borrow_and_update().clone();
            let batch = changed(&waiting, &mut told, PER_ROUND);
            if !batch.is_empty() {
                let held: Vec<Held> = batch.iter().map(|w| w.held.clone()).collect();
                backend.note_waiting(&held).await;
                for w in &batch {
                    told.insert(w.held.job_id.clone(), (w.held.attempt, w.key.clone()));
                }
            }
            if batch.len() < PER_ROUND {
                done.send_replace(n);
                break;
            }
            // More changed than one round takes: the rest after a pause, from the latest
            // cycle's view by then.
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::job::Resources;

    fn w(id: &str, attempt: u32, key: &str) -> Waiting {
        Waiting {
            held: Held {
                job_id: id.into(),
                attempt,
                namespace: "ns".into(),
                name: "job".into(),
                reason: format!("{key} (detail)"),
                position: 1,
            },
            key: key.into(),
        }
    }

    fn ids(batch: &[&Waiting]) -> Vec<String> {
        batch.iter().map(|w| w.held.job_id.clone()).collect()
    }

    fn tell(told: &mut Told, batch: &[&Waiting]) {
        for w in batch {
            told.insert(w.held.job_id.clone(), (w.held.attempt, w.key.clone()));
        }
    }

    #[test]
    fn only_new_requeued_or_changed_jobs_are_told_at_most_limit_at_once() {
        let mut told = Told::new();
        let first = vec![
            w("a", 1, "no-room"),
            w("b", 1, "no-room"),
            w("c", 1, "blocked"),
        ];
        let batch = changed(&first, &mut told, 2);
        assert_eq!(ids(&batch), ["a", "b"]);
        tell(&mut told, &batch);
        // The rest next round; then nothing while nothing changes.
        let batch = changed(&first, &mut told, 2);
        assert_eq!(ids(&batch), ["c"]);
        tell(&mut told, &batch);
        assert!(changed(&first, &mut told, 2).is_empty());
        // b's reason changed, c is a new attempt, a left the queue, d is new.
        let next = vec![
            w("b", 1, "blocked"),
            w("c", 2, "blocked"),
            w("d", 1, "no-room"),
        ];
        let batch = changed(&next, &mut told, 10);
        assert_eq!(ids(&batch), ["b", "c", "d"]);
        assert!(!told.contains_key("a"), "forgotten once it no longer waits");
        tell(&mut told, &batch);
        // a comes back: told again.
        let back = vec![w("a", 1, "no-room")];
        assert_eq!(ids(&changed(&back, &mut told, 10)), ["a"]);
    }

    #[test]
    fn the_key_ignores_free_room_and_times_but_not_what_the_reason_names() {
        let no_room = |free: u64| {
            WaitReason::NoRoom(sluice_core::capacity::NoFit {
                need: Resources {
                    cpu_milli: 3000,
                    mem_mib: 2048,
                },
                pods: 3,
                largest_pod: Resources {
                    cpu_milli: 1000,
                    mem_mib: 896,
                },
                unplaced: sluice_core::job::Role::Executor,
                largest_free: Resources {
                    cpu_milli: free,
                    mem_mib: 1024,
                },
                total_free: Resources {
                    cpu_milli: free,
                    mem_mib: 1024,
                },
                free_pod_slots: None,
                never: false,
            })
        };
        assert_ne!(no_room(1000).to_string(), no_room(2000).to_string());
        assert_eq!(reason_key(&no_room(1000)), reason_key(&no_room(2000)));
        let delay = |head: &str, ms: i64| WaitReason::WouldDelay {
            head_id: head.into(),
            namespace: "ns".into(),
            start_in_ms: ms,
        };
        assert_eq!(
            reason_key(&delay("h", 60_000)),
            reason_key(&delay("h", 30_000))
        );
        assert_ne!(
            reason_key(&delay("h", 60_000)),
            reason_key(&delay("g", 60_000))
        );
        let blocked = WaitReason::BlockedBehind {
            head_id: "h".into(),
            namespace: "ns".into(),
        };
        assert_ne!(reason_key(&blocked), reason_key(&delay("h", 1)));
        assert_ne!(reason_key(&blocked), reason_key(&no_room(1000)));
    }
}
