//! Generic recorders for tests: every message of a type sent to an actor, every log event
//! emitted while installed, and a bounded wait for a condition.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::{Actor, Context, Handler, Message, Recipient};

/// Records every message of type `M` sent to it.
pub struct Recorder<M>(Arc<Mutex<Vec<M>>>);

impl<M: Unpin + 'static> Actor for Recorder<M> {
    type Context = Context<Self>;
}

impl<M> Handler<M> for Recorder<M>
where
    M: Message<Result = ()> + Send + Unpin + 'static,
{
    type Result = ();

    fn handle(&mut self, msg: M, _ctx: &mut Context<Self>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(msg);
    }
}

/// A started [`Recorder`]: its recipient and what it has received.
pub fn recorder<M>() -> (Recipient<M>, Arc<Mutex<Vec<M>>>)
where
    M: Message<Result = ()> + Send + Unpin + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    (Recorder(seen.clone()).start().recipient(), seen)
}

/// Collects the log events emitted on the current thread (an actix System's) while installed
/// with `tracing::subscriber::set_default`, one line each: level and fields.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every line so far, joined.
    pub fn all(&self) -> String {
        self.lines().join("\n")
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} ", event.metadata().level());
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Polls `cond` every 10 ms until it holds; panics naming `what` after 5 s (real time: for
/// tests with real files, sockets and processes).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
