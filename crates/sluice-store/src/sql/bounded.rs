//! [`Bounded`]: a PostgreSQL store whose every call is bounded in time ([`CALL_TIMEOUT`]), so a
//! call on a connection that went silent fails as unavailable (the API answers 503) instead of
//! hanging, and the pool replaces its connections (see [`super::liveness`]).
//!
//! [`crate::open`] hands this out for PostgreSQL; SQLite has no network to go silent (its
//! waits are bounded by its busy timeout) and is not wrapped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use tokio::sync::mpsc;

use super::SqlStore;
use super::liveness::{CALL_TIMEOUT, Liveness, SUSPECT_AFTER, is_stale_server, timed_out};
use crate::auth::{AuditEntry, AuditFilter, NewToken, TokenRecord};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::history::{HistoryQuery, HistorySeries, RollUp};
use crate::lease::{Lease, StoreChange};
use crate::orchestration::{
    DeadLetter, Fire, JobOrch, JobSet, OrchJob, Preempted, Requeue, RetryJob, SetFilter,
};
use crate::store::{JobFilter, JobPage, QueueStat, Store, Transition};

impl SqlStore {
    /// This store as the server holds it: on PostgreSQL every call bounded in time
    /// ([`Bounded`]), on SQLite as is.
    pub fn into_shared(self) -> Arc<dyn Store> {
        match self.dialect {
            Dialect::Sqlite => Arc::new(self),
            Dialect::Postgres => {
                let liveness = self.liveness.clone();
                Arc::new(Bounded::new(Arc::new(self), liveness, CALL_TIMEOUT))
            }
        }
    }
}

/// A [`Store`] whose calls each end within a time limit: past it, the call fails with
/// [`StoreError::Unavailable`] (an I/O timeout) and the pool's connections become suspect.
pub(super) struct Bounded {
    inner: Arc<dyn Store>,
    liveness: Arc<Liveness>,
    limit: Duration,
}

impl Bounded {
    pub(super) fn new(inner: Arc<dyn Store>, liveness: Arc<Liveness>, limit: Duration) -> Bounded {
        Bounded {
            inner,
            liveness,
            limit,
        }
    }

    /// Runs `call` within the limit.
    async fn bound<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        Watched {
            call: Box::pin(call),
            deadline: Box::pin(tokio::time::sleep(self.limit)),
            started: Instant::now(),
            liveness: &self.liveness,
            limit: self.limit,
            done: false,
        }
        .await
    }

    /// Runs a batch call within the limit; past it every item fails.
    async fn bound_batch<T>(
        &self,
        n: usize,
        call: impl Future<Output = Vec<Result<T, StoreError>>> + Send,
    ) -> Vec<Result<T, StoreError>> {
        match self.bound(async { Ok(call.await) }).await {
            Ok(results) => {
                if results
                    .iter()
                    .any(|r| r.as_ref().is_err_and(is_stale_server))
                {
                    self.liveness
                        .suspect_all("a write was refused as read only (a standby now)");
                }
                results
            }
            Err(_) => (0..n)
                .map(|_| Err(StoreError::Unavailable(timed_out("store call", self.limit))))
                .collect(),
        }
    }
}

/// A call racing its deadline. On the deadline, or when dropped by its caller after running
/// [`SUSPECT_AFTER`], it marks the pool's connections suspect *before* the call (and with it
/// the connection it holds) is dropped, so the pool closes that connection instead of taking
/// it back; dropped sooner, it notes that a call was abandoned, so the pool pings that
/// connection (bounded) before taking it back.
struct Watched<'a, F> {
    call: Pin<Box<F>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    started: Instant,
    liveness: &'a Liveness,
    limit: Duration,
    done: bool,
}

impl<T, F: Future<Output = Result<T, StoreError>>> Future for Watched<'_, F> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin (the futures are boxed).
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Err(StoreError::Unavailable(timed_out(
                "store call polled after it ended",
                this.limit,
            ))));
        }
        if let Poll::Ready(result) = this.call.as_mut().poll(cx) {
            this.done = true;
            if let Err(e) = &result
                && is_stale_server(e)
            {
                this.liveness
                    .suspect_all("a write was refused as read only (a standby now)");
            }
            return Poll::Ready(result);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.liveness
                .suspect_all("a store call got no answer in time");
            return Poll::Ready(Err(StoreError::Unavailable(timed_out(
                "store call",
                this.limit,
            ))));
        }
        Poll::Pending
    }
}

impl<F> Drop for Watched<'_, F> {
    fn drop(&mut self) {
        // Runs before the fields (the call) are dropped.
        if !self.done {
            if self.started.elapsed() >= SUSPECT_AFTER {
                self.liveness
                    .suspect_all("a slow store call was abandoned by its caller");
            } else {
                self.liveness.note_abandoned();
            }
        }
    }
}

#[async_trait]
impl Store for Bounded {
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.insert_job(job)).await
    }

    async fn insert_jobs(&self, jobs: &[NewJob]) -> Vec<Result<JobRecord, StoreError>> {
        self.bound_batch(jobs.len(), self.inner.insert_jobs(jobs))
            .await
    }

    async fn insert_jobs_audited(
        &self,
        jobs: &[NewJob],
        audits: &[Option<AuditEntry>],
    ) -> Vec<Result<JobRecord, StoreError>> {
        self.bound_batch(jobs.len(), self.inner.insert_jobs_audited(jobs, audits))
            .await
    }

    async fn transitions(&self, ts: &[Transition]) -> Vec<Result<JobRecord, StoreError>> {
        self.bound_batch(ts.len(), self.inner.transitions(ts)).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.bound(self.inner.get_job(id)).await
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        self.bound(self.inner.list_jobs(filter, limit, cursor))
            .await
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        self.bound(self.inner.jobs_in_states(states)).await
    }

    async fn transition(&self, t: &Transition) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.transition(t)).await
    }

    async fn add_note(&self, id: &str, at_ms: i64, message: &str) -> Result<(), StoreError> {
        self.bound(self.inner.add_note(id, at_ms, message)).await
    }

    async fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        self.bound(self.inner.events(id)).await
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.bound(self.inner.queue_stats()).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        self.bound(self.inner.history(query)).await
    }

    async fn roll_up_history(&self, now_ms: i64) -> Result<RollUp, StoreError> {
        self.bound(self.inner.roll_up_history(now_ms)).await
    }

    async fn create_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        self.bound(self.inner.create_schedule(s)).await
    }

    async fn get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        self.bound(self.inner.get_schedule(namespace, name)).await
    }

    async fn list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.bound(self.inner.list_schedules(namespace)).await
    }

    async fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.bound(self.inner.due_schedules(now_ms)).await
    }

    async fn update_schedule(
        &self,
        s: &NewSchedule,
        at_ms: i64,
    ) -> Result<ScheduleRecord, StoreError> {
        self.bound(self.inner.update_schedule(s, at_ms)).await
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
        self.bound(self.inner.set_schedule_suspended(
            namespace,
            name,
            suspended,
            next_fire_at_ms,
            at_ms,
            message,
        ))
        .await
    }

    async fn delete_schedule(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.bound(self.inner.delete_schedule(namespace, name))
            .await
    }

    async fn fire_schedule(&self, f: &Fire) -> Result<Option<JobRecord>, StoreError> {
        self.bound(self.inner.fire_schedule(f)).await
    }

    async fn job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError> {
        self.bound(self.inner.job_orch(id)).await
    }

    async fn select_jobs(
        &self,
        filter: &SetFilter,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.bound(self.inner.select_jobs(filter, limit)).await
    }

    async fn delete_jobs(&self, set: JobSet, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.bound(self.inner.delete_jobs(set, ids)).await
    }

    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.bound(self.inner.unsettled_failures()).await
    }

    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.retry_job(r)).await
    }

    async fn preempt_job(&self, p: &Preempted) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.preempt_job(p)).await
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.dead_letter(d)).await
    }

    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.expire_queued(id, at_ms, reason))
            .await
    }

    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError> {
        self.bound(self.inner.requeue_dead_letter(r)).await
    }

    async fn queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.bound(self.inner.queued_past_deadline(now_ms, limit))
            .await
    }

    async fn count_dead_letters(&self) -> Result<u64, StoreError> {
        self.bound(self.inner.count_dead_letters()).await
    }

    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        self.bound(self.inner.create_token(token)).await
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.bound(self.inner.token_by_hash(secret_hash)).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.bound(self.inner.list_tokens()).await
    }

    async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<TokenRecord, StoreError> {
        self.bound(self.inner.revoke_token(id, at_ms)).await
    }

    async fn count_tokens(&self) -> Result<u64, StoreError> {
        self.bound(self.inner.count_tokens()).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.bound(self.inner.record_audit(entry)).await
    }

    async fn record_audits(&self, entries: &[AuditEntry]) -> Vec<Result<(), StoreError>> {
        self.bound_batch(entries.len(), self.inner.record_audits(entries))
            .await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.bound(self.inner.audit_log(filter, limit)).await
    }

    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.bound(self.inner.purge_audit(before_ms)).await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.bound(self.inner.acquire_lease(name, holder, ttl_ms))
            .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl_ms: i64) -> Result<Option<Lease>, StoreError> {
        self.bound(self.inner.renew_lease(lease, ttl_ms)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.bound(self.inner.release_lease(lease)).await
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        self.bound(self.inner.get_lease(name)).await
    }

    fn fenced(&self, lease: &Lease) -> Arc<dyn Store> {
        Arc::new(Bounded::new(
            self.inner.fenced(lease),
            self.liveness.clone(),
            self.limit,
        ))
    }

    /// Bounds the start of the feed (connecting, LISTEN), not the feed itself.
    async fn changes(&self) -> Result<Option<mpsc::Receiver<StoreChange>>, StoreError> {
        self.bound(self.inner.changes()).await
    }

    async fn request_stop(&self, id: &str) -> Result<bool, StoreError> {
        self.bound(self.inner.request_stop(id)).await
    }

    async fn set_schedule_template(
        &self,
        namespace: &str,
        name: &str,
        template: &serde_json::Value,
        at_ms: i64,
        message: &str,
    ) -> Result<sluice_core::schedule::ScheduleRecord, StoreError> {
        self.bound(
            self.inner
                .set_schedule_template(namespace, name, template, at_ms, message),
        )
        .await
    }

    async fn put_usage(&self, record: &sluice_core::cost::UsageRecord) -> Result<(), StoreError> {
        self.bound(self.inner.put_usage(record)).await
    }

    async fn put_run_result(
        &self,
        job_id: &str,
        attempt: u32,
        at_ms: i64,
        result: &sluice_core::run_result::RunResult,
    ) -> Result<(), StoreError> {
        self.bound(self.inner.put_run_result(job_id, attempt, at_ms, result))
            .await
    }

    async fn run_results(
        &self,
        job_id: &str,
    ) -> Result<Vec<(u32, sluice_core::run_result::RunResult)>, StoreError> {
        self.bound(self.inner.run_results(job_id)).await
    }

    async fn usage(
        &self,
        filter: &crate::usage::UsageFilter,
        limit: u32,
    ) -> Result<Vec<sluice_core::cost::UsageRecord>, StoreError> {
        self.bound(self.inner.usage(filter, limit)).await
    }

    async fn apply_workflow(
        &self,
        w: &crate::workflow::NewWorkflow,
    ) -> Result<
        (
            crate::workflow::WorkflowApplied,
            crate::workflow::WorkflowRecord,
        ),
        StoreError,
    > {
        self.bound(self.inner.apply_workflow(w)).await
    }

    async fn get_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::workflow::WorkflowRecord>, StoreError> {
        self.bound(self.inner.get_workflow(namespace, name)).await
    }

    async fn list_workflows(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<crate::workflow::WorkflowRecord>, StoreError> {
        self.bound(self.inner.list_workflows(namespace)).await
    }

    async fn due_workflows(
        &self,
        now_ms: i64,
    ) -> Result<Vec<crate::workflow::WorkflowRecord>, StoreError> {
        self.bound(self.inner.due_workflows(now_ms)).await
    }

    async fn fire_workflow(
        &self,
        f: &crate::workflow::WorkflowFire,
    ) -> Result<Option<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.bound(self.inner.fire_workflow(f)).await
    }

    async fn get_workflow_run(
        &self,
        id: &str,
    ) -> Result<Option<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.bound(self.inner.get_workflow_run(id)).await
    }

    async fn list_workflow_runs(
        &self,
        filter: &crate::workflow::RunFilter,
        limit: u32,
    ) -> Result<Vec<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.bound(self.inner.list_workflow_runs(filter, limit))
            .await
    }

    async fn update_workflow_run(
        &self,
        u: &crate::workflow::RunUpdate,
    ) -> Result<(crate::workflow::WorkflowRunRecord, Vec<JobRecord>), StoreError> {
        self.bound(self.inner.update_workflow_run(u)).await
    }

    async fn close(&self) {
        // Closing waits for the connections in use; one stuck on a silent socket must not hold
        // a shutdown forever.
        let closing = self.bound(async {
            self.inner.close().await;
            Ok(())
        });
        if let Err(e) = closing.await {
            tracing::warn!(error = %e.detail(), "closing the store took too long; left behind");
        }
    }
}
