//! Kubernetes Events that sluice writes about the SparkApplications it creates, so that
//! `kubectl describe sparkapplication NAME` and `kubectl get events` show sluice's part next to
//! the operator's: the admission (driver and every executor fitted), a kill by the deadlock
//! watchdog, a cancel. Events use `events.k8s.io/v1` through kube-runtime's [`Recorder`]
//! (which also folds repeats into a series). They are best effort: each is sent on its own task
//! and a failure is only logged, so an event never slows or fails a submit, a status or a cancel.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
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
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Admitted => "Admitted",
            Reason::DeadlockWatchdog => "DeadlockWatchdog",
            Reason::Cancelled => "Cancelled",
            Reason::Preempted => "Preempted",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Reason::Admitted => "Submit",
            Reason::DeadlockWatchdog | Reason::Cancelled | Reason::Preempted => "Delete",
        }
    }

    fn kind(self) -> EventType {
        match self {
            Reason::DeadlockWatchdog => EventType::Warning,
            Reason::Admitted | Reason::Cancelled | Reason::Preempted => EventType::Normal,
        }
    }
}

/// Writes sluice's events.
pub(super) struct Events {
    recorder: Recorder,
}

impl Events {
    pub(super) fn new(client: Client) -> Events {
        let instance = std::env::var("HOSTNAME").ok();
        Events {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: REPORTER.into(),
                    instance,
                },
            ),
        }
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
        let reference = ObjectReference {
            api_version: Some("sparkoperator.k8s.io/v1beta2".into()),
            kind: Some("SparkApplication".into()),
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid,
            ..ObjectReference::default()
        };
        let event = Event {
            type_: reason.kind(),
            reason: reason.as_str().into(),
            // The API refuses notes over 1 kB.
            note: Some(note.chars().take(1000).collect()),
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
