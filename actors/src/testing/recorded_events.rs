//! [`RecordedEvents`]: Kubernetes Events behind the [`PodEvents`] port, recorded in memory.

use std::sync::{Arc, Mutex};

use crate::ports::PodEvents;

/// One published Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Its reason (`CredentialsRefused`).
    pub reason: String,
    /// Its action.
    pub action: String,
    /// Its note.
    pub note: String,
}

/// The Events published so far. Cheap to clone; clones share the record.
#[derive(Clone, Default)]
pub struct RecordedEvents(Arc<Mutex<Vec<RecordedEvent>>>);

impl RecordedEvents {
    /// Every warning so far, in order.
    pub fn warnings(&self) -> Vec<RecordedEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl PodEvents for RecordedEvents {
    fn warning(&self, reason: &'static str, action: &'static str, note: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RecordedEvent {
                reason: reason.to_owned(),
                action: action.to_owned(),
                note: note.to_owned(),
            });
    }
}
