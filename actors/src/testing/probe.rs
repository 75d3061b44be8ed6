//! [`Probe`]: a recipient of [`Fact`]s that records them with the (virtual) time they arrived,
//! standing in for the Decider in actor tests (the wiring decides who receives:
//! docs/architecture.md, "Conventions").

use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Actor, Addr, Context, Handler, Recipient};
use forge_core::decision::Event;
use tokio::time::Instant;

use crate::messages::Fact;

/// One fact as the probe received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived (tokio time: virtual under `tokio::time::pause`).
    pub at: Instant,
    /// The fact.
    pub fact: Fact,
}

/// Records every [`Fact`] sent to it. Cheap to clone; clones share the record. Start it inside
/// an actix `System` (for example in `#[actix::test]`).
#[derive(Clone)]
pub struct Probe {
    addr: Addr<ProbeActor>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("recorded", &self.lock().len())
            .finish()
    }
}

impl Probe {
    /// Starts a probe on the current arbiter.
    pub fn start() -> Self {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let addr = ProbeActor {
            recorded: recorded.clone(),
        }
        .start();
        Self { addr, recorded }
    }

    /// The recipient to give the actor under test.
    pub fn recipient(&self) -> Recipient<Fact> {
        self.addr.clone().recipient()
    }

    /// Everything recorded so far, oldest first.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    /// The events recorded so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().iter().map(|r| r.fact.event.clone()).collect()
    }

    /// The events recorded so far, and forgets them.
    pub fn take_events(&self) -> Vec<Event> {
        self.lock().drain(..).map(|r| r.fact.event).collect()
    }

    /// The first recorded event matching `pred`, with its arrival time.
    pub fn first(&self, pred: impl Fn(&Event) -> bool) -> Option<(Instant, Event)> {
        self.lock()
            .iter()
            .find(|r| pred(&r.fact.event))
            .map(|r| (r.at, r.fact.event.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct ProbeActor {
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Actor for ProbeActor {
    type Context = Context<Self>;
}

impl Handler<Fact> for ProbeActor {
    type Result = ();

    fn handle(&mut self, fact: Fact, _: &mut Context<Self>) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Recorded {
                at: Instant::now(),
                fact,
            });
    }
}
