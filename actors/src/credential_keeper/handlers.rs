//! One handler per message the CredentialKeeper receives (and the watch stream).

use actix::{ActorContext, AsyncContext, Context, Handler, StreamHandler};
use tokio::time::Instant;

use super::CredentialKeeper;
use crate::{
    messages::{CommandResult, Install, Remove},
    ports::SourceChange,
};

impl Handler<Install> for CredentialKeeper {
    type Result = CommandResult;

    fn handle(&mut self, _msg: Install, ctx: &mut Context<Self>) -> CommandResult {
        let result = self.install();
        self.deliver(ctx);
        result
    }
}

impl Handler<Remove> for CredentialKeeper {
    type Result = CommandResult;

    fn handle(&mut self, _msg: Remove, _ctx: &mut Context<Self>) -> CommandResult {
        self.remove()
    }
}

impl StreamHandler<SourceChange> for CredentialKeeper {
    /// A change in a source directory: re-validate once the burst has settled.
    fn handle(&mut self, change: SourceChange, ctx: &mut Context<Self>) {
        if let SourceChange::Error(e) = &change {
            tracing::warn!(actor = "credential_keeper", error = %e, "source watch error: re-validating");
        }
        if let Some(timer) = self.debounce_timer.take() {
            ctx.cancel_future(timer);
        }
        let delay = self.debounce_delay(Instant::now());
        self.debounce_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.debounce_timer = None;
            act.burst_since = None;
            act.revalidate();
            act.deliver(ctx);
        }));
    }

    /// The watcher is gone: stop, so the supervisor restarts the actor and the watch.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(actor = "credential_keeper", "source watch ended: restarting");
        ctx.stop();
    }
}
