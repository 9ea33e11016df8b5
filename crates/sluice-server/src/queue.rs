//! The in-memory queue ([`sluice_core::queue::JobQueue`]) kept current by the server's own
//! writes: [`TrackedStore`] wraps the store and, after every write that returns the job it
//! changed (insert, transition, retry, requeue, expiry, a schedule's run, purge), puts the job
//! in the queue or takes it out. The store stays the truth: the queue is loaded from it once
//! (on the first tick, [`QueueBook::ensure_loaded`]); writes made while it loads are replayed
//! on top, so a restart rebuilds the same queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_core::job::{JobEvent, JobState};
use sluice_core::queue::{JobQueue, QueueEntry};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sluice_core::spec::Levels;
use sluice_store::{
    AuditEntry, AuditFilter, DeadLetter, Fire, HistoryQuery, HistorySeries, JobFilter, JobOrch,
    JobPage, JobSet, NewToken, OrchJob, Preempted, QueueStat, Requeue, RetryJob, RollUp, SetFilter,
    Store, StoreError, TokenRecord, Transition,
};

use crate::token_cache::TokenCache;

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
        name: String,
        max_runtime_ms: Option<i64>,
        attempt: u32,
        /// The whole record, for a job that holds room (admitted, submitted, running): the
        /// active set keeps it.
        record: Option<Arc<JobRecord>>,
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
            name: rec.name.clone(),
            max_runtime_ms: max_runtime_ms(rec),
            attempt: rec.attempt,
            record: JobState::ACTIVE
                .contains(&rec.state)
                .then(|| Arc::new(rec.clone())),
        }
    }
}

/// How long the active set in memory is trusted before it is read again from the store: a
/// bound on any drift (a write this process did not see), not the way it is kept current.
pub const ACTIVE_RESYNC_MS: i64 = 10_000;

/// The jobs that hold room (admitted, submitted, running), kept by the same writes as the
/// queue, so that the tick's steps need not read them from the store every tick.
#[derive(Debug, Default)]
struct Active {
    jobs: HashMap<String, Arc<JobRecord>>,
    /// When it was last read whole from the store; none: not read since the queue loaded.
    synced_at_ms: Option<i64>,
    /// A read from the store is under way: writes are also kept to be replayed on it.
    loading: bool,
    pending: Vec<Change>,
}

impl Active {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Job {
                id,
                record: Some(rec),
                ..
            } => {
                self.jobs.insert(id.clone(), rec.clone());
            }
            Change::Job { id, .. } | Change::Gone(id) => {
                self.jobs.remove(id);
            }
        }
    }
}

/// A job's own bound on its run time (`maxRuntime`), ms; none when it has none or its stored
/// job does not decode.
pub fn max_runtime_ms(rec: &JobRecord) -> Option<i64> {
    let secs = rec.job().ok()?.max_runtime_secs?;
    i64::try_from(secs).ok()?.checked_mul(1000)
}

#[derive(Debug, Default)]
struct Book {
    queue: JobQueue,
    loaded: bool,
    loading: bool,
    pending: Vec<Change>,
    active: Active,
    /// Bumped by every reset: a read of the active set started before one is dropped.
    epoch: u64,
}

/// The queue and its loading state, shared by the store wrapper and the tick.
pub struct QueueBook {
    levels: Arc<Levels>,
    clock: Arc<dyn sluice_backend::clock::Clock>,
    book: Mutex<Book>,
    /// One read of the active set at a time.
    resync: tokio::sync::Mutex<()>,
    /// The store under the [`TrackedStore`] that keeps this book (set by
    /// [`TrackedStore::new`]): where [`QueueBook::active`] reads the active set again from.
    source: std::sync::OnceLock<Arc<dyn Store>>,
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
            resync: tokio::sync::Mutex::new(()),
            source: std::sync::OnceLock::new(),
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
                name,
                max_runtime_ms,
                attempt,
                ..
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
                        // Not interned: names are many and the interned set never shrinks.
                        name: Arc::from(name.as_str()),
                        max_runtime_ms: *max_runtime_ms,
                        attempt: *attempt,
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
        if b.active.synced_at_ms.is_some() {
            b.active.apply(&change);
        }
        if b.active.loading {
            b.active.pending.push(change.clone());
        }
        if b.loaded {
            Self::apply_to(&self.levels, &mut b.queue, &change, now);
        } else if b.loading {
            b.pending.push(change);
        }
        // Not loaded and not loading: the load will read this write from the store.
    }

    /// The active jobs in `states` (a subset of [`JobState::ACTIVE`]) as the store would list
    /// them (by `enqueued_at`, then id), from memory while the queue is loaded; none when it
    /// is not (a follower, or before the first tick). The set is read whole from the store
    /// when it is older than [`ACTIVE_RESYNC_MS`]; writes made during that read are replayed
    /// on it, as for the queue.
    pub async fn active_in(
        &self,
        store: &dyn Store,
        states: &[JobState],
    ) -> Option<Result<Vec<Arc<JobRecord>>, StoreError>> {
        let now = self.clock.now_ms();
        let fresh = {
            let b = self.lock();
            if !b.0.loaded {
                return None;
            }
            b.0.active
                .synced_at_ms
                .is_some_and(|t| (0..ACTIVE_RESYNC_MS).contains(&now.saturating_sub(t)))
        };
        if !fresh {
            let _one = self.resync.lock().await;
            let epoch = {
                let mut b = self.lock();
                b.0.active.loading = true;
                b.0.active.pending.clear();
                b.0.epoch
            };
            let read = store.jobs_in_states(&JobState::ACTIVE).await;
            let mut b = self.lock();
            let b = &mut b.0;
            b.active.loading = false;
            let pending = std::mem::take(&mut b.active.pending);
            let read = match read {
                Ok(read) => read,
                Err(e) => return Some(Err(e)),
            };
            if b.epoch != epoch || !b.loaded {
                // Reset meanwhile (leadership changed): this read is not ours to keep.
                return None;
            }
            b.active.jobs = read
                .into_iter()
                .map(|rec| (rec.id.clone(), Arc::new(rec)))
                .collect();
            for change in &pending {
                b.active.apply(change);
            }
            b.active.synced_at_ms = Some(now);
        }
        let b = self.lock();
        let mut out: Vec<Arc<JobRecord>> =
            b.0.active
                .jobs
                .values()
                .filter(|r| states.contains(&r.state))
                .cloned()
                .collect();
        out.sort_by(|a, b| (a.enqueued_at_ms, &a.id).cmp(&(b.enqueued_at_ms, &b.id)));
        Some(Ok(out))
    }

    /// [`QueueBook::active_in`] over the store this book's [`TrackedStore`] wraps, the records
    /// shared rather than copied (the tick's steps read them every tick); none when the queue
    /// is not loaded (or no tracked store keeps this book).
    pub async fn active(
        &self,
        states: &[JobState],
    ) -> Option<Result<Vec<Arc<JobRecord>>, StoreError>> {
        let store = self.source.get()?.clone();
        self.active_in(store.as_ref(), states).await
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

    /// The queue's statistics per namespace and level, as [`Store::queue_stats`] gives them,
    /// from memory; none until the queue is loaded.
    pub fn stats(&self) -> Option<Vec<QueueStat>> {
        let b = self.lock();
        if !b.0.loaded {
            return None;
        }
        Some(
            b.0.queue
                .stats()
                .into_iter()
                .map(|s| QueueStat {
                    namespace: s.namespace.to_string(),
                    level: s.level.to_string(),
                    queued: s.queued,
                    oldest_enqueued_at_ms: s.oldest_enqueued_at_ms,
                })
                .collect(),
        )
    }

    /// Forgets the queue; the next tick loads it again from the store.
    pub fn reset(&self) {
        let mut b = self.lock();
        b.0.loaded = false;
        b.0.loading = false;
        b.0.pending.clear();
        b.0.queue = JobQueue::new();
        b.0.active = Active::default();
        b.0.epoch = b.0.epoch.wrapping_add(1);
    }
}

/// The store, with every job write also applied to the in-memory queue.
pub struct TrackedStore {
    inner: Arc<dyn Store>,
    book: Arc<QueueBook>,
    /// The tokens looked up, when this server is the only one ([`TrackedStore::caching_tokens`]).
    tokens: Option<TokenCache>,
}

impl TrackedStore {
    /// Wraps `inner`, keeping `book` current.
    pub fn new(inner: Arc<dyn Store>, book: Arc<QueueBook>) -> Self {
        // A book is kept by one tracked store; should a second wrap it, the first's store
        // stays the source (both see the same writes).
        let _ = book.source.set(inner.clone());
        TrackedStore {
            inner,
            book,
            tokens: None,
        }
    }

    /// Keeps the tokens looked up in memory ([`crate::token_cache`]): only for a server that
    /// is the only one on its database (SQLite), so that every revocation goes through here.
    pub fn caching_tokens(mut self) -> Self {
        self.tokens = Some(TokenCache::default());
        self
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

    async fn insert_jobs_audited(
        &self,
        jobs: &[NewJob],
        audits: &[Option<AuditEntry>],
    ) -> Vec<Result<JobRecord, StoreError>> {
        let r = self.inner.insert_jobs_audited(jobs, audits).await;
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
        // The jobs holding room, from memory while the queue is loaded (the leader's tick
        // reads them in every step).
        if !states.is_empty()
            && states.iter().all(|s| JobState::ACTIVE.contains(s))
            && let Some(r) = self.book.active_in(self.inner.as_ref(), states).await
        {
            return r.map(|v| v.iter().map(|r| JobRecord::clone(r)).collect());
        }
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
        // The loaded queue holds exactly the queued jobs: no scan of the store.
        match self.book.stats() {
            Some(stats) => Ok(stats),
            None => self.inner.queue_stats().await,
        }
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

    async fn update_schedule(
        &self,
        s: &NewSchedule,
        at_ms: i64,
    ) -> Result<ScheduleRecord, StoreError> {
        self.inner.update_schedule(s, at_ms).await
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

    async fn preempt_job(&self, p: &Preempted) -> Result<JobRecord, StoreError> {
        let out = self.inner.preempt_job(p).await;
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

    async fn put_run_result(
        &self,
        job_id: &str,
        attempt: u32,
        at_ms: i64,
        result: &sluice_core::run_result::RunResult,
    ) -> Result<(), StoreError> {
        self.inner
            .put_run_result(job_id, attempt, at_ms, result)
            .await
    }

    async fn run_results(
        &self,
        job_id: &str,
    ) -> Result<Vec<(u32, sluice_core::run_result::RunResult)>, StoreError> {
        self.inner.run_results(job_id).await
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
    async fn apply_workflow(
        &self,
        w: &sluice_store::NewWorkflow,
    ) -> Result<(sluice_store::WorkflowApplied, sluice_store::WorkflowRecord), StoreError> {
        self.inner.apply_workflow(w).await
    }

    async fn get_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<sluice_store::WorkflowRecord>, StoreError> {
        self.inner.get_workflow(namespace, name).await
    }

    async fn list_workflows(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<sluice_store::WorkflowRecord>, StoreError> {
        self.inner.list_workflows(namespace).await
    }

    async fn due_workflows(
        &self,
        now_ms: i64,
    ) -> Result<Vec<sluice_store::WorkflowRecord>, StoreError> {
        self.inner.due_workflows(now_ms).await
    }

    async fn fire_workflow(
        &self,
        f: &sluice_store::WorkflowFire,
    ) -> Result<Option<sluice_store::WorkflowRunRecord>, StoreError> {
        self.inner.fire_workflow(f).await
    }

    async fn get_workflow_run(
        &self,
        id: &str,
    ) -> Result<Option<sluice_store::WorkflowRunRecord>, StoreError> {
        self.inner.get_workflow_run(id).await
    }

    async fn list_workflow_runs(
        &self,
        filter: &sluice_store::RunFilter,
        limit: u32,
    ) -> Result<Vec<sluice_store::WorkflowRunRecord>, StoreError> {
        self.inner.list_workflow_runs(filter, limit).await
    }

    async fn update_workflow_run(
        &self,
        u: &sluice_store::RunUpdate,
    ) -> Result<(sluice_store::WorkflowRunRecord, Vec<JobRecord>), StoreError> {
        let r = self.inner.update_workflow_run(u).await;
        if let Ok((_, jobs)) = &r {
            for rec in jobs {
                self.book.record(rec);
            }
        }
        r
    }

    async fn close(&self) {
        self.inner.close().await
    }
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        self.inner.create_token(token).await
    }
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(cache) = &self.tokens else {
            return self.inner.token_by_hash(secret_hash).await;
        };
        let generation = match cache.get(secret_hash) {
            Ok(rec) => return Ok(Some(rec)),
            Err(generation) => generation,
        };
        let rec = self.inner.token_by_hash(secret_hash).await?;
        if let Some(rec) = &rec {
            cache.keep(rec, generation);
        }
        Ok(rec)
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<TokenRecord, StoreError> {
        let r = self.inner.revoke_token(id, at_ms).await;
        // Whatever the answer (it may have been written before an error came back).
        if let Some(cache) = &self.tokens {
            cache.forget_all();
        }
        r
    }
    async fn count_tokens(&self) -> Result<u64, StoreError> {
        self.inner.count_tokens().await
    }
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.inner.record_audit(entry).await
    }

    async fn record_audits(&self, entries: &[AuditEntry]) -> Vec<Result<(), StoreError>> {
        self.inner.record_audits(entries).await
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
