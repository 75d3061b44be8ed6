//! Kubernetes Events for refused credentials: a `Warning` `CredentialsRefused` on this pod,
//! whose note is the refusal's reason (file names and problems, never content).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The longest note the Events API takes.
const MAX_NOTE: usize = 1024;

/// Publishes the keeper's Events about one pod.
#[derive(Clone)]
pub struct KeeperEvents {
    recorder: Recorder,
    pod: ObjectReference,
}

impl KeeperEvents {
    /// Events about pod `pod` in `namespace`, reported by `forge-manager` from that pod.
    pub fn new(client: kube::Client, namespace: &str, pod: &str) -> Self {
        let reporter = Reporter {
            controller: "forge-manager".to_owned(),
            instance: Some(pod.to_owned()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
            pod: ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: Some(pod.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..Default::default()
            },
        }
    }

    /// Publishes the refusal in the background; a failure is logged, never retried (the
    /// metric and the log line carry the same fact).
    pub fn credentials_refused(&self, why: &str) {
        let mut note = why.to_owned();
        if note.len() > MAX_NOTE {
            let mut cut = MAX_NOTE - 3;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
            note.push_str("...");
        }
        let event = Event {
            type_: EventType::Warning,
            reason: "CredentialsRefused".to_owned(),
            note: Some(note),
            action: "ValidateCredentials".to_owned(),
            secondary: None,
        };
        let (recorder, pod) = (self.recorder.clone(), self.pod.clone());
        actix::spawn(async move {
            if let Err(e) = recorder.publish(&event, &pod).await {
                tracing::warn!(actor = "credential_keeper", error = %e, "cannot publish the CredentialsRefused event");
            }
        });
    }
}
