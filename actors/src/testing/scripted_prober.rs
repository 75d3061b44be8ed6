//! [`ScriptedProber`]: the HealthProber's client in memory; the test sets what every probe
//! answers (healthy, or failed with a reason) and counts the probes.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};

use crate::ports::{ProbeFailed, Prober};

struct Script {
    answer: Result<(), ProbeFailed>,
    probes: Vec<String>,
}

/// Answers every probe with the scripted outcome (healthy until told otherwise). Cheap to
/// clone; clones share the script.
#[derive(Clone)]
pub struct ScriptedProber(Arc<Mutex<Script>>);

impl Default for ScriptedProber {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Script {
            answer: Ok(()),
            probes: Vec::new(),
        })))
    }
}

impl ScriptedProber {
    fn lock(&self) -> MutexGuard<'_, Script> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on every probe succeeds.
    pub fn healthy(&self) {
        self.lock().answer = Ok(());
    }

    /// From now on every probe fails with `why`.
    pub fn failing(&self, why: &str) {
        self.lock().answer = Err(ProbeFailed(why.to_string()));
    }

    /// The URLs probed so far, oldest first.
    pub fn probed(&self) -> Vec<String> {
        self.lock().probes.clone()
    }
}

impl Prober for ScriptedProber {
    fn probe(
        &self,
        url: &str,
        _headers: &BTreeMap<String, String>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<(), ProbeFailed>> {
        let mut script = self.lock();
        script.probes.push(url.to_string());
        futures::future::ready(script.answer.clone()).boxed()
    }
}
