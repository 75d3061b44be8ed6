//! The CredentialKeeper's lifecycle. `started` establishes the standby state before anything
//! else (a crashed predecessor may have left credentials), then watches the source directories
//! and validates the sources. A watch that cannot be set up, or whose stream ends, stops the
//! actor; the supervisor restarts it after the backoff, with `installed` and the last reports
//! kept (actix reuses the struct), so a restart removes nothing the Decider installed.

use actix::{Actor, ActorContext, AsyncContext, Context, Supervised};

use super::{CredentialKeeper, MAILBOX_CAPACITY, RETRY_SEND};
use crate::ports::SourceWatchError;

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
                    error = %e,
                    "cannot watch the source credential directories: restarting"
                );
                ctx.stop();
            }
        }
    }

    /// Follows the sources' changes; the stream (and with it the watch) goes with the context.
    fn watch_sources(&mut self, ctx: &mut Context<Self>) -> Result<(), SourceWatchError> {
        ctx.add_stream(self.sources.watch()?);
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
        // Timers and the stream (the watch) were cancelled with the old context.
        self.debounce_timer = None;
        self.retry_timer = None;
        self.kes_timer = None;
        self.burst_since = None;
        self.resume_after = self.restarts.record();
    }
}
