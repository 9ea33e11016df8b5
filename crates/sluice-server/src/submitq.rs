//! Group commit of submits (each with its audit entry) and of other audit entries: each caller hands its item to one writer
//! task and waits for its answer; the writer takes every item waiting at that moment (up to
//! [`MAX_BATCH`]), writes them in one transaction ([`Store::insert_jobs`],
//! [`Store::insert_jobs_audited`], [`Store::record_audits`]) and then answers each caller, so a submit's `201` is sent only
//! after the commit that made the job durable. Under load the batches grow by themselves
//! (what queued up during one commit is the next batch); alone, an item is its own batch and
//! waits for nothing.
//! Each batch's size and time are in `sluice_group_commit_batch_size` and
//! `sluice_group_commit_seconds` (by `writer`: `submit`, `audit`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use sluice_core::record::{JobRecord, NewJob};
use sluice_store::AuditEntry;
use sluice_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Most items written in one transaction.
pub const MAX_BATCH: usize = 512;
/// Items waiting for the writer at most; more wait for room in the channel.
const CHANNEL: usize = 4096;

/// Why an item was not written.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store refused or failed the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer task is gone (the server is stopping).
    #[error("the submit writer has stopped")]
    Stopped,
}

type Batch<R> = Pin<Box<dyn Future<Output = Vec<Result<R, StoreError>>> + Send>>;
type WriteFn<T, R> = Arc<dyn Fn(Arc<dyn Store>, Vec<T>) -> Batch<R> + Send + Sync>;
type Item<T, R> = (T, oneshot::Sender<Result<R, StoreError>>);

/// Group-commit writers: items of type `T` in, one `Result<R>` per item out.
struct GroupCommit<T, R> {
    store: Arc<dyn Store>,
    write: WriteFn<T, R>,
    writers: usize,
    /// Each batch's size and time (`sluice_group_commit_*{writer=name}`).
    metrics: Arc<Metrics>,
    name: &'static str,
    /// Whether the writer runs on a thread of its own (see [`spawn_on_own_thread`]).
    own_thread: bool,
    tx: OnceLock<mpsc::Sender<Item<T, R>>>,
}

/// Runs `task` on a thread of its own with a single-threaded runtime (named
/// `sluice-{name}`), or on the caller's runtime if no thread can be started. For the one
/// SQLite writer: each of a batch's statements is a hand-off to the connection's thread and
/// back, and on the shared runtime every hand-back waited behind the HTTP tasks; on its own
/// thread the writer is polled as soon as its statement is done (at 100,000 queued, 64
/// clients: 4,281-4,336 submits/s against 4,020, BENCHMARKS.md). The thread ends with the
/// task (when every sender of its channel is gone).
fn spawn_on_own_thread(name: &str, task: impl Future<Output = ()> + Send + 'static) {
    let task = Box::pin(task);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let slot = Arc::new(std::sync::Mutex::new(Some(task)));
    let mine = slot.clone();
    let started = runtime.and_then(|rt| {
        std::thread::Builder::new()
            .name(format!("sluice-{name}"))
            .spawn(move || {
                let task = mine.lock().ok().and_then(|mut t| t.take());
                if let Some(task) = task {
                    rt.block_on(task);
                }
            })
    });
    if let Err(e) = started {
        tracing::warn!("the {name} writer runs on the shared runtime: no thread of its own: {e}");
        if let Some(task) = slot.lock().ok().and_then(|mut t| t.take()) {
            tokio::spawn(task);
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// `writers` tasks take batches from one channel: 1 where the database has one writer
    /// (SQLite), a few where transactions run in parallel (PostgreSQL).
    fn new(
        store: Arc<dyn Store>,
        write: WriteFn<T, R>,
        writers: usize,
        own_thread: bool,
        metrics: Arc<Metrics>,
        name: &'static str,
    ) -> Self {
        GroupCommit {
            store,
            write,
            writers: writers.max(1),
            metrics,
            name,
            own_thread,
            tx: OnceLock::new(),
        }
    }

    /// The channel to the writer tasks, started on the first call (on the caller's runtime).
    fn sender(&self) -> &mpsc::Sender<Item<T, R>> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(CHANNEL);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            for _ in 0..self.writers {
                let task = writer(
                    self.store.clone(),
                    self.write.clone(),
                    rx.clone(),
                    (self.metrics.clone(), self.name),
                );
                if self.own_thread {
                    spawn_on_own_thread(self.name, task);
                } else {
                    tokio::spawn(task);
                }
            }
            tx
        })
    }

    /// Writes `item` (in a batch with the others waiting now); its result once the batch has
    /// been committed.
    async fn write(&self, item: T) -> Result<R, SubmitError> {
        let (reply, answer) = oneshot::channel();
        if self.sender().send((item, reply)).await.is_err() {
            return Err(SubmitError::Stopped);
        }
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SubmitError::Stopped),
        }
    }
}

/// Takes the waiting items, writes them in one transaction, answers each; until every
/// sender is gone. Several writers share the receiver: one takes a batch while the others
/// write theirs.
async fn writer<T, R>(
    store: Arc<dyn Store>,
    write: WriteFn<T, R>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Item<T, R>>>>,
    (metrics, name): (Arc<Metrics>, &'static str),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = rx.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            break;
        }
        let (items, replies): (Vec<T>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let (n, started) = (items.len(), std::time::Instant::now());
        let results = write(store.clone(), items).await;
        metrics.group_commit(name, n, started.elapsed());
        for (reply, result) in replies.into_iter().zip(results) {
            // A caller that went away (its client disconnected) needs no answer.
            let _ = reply.send(result);
        }
    }
}

/// The submit queue and its writer tasks: each job goes in with the audit entry of its
/// submit, written in the same transaction ([`Store::insert_jobs_audited`]).
pub struct SubmitQueue(GroupCommit<(NewJob, Option<AuditEntry>), JobRecord>);

impl SubmitQueue {
    /// A queue writing into `store` with `writers` concurrent writers, on a thread of their
    /// own if `own_thread` (for SQLite's one writer).
    pub fn new(
        store: Arc<dyn Store>,
        writers: usize,
        own_thread: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        SubmitQueue(GroupCommit::new(
            store,
            Arc::new(
                |store: Arc<dyn Store>,
                 items: Vec<(NewJob, Option<AuditEntry>)>|
                 -> Batch<JobRecord> {
                    let (jobs, audits): (Vec<NewJob>, Vec<Option<AuditEntry>>) =
                        items.into_iter().unzip();
                    Box::pin(async move { store.insert_jobs_audited(&jobs, &audits).await })
                },
            ),
            writers,
            own_thread,
            metrics,
            "submit",
        ))
    }

    /// Inserts `job` and, if it is inserted, its `audit` entry (in a batch with the other
    /// submits waiting now) and returns its record once the batch has been committed.
    pub async fn insert(
        &self,
        job: NewJob,
        audit: Option<AuditEntry>,
    ) -> Result<JobRecord, SubmitError> {
        self.0.write((job, audit)).await
    }
}

/// The audit log's writer: entries of concurrent requests are appended in one transaction.
pub struct AuditQueue(GroupCommit<AuditEntry, ()>);

impl AuditQueue {
    /// A queue writing into `store` with `writers` concurrent writers.
    pub fn new(store: Arc<dyn Store>, writers: usize, metrics: Arc<Metrics>) -> Self {
        AuditQueue(GroupCommit::new(
            store,
            Arc::new(
                |store: Arc<dyn Store>, entries: Vec<AuditEntry>| -> Batch<()> {
                    Box::pin(async move { store.record_audits(&entries).await })
                },
            ),
            writers,
            false,
            metrics,
            "audit",
        ))
    }

    /// Appends `entry` (with the others waiting now); returns once it is committed.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), SubmitError> {
        self.0.write(entry).await
    }
}
