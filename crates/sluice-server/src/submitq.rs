//! Group commit of submits: each submit hands its new job to one writer task and waits for its
//! answer; the writer takes every job waiting at that moment (up to [`MAX_BATCH`]), inserts
//! them in one transaction ([`Store::insert_jobs`]) and then answers each submitter, so the
//! `201` is sent only after the commit that made the job durable. Under load the batches grow
//! by themselves (what queued up during one commit is the next batch); alone, a submit is its
//! own batch and waits for nothing.

use std::sync::{Arc, OnceLock};

use sluice_core::record::{JobRecord, NewJob};
use sluice_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most jobs inserted in one transaction.
pub const MAX_BATCH: usize = 512;
/// Submits waiting for the writer at most; more wait for room in the channel.
const CHANNEL: usize = 4096;

type Reply = oneshot::Sender<Result<JobRecord, StoreError>>;

/// Why a submit was not inserted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store refused or failed the insert.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer task is gone (the server is stopping).
    #[error("the submit writer has stopped")]
    Stopped,
}

/// The submit queue and its writer task (started on the first submit, on the caller's
/// runtime).
pub struct SubmitQueue {
    store: Arc<dyn Store>,
    tx: OnceLock<mpsc::Sender<(NewJob, Reply)>>,
}

impl SubmitQueue {
    /// A queue writing into `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        SubmitQueue {
            store,
            tx: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::Sender<(NewJob, Reply)> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(CHANNEL);
            tokio::spawn(writer(self.store.clone(), rx));
            tx
        })
    }

    /// Inserts `job` (in a batch with the other submits waiting now) and returns its record
    /// once the batch has been committed.
    pub async fn insert(&self, job: NewJob) -> Result<JobRecord, SubmitError> {
        let (reply, answer) = oneshot::channel();
        if self.sender().send((job, reply)).await.is_err() {
            return Err(SubmitError::Stopped);
        }
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SubmitError::Stopped),
        }
    }
}

/// Takes the waiting submits, inserts them in one transaction, answers each; until every
/// sender is gone.
async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewJob, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (jobs, replies): (Vec<NewJob>, Vec<Reply>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let results = store.insert_jobs(&jobs).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // A submitter that went away (its client disconnected) needs no answer.
            let _ = reply.send(result);
        }
    }
}
