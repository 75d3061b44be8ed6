//! Kubernetes Events about this pod behind the [`PodEvents`] port: published through kube's
//! event recorder, `regarding` the pod, reported by `forge-manager` from that pod.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::ports::PodEvents;

/// The longest note the Events API takes.
const MAX_NOTE: usize = 1024;

/// Publishes Events about one pod.
#[derive(Clone)]
pub struct KubeEvents {
    recorder: Recorder,
    pod: ObjectReference,
}

impl KubeEvents {
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
}

/// `note` cut to what the Events API takes, at a character boundary.
fn cut(note: &str) -> String {
    let mut note = note.to_owned();
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    note
}

impl PodEvents for KubeEvents {
    fn warning(&self, reason: &'static str, action: &'static str, note: &str) {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(cut(note)),
            action: action.to_owned(),
            secondary: None,
        };
        let (recorder, pod) = (self.recorder.clone(), self.pod.clone());
        actix::spawn(async move {
            if let Err(e) = recorder.publish(&event, &pod).await {
                tracing::warn!(error = %e, "cannot publish the {reason} event");
            }
        });
    }
}
