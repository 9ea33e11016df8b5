//! Test doubles for the tick: an in-memory backend (runs "run" until told otherwise; no process
//! is spawned) and a store wrapper that fails chosen writes.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sluice_backend::{
    Backend, BackendError, CapacityReport, LogChunk, RunRef, RunStatus, SubmitRequest, Submitted,
};
use sluice_core::NodeCapacity;
use sluice_core::capacity::Snapshot;
use sluice_core::job::{JobEvent, JobState, Resources};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sluice_store::{
    AuditEntry, AuditFilter, DeadLetter, Fire, HistoryQuery, HistorySeries, JobFilter, JobOrch,
    JobPage, JobSet, NewToken, OrchJob, QueueStat, Requeue, RetryJob, RollUp, SetFilter, Store,
    StoreError, TokenRecord, Transition,
};

/// One node of `cores_milli` / `memory_mib`; every submitted run is running, and its room used.
#[derive(Debug, Default)]
pub struct FakeBackend {
    pub cores_milli: u64,
    pub memory_mib: u64,
    runs: Mutex<HashMap<String, Resources>>,
    /// `capacity` panics when set (to kill the scheduler task).
    pub panic_on_capacity: AtomicBool,
}

impl FakeBackend {
    pub fn new(cores_milli: u64, memory_mib: u64) -> Self {
        FakeBackend {
            cores_milli,
            memory_mib,
            ..Default::default()
        }
    }

    /// The jobs with a run.
    pub fn submitted(&self) -> BTreeSet<String> {
        self.runs.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait::async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        assert!(
            !self.panic_on_capacity.load(Ordering::SeqCst),
            "fake backend told to panic in capacity()"
        );
        let runs = self.runs.lock().unwrap();
        let used = runs
            .values()
            .fold(Resources::default(), |acc, r| acc.plus(r));
        Ok(CapacityReport {
            snapshot: Snapshot {
                available: true,
                nodes: vec![NodeCapacity::new(
                    "n1",
                    self.cores_milli.saturating_sub(used.cpu_milli),
                    self.memory_mib.saturating_sub(used.mem_mib),
                    None,
                )],
                allocatable: vec![NodeCapacity::new(
                    "n1",
                    self.cores_milli,
                    self.memory_mib,
                    None,
                )],
            },
            visible: runs.keys().cloned().collect(),
        })
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        let mut runs = self.runs.lock().unwrap();
        let already_existed = runs
            .insert(req.job_id.clone(), req.demand.total())
            .is_some();
        Ok(Submitted {
            backend_ref: format!("fake-{}", req.job_id),
            already_existed,
        })
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        if self.runs.lock().unwrap().contains_key(&run.job_id) {
            Ok(RunStatus::Running)
        } else {
            Err(BackendError::NotFound {
                job_id: run.job_id.clone(),
                attempt: run.attempt,
            })
        }
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        self.runs.lock().unwrap().remove(&run.job_id);
        Ok(())
    }

    async fn logs(
        &self,
        _run: &RunRef,
        offset: u64,
        _max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        Ok(LogChunk {
            data: String::new(),
            next_offset: offset,
            complete: true,
        })
    }
}

/// How [`FaultyStore`] fails the transitions of its chosen job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Writes work.
    None,
    /// A store error on that job only (not unavailability).
    Broken,
    /// The database is unavailable.
    Unavailable,
}

/// A store that fails every state change of one job id, as told; everything else goes through.
pub struct FaultyStore {
    pub inner: std::sync::Arc<dyn Store>,
    pub job: Mutex<Option<String>>,
    pub fault: Mutex<Fault>,
    /// How many state changes of the chosen job were tried.
    pub tries: AtomicU32,
}

impl FaultyStore {
    pub fn new(inner: std::sync::Arc<dyn Store>) -> Self {
        FaultyStore {
            inner,
            job: Mutex::new(None),
            fault: Mutex::new(Fault::None),
            tries: AtomicU32::new(0),
        }
    }

    pub fn fail(&self, job: &str, fault: Fault) {
        *self.job.lock().unwrap() = Some(job.to_string());
        *self.fault.lock().unwrap() = fault;
    }

    fn check(&self, id: &str) -> Result<(), StoreError> {
        if self.job.lock().unwrap().as_deref() != Some(id) {
            return Ok(());
        }
        self.tries.fetch_add(1, Ordering::SeqCst);
        match *self.fault.lock().unwrap() {
            Fault::None => Ok(()),
            Fault::Broken => Err(StoreError::Corrupt(format!(
                "injected: cannot write job {id}"
            ))),
            Fault::Unavailable => Err(StoreError::Connect {
                url: "fake://".into(),
                source: sqlx::Error::PoolTimedOut,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        self.inner.insert_job(job).await
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
        self.check(&t.id)?;
        self.inner.transition(t).await
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
        self.inner.fire_schedule(f).await
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
        self.inner.delete_jobs(set, ids).await
    }
    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.unsettled_failures().await
    }
    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        self.inner.retry_job(r).await
    }
    async fn preempt_job(&self, p: &sluice_store::Preempted) -> Result<JobRecord, StoreError> {
        self.inner.preempt_job(p).await
    }
    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        self.inner.dead_letter(d).await
    }
    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        self.inner.expire_queued(id, at_ms, reason).await
    }
    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError> {
        self.inner.requeue_dead_letter(r).await
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
    /// Faults are not injected through the fenced store.
    fn fenced(&self, lease: &sluice_store::Lease) -> std::sync::Arc<dyn Store> {
        self.inner.fenced(lease)
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
        self.inner.update_workflow_run(u).await
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
