//! The operations on schedules and the dead-letter queue that the API calls: create, suspend,
//! resume and trigger a schedule; requeue and purge by filter. The tick's side of
//! orchestration (firing due schedules, retries, queue TTLs) is in [`crate::tick`]; both build a
//! schedule's run with [`run_of`].

use std::collections::BTreeSet;

use sluice_backend::BackendError;
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, SCHEDULE_LABEL, ScheduleRecord, parse_schedule};
use sluice_core::sizing::job_demand;
use sluice_core::spec::{ParseOptions, SpecError};
use sluice_core::stored::{StoredJob, StoredJobError};
use sluice_store::{
    Fire, JobSet, OrchJob, Requeue, RequeuePlace, ScheduledRun, SetFilter, StoreError,
};

use crate::admission::{self, Refusal};
use crate::guard::command::{CommandRefused, ConfigOnly, check_job};
use crate::state::AppState;

/// Most jobs one requeue or purge request touches.
pub const BULK_LIMIT: u32 = 10_000;

/// Errors of the orchestration operations the API calls.
#[derive(Debug, thiserror::Error)]
pub enum OrchError {
    /// The document or a field is invalid (400).
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// The template could never run on this backend (422).
    #[error("{0}")]
    NeverFits(String),
    /// A request that would touch every job without saying so (400).
    #[error("{0}")]
    NoFilter(String),
    /// The store failed or refused (its variants map to 404 / 409 / 500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The template is a command job the configuration does not allow.
    #[error(transparent)]
    Refused(#[from] CommandRefused),
    /// Encoding JSON failed (a bug).
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// The object is not in a state that allows the operation (409).
    #[error("{0}")]
    Conflict(String),
}

fn levels_opts(state: &AppState) -> ParseOptions<'_> {
    ParseOptions {
        priority: None,
        levels: &state.levels,
    }
}

/// How late a fire time (of a schedule or a scheduled workflow) may be seen and still count as
/// on time (not missed): a minute, or four scheduling intervals if that is longer.
pub fn on_time_ms(state: &AppState) -> i64 {
    let interval = i64::try_from(state.config.scheduler.interval_ms).unwrap_or(i64::MAX);
    interval.saturating_mul(4).max(60_000)
}

/// Parses and validates a schedule document and stores it, next fire time computed from
/// `now_ms`.
pub async fn create_schedule(
    state: &AppState,
    text: &str,
    now_ms: i64,
) -> Result<ScheduleRecord, OrchError> {
    let new = prepare_schedule(state, text, now_ms).await?;
    let rec = state.store.create_schedule(&new).await?;
    state.wake.notify_one();
    Ok(rec)
}

/// A schedule document parsed, checked (command jobs allowed, could ever fit) and made ready to
/// store, next fire time computed from `now_ms`.
async fn prepare_schedule(
    state: &AppState,
    text: &str,
    now_ms: i64,
) -> Result<NewSchedule, OrchError> {
    let sched = parse_schedule(text, levels_opts(state), now_ms)?;
    check_job(
        &state.config.security,
        &sched.template,
        &ConfigOnly,
        &format!("the runs of schedule {}/{}", sched.namespace, sched.name),
    )?;
    admission::check(state, &sched.template)
        .await
        .map_err(|r| match r {
            Refusal::Invalid(e) => OrchError::Spec(e),
            Refusal::Backend(e) => OrchError::Backend(e),
            never @ Refusal::Never { .. } => OrchError::NeverFits(format!(
                "the runs of schedule {}/{} {never}",
                sched.namespace, sched.name
            )),
        })?;
    let cadence = sched.cadence(now_ms)?;
    let next = if sched.suspend {
        None
    } else {
        cadence.next_after(now_ms)
    };
    let template = StoredJob::rebuilt(sched.template.clone(), sched.policy.clone())
        .and_then(|t| t.encode())
        .map_err(|e| {
            StoreError::Corrupt(format!(
                "the template of schedule {}/{} does not encode: {e}",
                sched.namespace, sched.name
            ))
        })?;
    Ok(NewSchedule {
        namespace: sched.namespace.clone(),
        name: sched.name.clone(),
        cron: sched.cron.clone(),
        time_zone: sched.time_zone.clone(),
        concurrency: sched.concurrency,
        missed_runs: sched.missed_runs,
        catch_up_window_secs: sched.catch_up_window_secs,
        suspended: sched.suspend,
        level: sched.template.level.clone(),
        template,
        source: text.to_string(),
        created_at_ms: now_ms,
        next_fire_at_ms: next,
    })
}

/// What [`apply_schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// There was no such schedule: created.
    Created,
    /// The schedule differed: its definition replaced.
    Configured,
    /// The schedule was already so: nothing written.
    Unchanged,
}

impl Applied {
    /// `created`, `configured` or `unchanged` (kubectl's words).
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// Whether a stored schedule already is what `new` describes (its document included).
fn same_definition(old: &ScheduleRecord, new: &NewSchedule) -> bool {
    old.cron == new.cron
        && old.time_zone == new.time_zone
        && old.concurrency == new.concurrency
        && old.missed_runs == new.missed_runs
        && old.catch_up_window_secs == new.catch_up_window_secs
        && old.suspended == new.suspended
        && old.level == new.level
        && old.template == new.template
        && old.source == new.source
}

/// `sluice apply -f`: creates the schedule the document names, or replaces the definition of
/// the one that exists (its history stays), or leaves it when it is already so. The next fire
/// time is kept unless the expression, zone or suspension changed (then it is computed again
/// from `now_ms`, anchored at the schedule's creation).
pub async fn apply_schedule(
    state: &AppState,
    text: &str,
    now_ms: i64,
) -> Result<(Applied, ScheduleRecord), OrchError> {
    let mut new = prepare_schedule(state, text, now_ms).await?;
    let Some(old) = state.store.get_schedule(&new.namespace, &new.name).await? else {
        // One created meanwhile by another request wins: this one is refused as a duplicate.
        let rec = state.store.create_schedule(&new).await?;
        state.wake.notify_one();
        return Ok((Applied::Created, rec));
    };
    if same_definition(&old, &new) {
        return Ok((Applied::Unchanged, old));
    }
    let timing_same =
        old.cron == new.cron && old.time_zone == new.time_zone && old.suspended == new.suspended;
    new.next_fire_at_ms = if timing_same {
        old.next_fire_at_ms
    } else if new.suspended {
        None
    } else {
        sluice_core::schedule::Cadence::new(&new.cron, &new.time_zone, old.created_at_ms, "")?
            .next_after(now_ms)
    };
    let rec = state.store.update_schedule(&new, now_ms).await?;
    state.wake.notify_one();
    Ok((Applied::Configured, rec))
}

/// Suspends (no fire times) or resumes (next fire time from `now_ms`; fire times passed while
/// suspended are not run) a schedule.
pub async fn set_suspended(
    state: &AppState,
    namespace: &str,
    name: &str,
    suspend: bool,
    now_ms: i64,
) -> Result<ScheduleRecord, OrchError> {
    let s = state
        .store
        .get_schedule(namespace, name)
        .await?
        .ok_or_else(|| StoreError::NoSchedule {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let (next, message) = if suspend {
        (None, "suspended by a user".to_string())
    } else {
        (
            s.cadence()?.next_after(now_ms),
            "resumed by a user".to_string(),
        )
    };
    let rec = state
        .store
        .set_schedule_suspended(namespace, name, suspend, next, now_ms, &message)
        .await?;
    state.wake.notify_one();
    Ok(rec)
}

/// Starts a run of a schedule now ("run now"), whatever its next fire time, suspension or
/// concurrency policy; the next fire time is unchanged.
pub async fn trigger(
    state: &AppState,
    namespace: &str,
    name: &str,
    now_ms: i64,
) -> Result<JobRecord, OrchError> {
    let s = state
        .store
        .get_schedule(namespace, name)
        .await?
        .ok_or_else(|| StoreError::NoSchedule {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let job = run_of(state, &s, now_ms)?;
    let id = job.id.clone();
    let rec = state
        .store
        .fire_schedule(&Fire {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            at_ms: now_ms,
            advance: None,
            run: Some(ScheduledRun {
                job,
                scheduled_for_ms: None,
            }),
            message: format!("started run {id} (triggered by a user)"),
        })
        .await?
        .ok_or_else(|| StoreError::NotFound(id))?;
    state.metrics.job_submitted(&rec.namespace, &rec.level);
    state.wake.notify_one();
    Ok(rec)
}

/// The job a run of schedule `s` starts as: the template, labelled with the schedule.
pub(crate) fn run_of(
    state: &AppState,
    s: &ScheduleRecord,
    now_ms: i64,
) -> Result<NewJob, OrchError> {
    let corrupt = |e: StoredJobError| {
        StoreError::Corrupt(format!(
            "the template of schedule {}/{}: {e}",
            s.namespace, s.name
        ))
    };
    let StoredJob {
        mut job, policy, ..
    } = StoredJob::decode(&s.template).map_err(corrupt)?;
    job.labels.insert(SCHEDULE_LABEL.into(), s.name.clone());
    job_demand(&job)?;
    let demand = state.backend.demand(&job)?;
    Ok(NewJob {
        id: state.new_id(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        level: job.level.clone(),
        labels: job.labels.clone(),
        stored: StoredJob::rebuilt(job, policy).map_err(corrupt)?,
        demand,
        created_at_ms: now_ms,
    })
}

/// Requeues the dead-lettered jobs that `filter` selects (which must narrow, unless `all`).
pub async fn requeue(
    state: &AppState,
    filter: &SetFilter,
    all: bool,
    place: RequeuePlace,
    now_ms: i64,
) -> Result<Vec<JobRecord>, OrchError> {
    require_filter(filter, all, "requeue")?;
    let picked = state.store.select_jobs(filter, BULK_LIMIT).await?;
    let mut out = Vec::with_capacity(picked.len());
    // Oldest dead letter first, so that tail requeues keep their order.
    for j in picked.into_iter().rev() {
        let r = Requeue {
            id: j.job.id.clone(),
            at_ms: now_ms,
            place,
            message: format!(
                "requeued from the dead-letter queue by a user (to the {} of level {}); \
                 attempt {} begins a new round of retries",
                match place {
                    RequeuePlace::Tail => "tail",
                    RequeuePlace::Front => "front",
                },
                j.job.level,
                j.job.attempt + 1
            ),
        };
        match state.store.requeue_dead_letter(&r).await {
            Ok(rec) => out.push(rec),
            Err(StoreError::NotDeadLettered(_) | StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !out.is_empty() {
        state.wake.notify_one();
    }
    Ok(out)
}

/// What a purge removed (or, on a dry run, would remove).
#[derive(Debug, Clone)]
pub struct Purged {
    /// The jobs selected.
    pub jobs: Vec<OrchJob>,
    /// The ids actually deleted (empty on a dry run).
    pub deleted: BTreeSet<String>,
}

/// Deletes the jobs of `filter`'s set (queued jobs or dead letters) that it selects, which must
/// narrow unless `all`; with `dry_run`, only lists them. Holds the cycle lock so that a queued
/// job is not admitted while it is being deleted.
pub async fn purge(
    state: &AppState,
    filter: &SetFilter,
    all: bool,
    dry_run: bool,
) -> Result<Purged, OrchError> {
    require_filter(filter, all, "purge")?;
    let _cycle = state.cycle_lock.lock().await;
    let jobs = state.store.select_jobs(filter, BULK_LIMIT).await?;
    let deleted = if dry_run {
        BTreeSet::new()
    } else {
        let ids: Vec<String> = jobs.iter().map(|j| j.job.id.clone()).collect();
        state
            .store
            .delete_jobs(filter.set, &ids)
            .await?
            .into_iter()
            .collect()
    };
    Ok(Purged { jobs, deleted })
}

fn require_filter(filter: &SetFilter, all: bool, what: &str) -> Result<(), OrchError> {
    if filter.narrows() || all {
        return Ok(());
    }
    let set = match filter.set {
        JobSet::DeadLetters => "dead-lettered job",
        JobSet::Queued => "queued job",
    };
    Err(OrchError::NoFilter(format!(
        "refusing to {what} every {set} without an explicit filter: give a job id, a namespace, \
         a schedule, a label, a level or an age (older than), or all=true to mean every one"
    )))
}
