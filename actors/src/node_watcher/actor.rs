//! The NodeWatcher's lifecycle: probe at once, then every poll interval, one probe at a time.
//! A probe whose blocking part failed (a panicked `/proc` read) stops the actor; the supervisor
//! restarts it after the backoff, with the last reported state kept (reports stay changes only).

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Supervised, WrapFuture};

use super::{NodeWatcher, probe};

/// The NodeWatcher receives no messages; the mailbox only needs room for the system's own.
const MAILBOX_CAPACITY: usize = 4;

impl NodeWatcher {
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.probing {
            // Still waiting for a slow probe: skip this tick rather than pile up probes.
            return;
        }
        self.probing = true;
        let fut = probe(
            self.settings.clone(),
            self.host.clone(),
            self.guard.clone(),
            self.known(),
        );
        ctx.spawn(fut.into_actor(self).map(|outcome, act, ctx| {
            act.probing = false;
            match outcome {
                Ok(obs) => {
                    act.restarts.healthy();
                    act.observe(obs);
                    act.flush();
                }
                Err(e) => {
                    tracing::error!(actor = "node_watcher", error = %e, "node probe failed: restarting");
                    ctx.stop();
                }
            }
        }));
    }
}

impl Actor for NodeWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let delay = std::mem::take(&mut self.resume_after);
        ctx.run_later(delay, |act, ctx| {
            act.poll(ctx);
            ctx.run_interval(act.settings.poll_interval, |act, ctx| act.poll(ctx));
        });
    }
}

impl Supervised for NodeWatcher {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // The spawned probe was cancelled with the old context.
        self.probing = false;
        self.resume_after = self.restarts.record();
    }
}
