//! Kubernetes Events that sluice writes about the SparkApplications it creates, so that
//! `kubectl describe sparkapplication NAME` and `kubectl get events` show sluice's part next to
//! the operator's: the admission (driver and every executor fitted), placeholder pods created
//! and removed, a job sent back to its queue, a kill by the deadlock watchdog, a preemption, a
//! cancel. Events use `events.k8s.io/v1` through kube-runtime's [`Recorder`] (which also folds
//! repeats into a series). They are best effort: each is sent on its own task and a failure is
//! only logged, so an event never slows or fails a submit, a status or a cancel.
//!
//! A job sluice holds back has no SparkApplication yet: its `Waiting` event ([`Events::waiting`])
//! regards the application it will become (kind, namespace and the name sluice will give it; no
//! `uid`), so `kubectl get events --field-selector reason=Waiting` and, once it exists, `kubectl
//! events --for sparkapplication/NAME` show why it waited. These are created whole each time
//! (never folded into a series, which would keep the first note): the server asks only when a
//! job starts waiting or its reason changes.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The `reportingController` of sluice's events.
pub const REPORTER: &str = "sluice";

/// Why sluice wrote an event (its `reason`, as `kubectl describe` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The application was created: sluice admitted the job, its driver and every executor fit.
    Admitted,
    /// The deadlock watchdog deleted the application (driver running, no executor could start)
    /// and the job went back to its queue.
    DeadlockWatchdog,
    /// sluice deleted the application: a user cancelled the job or it ran past `maxRuntime`.
    Cancelled,
    /// sluice deleted the application to make room for a job of higher priority; the job went
    /// back to its queue.
    Preempted,
    /// Placeholder pods were created to hold the job's room (capacity mode `placeholders`).
    PlaceholdersCreated,
    /// The placeholder pods were deleted once the application held the room.
    PlaceholdersRemoved,
    /// The cluster turned the admitted job away for want of room (placeholders not scheduled
    /// in time, a quota refusing them, a dry run refused): it went back to its queue.
    Requeued,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Admitted => "Admitted",
            Reason::DeadlockWatchdog => "DeadlockWatchdog",
            Reason::Cancelled => "Cancelled",
            Reason::Preempted => "Preempted",
            Reason::PlaceholdersCreated => "PlaceholdersCreated",
            Reason::PlaceholdersRemoved => "PlaceholdersRemoved",
            Reason::Requeued => "Requeued",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Reason::Admitted => "Submit",
            Reason::DeadlockWatchdog | Reason::Cancelled | Reason::Preempted => "Delete",
            Reason::PlaceholdersCreated => "Reserve",
            Reason::PlaceholdersRemoved => "Release",
            Reason::Requeued => "Requeue",
        }
    }

    fn kind(self) -> EventType {
        match self {
            Reason::DeadlockWatchdog | Reason::Requeued => EventType::Warning,
            Reason::Admitted
            | Reason::Cancelled
            | Reason::Preempted
            | Reason::PlaceholdersCreated
            | Reason::PlaceholdersRemoved => EventType::Normal,
        }
    }
}

/// The `reason` of the event about a job sluice holds back.
pub const WAITING: &str = "Waiting";
/// Its `action`.
pub const HOLD: &str = "Hold";

/// The API refuses notes over 1 kB.
fn short(note: &str) -> String {
    note.chars().take(1000).collect()
}

/// The reference to the SparkApplication `ns/name`.
fn app_reference(ns: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("sparkoperator.k8s.io/v1beta2".into()),
        kind: Some("SparkApplication".into()),
        name: Some(name.into()),
        namespace: Some(ns.into()),
        uid,
        ..ObjectReference::default()
    }
}

/// Writes sluice's events.
pub(super) struct Events {
    client: Client,
    instance: Option<String>,
    recorder: Recorder,
}

impl Events {
    pub(super) fn new(client: Client) -> Events {
        let instance = std::env::var("HOSTNAME").ok();
        Events {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: REPORTER.into(),
                    instance: instance.clone(),
                },
            ),
            client,
            instance,
        }
    }

    /// Writes a `Normal` `Waiting` event regarding the SparkApplication `ns/app` that a held
    /// job will become (it does not exist yet: no `uid`), with `note` saying why it waits. A
    /// new event each call (see the module documentation); the caller awaits it.
    pub(super) async fn waiting(&self, ns: &str, app: &str, note: &str) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let event = K8sEvent {
            action: Some(HOLD.into()),
            reason: Some(WAITING.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(app_reference(ns, app, None)),
            note: Some(short(note)),
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                // As kube-runtime's Recorder names its events: the object, then the time.
                name: Some(format!("{app}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(REPORTER.into()),
            reporting_instance: Some(self.instance.clone().unwrap_or_else(|| REPORTER.into())),
            type_: Some("Normal".into()),
            ..K8sEvent::default()
        };
        Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }

    /// Writes an event about the SparkApplication `ns/name` (its `uid` when known), on its own
    /// task; `note` is the message `kubectl describe` shows.
    pub(super) fn on_app(
        &self,
        ns: &str,
        name: &str,
        uid: Option<String>,
        reason: Reason,
        note: String,
    ) {
        let reference = app_reference(ns, name, uid);
        let event = Event {
            type_: reason.kind(),
            reason: reason.as_str().into(),
            note: Some(short(&note)),
            action: reason.action().into(),
            secondary: None,
        };
        let recorder = self.recorder.clone();
        let what = format!("{} event on SparkApplication {ns}/{name}", reason.as_str());
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!("{what} not written: {e}");
            }
        });
    }
}
