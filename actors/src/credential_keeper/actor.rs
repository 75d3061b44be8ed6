//! The CredentialKeeper's lifecycle. `started` establishes the standby state before anything
//! else (a crashed predecessor may have left credentials), then watches the source directories
//! and validates the sources. A watch that cannot be set up, or whose stream ends, stops the
//! actor; the supervisor restarts it after the backoff, with `installed` and the last reports
//! kept (actix reuses the struct), so a restart removes nothing the Decider installed.

use actix::{Actor, ActorContext, AsyncContext, Context, Supervised};
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode},
};

use super::{CredentialKeeper, MAILBOX_CAPACITY, RETRY_SEND};

/// Watch signals buffered between the watcher thread and the actor. When full, a signal is
/// already pending, so dropping more loses nothing (each only triggers a re-validation).
const WATCH_BUFFER: usize = 64;

/// A change in a watched source directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchSignal {
    /// Something changed.
    Changed,
    /// The watcher reported an error (e.g. its queue overflowed): re-validate to be sure.
    Error(String),
}

/// Our own reads open and close the sources: those events are not changes.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl CredentialKeeper {
    fn watch_and_validate(&mut self, ctx: &mut Context<Self>) {
        // Watch first, so a change between the validation and the watch is not missed.
        let watched = self.watch_sources(ctx);
        self.revalidate();
        self.deliver(ctx);
        if self.kes_timer.is_none() {
            self.kes_timer = Some(ctx.run_interval(self.kes_refresh, |act, ctx| {
                if act.refresh_kes() {
                    act.deliver(ctx);
                }
            }));
        }
        match watched {
            Ok(()) => self.restarts.healthy(),
            Err(e) => {
                tracing::error!(
                    actor = "credential_keeper",
                    dirs = ?self.source_dirs(),
                    error = %e,
                    "cannot watch the source credential directories: restarting"
                );
                ctx.stop();
            }
        }
    }

    fn watch_sources(&mut self, ctx: &mut Context<Self>) -> notify::Result<()> {
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let signal = match res {
                Ok(event) if !is_change(&event.kind) => return,
                Ok(_) => WatchSignal::Changed,
                Err(e) => WatchSignal::Error(e.to_string()),
            };
            let _ = tx.try_send(signal);
        })?;
        for dir in self.source_dirs() {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        }
        self.watcher = Some(watcher);
        ctx.add_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|signal| (signal, rx))
        }));
        Ok(())
    }

    /// Offers the queued facts now, and again shortly if the Decider's mailbox was full.
    pub(crate) fn deliver(&mut self, ctx: &mut Context<Self>) {
        if !self.flush() && self.retry_timer.is_none() {
            self.retry_timer = Some(ctx.run_later(RETRY_SEND, |act, ctx| {
                act.retry_timer = None;
                act.deliver(ctx);
            }));
        }
    }
}

impl Actor for CredentialKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if !self.installed
            && let Err(e) = self.remove_targets()
        {
            // Without the standby state nothing else may happen: no validity is reported, so
            // the Decider cannot decide to forge.
            tracing::error!(
                actor = "credential_keeper",
                error = %e,
                "cannot remove the target credential files at start: restarting"
            );
            ctx.stop();
            return;
        }
        let delay = std::mem::take(&mut self.resume_after);
        if delay.is_zero() {
            self.watch_and_validate(ctx);
        } else {
            ctx.run_later(delay, |act, ctx| act.watch_and_validate(ctx));
        }
    }
}

impl Supervised for CredentialKeeper {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // Timers and the stream were cancelled with the old context; the watcher goes with them.
        self.watcher = None;
        self.debounce_timer = None;
        self.retry_timer = None;
        self.kes_timer = None;
        self.burst_since = None;
        self.resume_after = self.restarts.record();
    }
}
