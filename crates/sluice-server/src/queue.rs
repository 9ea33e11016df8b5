//! The in-memory queue ([`sluice_core::queue::JobQueue`]) kept current by the server's own
//! writes: [`TrackedStore`] wraps the store and, after every write that returns the job it
//! changed (insert, transition, retry, requeue, expiry, a schedule's run, purge), puts the job
//! in the queue or takes it out. The store stays the truth: the queue is loaded from it once
//! (on the first tick, [`QueueBook::ensure_loaded`]); writes made while it loads are replayed
//! on top, so a restart rebuilds the same queue.

use std::sync::{Arc, Mutex, MutexGuard};

use sluice_core::job::{JobEvent, JobState};
use sluice_core::queue::{JobQueue, QueueEntry};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sluice_core::spec::Levels;
use sluice_store::{
    AuditEntry, AuditFilter, DeadLetter, Fire, HistoryQuery, HistorySeries, JobFilter, JobOrch,
    JobPage, JobSet, NewToken, OrchJob, QueueStat, Requeue, RetryJob, RollUp, SetFilter, Store,
    StoreError, TokenRecord, Transition,
};

/// Most eligible jobs of one namespace that a scheduling cycle considers (its look-ahead).
pub const HEAD_WINDOW: usize = 1000;

/// One write's effect on the queue.
#[derive(Debug, Clone)]
enum Change {
    /// The job as the write left it (queued: in the queue; else out of it).
    Job {
        id: String,
        namespace: String,
        level: String,
        state: JobState,
        enqueued_at_ms: i64,
        demand: sluice_core::job::Demand,
    },
    /// The job was deleted.
    Gone(String),
}

impl Change {
    fn of(rec: &JobRecord) -> Change {
        Change::Job {
            id: rec.id.clone(),
            namespace: rec.namespace.clone(),
            level: rec.level.clone(),
            state: rec.state,
            enqueued_at_ms: rec.enqueued_at_ms,
            demand: rec.demand.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    queue: JobQueue,
    loaded: bool,
    loading: bool,
    pending: Vec<Change>,
}

/// The queue and its loading state, shared by the store wrapper and the tick.
pub struct QueueBook {
    levels: Arc<Levels>,
    clock: Arc<dyn sluice_backend::clock::Clock>,
    book: Mutex<Book>,
}

/// The queue, locked (see [`QueueBook::lock`]).
pub struct QueueGuard<'a>(MutexGuard<'a, Book>);

impl QueueGuard<'_> {
    /// The queue.
    pub fn queue(&self) -> &JobQueue {
        &self.0.queue
    }

    /// The queue, to change (the tick drops due timers).
    pub fn queue_mut(&mut self) -> &mut JobQueue {
        &mut self.0.queue
    }

    /// Whether it has been loaded from the store.
    pub fn loaded(&self) -> bool {
        self.0.loaded
    }
}

impl QueueBook {
    /// An empty book, not loaded; levels rank the jobs, the clock starts timers.
    pub fn new(levels: Arc<Levels>, clock: Arc<dyn sluice_backend::clock::Clock>) -> Self {
        QueueBook {
            levels,
            clock,
            book: Mutex::new(Book::default()),
        }
    }

    /// Locks the queue (never held across an await).
    pub fn lock(&self) -> QueueGuard<'_> {
        QueueGuard(match self.book.lock() {
            Ok(g) => g,
            // Every change is applied whole under the lock; a panic elsewhere cannot leave it
            // half done.
            Err(poisoned) => poisoned.into_inner(),
        })
    }

    fn apply_to(levels: &Levels, queue: &mut JobQueue, change: &Change, now_ms: i64) {
        match change {
            Change::Job {
                id,
                namespace,
                level,
                state,
                enqueued_at_ms,
                demand,
            } => {
                if *state == JobState::Queued {
                    let entry = QueueEntry {
                        id: Arc::from(id.as_str()),
                        namespace: queue.intern(namespace),
                        level: queue.intern(level),
                        // A level removed from the configuration sorts last.
                        rank: levels.rank(level).unwrap_or(levels.names.len()),
                        enqueued_at_ms: *enqueued_at_ms,
                        demand: demand.clone(),
                    };
                    queue.insert(entry, now_ms);
                } else {
                    queue.remove(id);
                }
            }
            Change::Gone(id) => {
                queue.remove(id);
            }
        }
    }

    fn apply(&self, change: Change) {
        let now = self.clock.now_ms();
        let mut b = self.lock();
        let b = &mut b.0;
        if b.loaded {
            Self::apply_to(&self.levels, &mut b.queue, &change, now);
        } else if b.loading {
            b.pending.push(change);
        }
        // Not loaded and not loading: the load will read this write from the store.
    }

    /// Records what a write returned.
    pub fn record(&self, rec: &JobRecord) {
        self.apply(Change::of(rec));
    }

    /// Records that a job was deleted.
    pub fn gone(&self, id: &str) {
        self.apply(Change::Gone(id.to_string()));
    }

    /// Loads the queue from the store unless it is loaded; writes made meanwhile are replayed
    /// on top. Called by the tick (under the cycle lock) before it reads the queue.
    pub async fn ensure_loaded(&self, store: &dyn Store) -> Result<(), StoreError> {
        {
            let mut b = self.lock();
            if b.0.loaded {
                return Ok(());
            }
            b.0.loading = true;
            b.0.pending.clear();
        }
        let queued = match store.jobs_in_states(&[JobState::Queued]).await {
            Ok(q) => q,
            Err(e) => {
                self.lock().0.loading = false;
                return Err(e);
            }
        };
        let now = self.clock.now_ms();
        let mut b = self.lock();
        let b = &mut b.0;
        let mut queue = JobQueue::new();
        for rec in &queued {
            Self::apply_to(&self.levels, &mut queue, &Change::of(rec), now);
        }
        for change in std::mem::take(&mut b.pending) {
            Self::apply_to(&self.levels, &mut queue, &change, now);
        }
        b.queue = queue;
        b.loaded = true;
        b.loading = false;
        Ok(())
    }

    /// Forgets the queue; the next tick loads it again from the store.
    pub fn reset(&self) {
        let mut b = self.lock();
        b.0.loaded = false;
        b.0.loading = false;
        b.0.pending.clear();
        b.0.queue = JobQueue::new();
    }
}

/// The store, with every job write also applied to the in-memory queue.
pub struct TrackedStore {
    inner: Arc<dyn Store>,
    book: Arc<QueueBook>,
}

impl TrackedStore {
    /// Wraps `inner`, keeping `book` current.
    pub fn new(inner: Arc<dyn Store>, book: Arc<QueueBook>) -> Self {
        TrackedStore { inner, book }
    }

    fn seen(&self, r: Result<JobRecord, StoreError>) -> Result<JobRecord, StoreError> {
        if let Ok(rec) = &r {
            self.book.record(rec);
        }
        r
    }

    fn seen_all(
        &self,
        rs: Vec<Result<JobRecord, StoreError>>,
    ) -> Vec<Result<JobRecord, StoreError>> {
        for rec in rs.iter().flatten() {
            self.book.record(rec);
        }
        rs
    }
}

#[async_trait::async_trait]
impl Store for TrackedStore {
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        let r = self.inner.insert_job(job).await;
        self.seen(r)
    }

    async fn insert_jobs(&self, jobs: &[NewJob]) -> Vec<Result<JobRecord, StoreError>> {
        let r = self.inner.insert_jobs(jobs).await;
        self.seen_all(r)
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.inner.get_job(id).await
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        self.inner.list_jobs(filter, limit, cursor).await
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.jobs_in_states(states).await
    }

    async fn transition(&self, t: &Transition) -> Result<JobRecord, StoreError> {
        let r = self.inner.transition(t).await;
        self.seen(r)
    }

    async fn transitions(&self, ts: &[Transition]) -> Vec<Result<JobRecord, StoreError>> {
        let r = self.inner.transitions(ts).await;
        self.seen_all(r)
    }

    async fn add_note(&self, id: &str, at_ms: i64, message: &str) -> Result<(), StoreError> {
        self.inner.add_note(id, at_ms, message).await
    }

    async fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        self.inner.events(id).await
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.inner.queue_stats().await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        self.inner.history(query).await
    }

    async fn roll_up_history(&self, now_ms: i64) -> Result<RollUp, StoreError> {
        self.inner.roll_up_history(now_ms).await
    }

    async fn create_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        self.inner.create_schedule(s).await
    }

    async fn get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        self.inner.get_schedule(namespace, name).await
    }

    async fn list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.inner.list_schedules(namespace).await
    }

    async fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.inner.due_schedules(now_ms).await
    }

    async fn set_schedule_suspended(
        &self,
        namespace: &str,
        name: &str,
        suspended: bool,
        next_fire_at_ms: Option<i64>,
        at_ms: i64,
        message: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        self.inner
            .set_schedule_suspended(namespace, name, suspended, next_fire_at_ms, at_ms, message)
            .await
    }

    async fn delete_schedule(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_schedule(namespace, name).await
    }

    async fn fire_schedule(&self, f: &Fire) -> Result<Option<JobRecord>, StoreError> {
        let r = self.inner.fire_schedule(f).await;
        if let Ok(Some(rec)) = &r {
            self.book.record(rec);
        }
        r
    }

    async fn job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError> {
        self.inner.job_orch(id).await
    }

    async fn select_jobs(
        &self,
        filter: &SetFilter,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.inner.select_jobs(filter, limit).await
    }

    async fn delete_jobs(&self, set: JobSet, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let r = self.inner.delete_jobs(set, ids).await;
        if let Ok(deleted) = &r {
            for id in deleted {
                self.book.gone(id);
            }
        }
        r
    }

    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.unsettled_failures().await
    }

    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        let out = self.inner.retry_job(r).await;
        self.seen(out)
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        let r = self.inner.dead_letter(d).await;
        self.seen(r)
    }

    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        let r = self.inner.expire_queued(id, at_ms, reason).await;
        self.seen(r)
    }

    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError> {
        let out = self.inner.requeue_dead_letter(r).await;
        self.seen(out)
    }

    async fn queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.inner.queued_past_deadline(now_ms, limit).await
    }

    async fn count_dead_letters(&self) -> Result<u64, StoreError> {
        self.inner.count_dead_letters().await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<sluice_store::Lease>, StoreError> {
        self.inner.acquire_lease(name, holder, ttl_ms).await
    }
    async fn renew_lease(
        &self,
        lease: &sluice_store::Lease,
        ttl_ms: i64,
    ) -> Result<Option<sluice_store::Lease>, StoreError> {
        self.inner.renew_lease(lease, ttl_ms).await
    }
    async fn release_lease(&self, lease: &sluice_store::Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
    async fn get_lease(&self, name: &str) -> Result<Option<sluice_store::Lease>, StoreError> {
        self.inner.get_lease(name).await
    }
    async fn changes(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<sluice_store::StoreChange>>, StoreError> {
        self.inner.changes().await
    }
    async fn request_stop(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.request_stop(id).await
    }
    async fn set_schedule_template(
        &self,
        namespace: &str,
        name: &str,
        template: &serde_json::Value,
        at_ms: i64,
        message: &str,
    ) -> Result<sluice_core::schedule::ScheduleRecord, StoreError> {
        self.inner
            .set_schedule_template(namespace, name, template, at_ms, message)
            .await
    }

    async fn put_usage(&self, record: &sluice_core::cost::UsageRecord) -> Result<(), StoreError> {
        self.inner.put_usage(record).await
    }
    async fn usage(
        &self,
        filter: &sluice_store::UsageFilter,
        limit: u32,
    ) -> Result<Vec<sluice_core::cost::UsageRecord>, StoreError> {
        self.inner.usage(filter, limit).await
    }
    /// The fenced store, still keeping this book current.
    fn fenced(&self, lease: &sluice_store::Lease) -> Arc<dyn Store> {
        Arc::new(TrackedStore::new(
            self.inner.fenced(lease),
            self.book.clone(),
        ))
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        self.inner.create_token(token).await
    }
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token_by_hash(secret_hash).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<TokenRecord, StoreError> {
        self.inner.revoke_token(id, at_ms).await
    }
    async fn count_tokens(&self) -> Result<u64, StoreError> {
        self.inner.count_tokens().await
    }
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.inner.record_audit(entry).await
    }
    async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_log(filter, limit).await
    }
    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.inner.purge_audit(before_ms).await
    }
}
