//! The LeaseElector's handlers: one per message, plus the Lease watch. None blocks: API calls
//! run as spawned futures whose results come back into the actor.

use actix::{Context, Handler, ResponseFuture, StreamHandler};

use super::LeaseElector;
use crate::{
    messages::{CommandError, CommandFailed, CommandResult, Contend, Release},
    ports::{ApiError, LeaseSnapshot},
};

impl Handler<Contend> for LeaseElector {
    type Result = ();

    fn handle(&mut self, Contend(on): Contend, ctx: &mut Context<Self>) {
        self.set_contending(on, ctx);
    }
}

impl Handler<Release> for LeaseElector {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, _: Release, ctx: &mut Context<Self>) -> Self::Result {
        match self.release(ctx) {
            None => Box::pin(async { Ok(()) }),
            Some(rx) => Box::pin(async move {
                rx.await.unwrap_or_else(|_| {
                    Err(CommandFailed::new(
                        CommandError::ElectorStopped,
                        "the lease elector stopped before the release was written",
                    ))
                })
            }),
        }
    }
}

/// The Lease watch: `Some` on create/modify, `None` on delete; an error or the end of the
/// stream stops the actor (its Supervisor restarts it).
impl StreamHandler<Result<Option<LeaseSnapshot>, ApiError>> for LeaseElector {
    fn handle(&mut self, item: Result<Option<LeaseSnapshot>, ApiError>, ctx: &mut Context<Self>) {
        match item {
            Ok(snapshot) => {
                if self.observe(snapshot) {
                    self.reconcile(ctx);
                    self.consider(ctx);
                }
            }
            Err(e) => self.watch_failed(Some(&e), ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.watch_failed(None, ctx);
    }
}
