//! TicketKeeper's per-ticket watches: opening and closing them, their failures, and
//! what an event says about the ticket.

use actix::{AsyncContext, Context};
use forge_core::{lease::Mono, quorum::Seen};
use futures::StreamExt;

use super::{ACTOR, TicketKeeper, TicketWatch};
use crate::ports::{ApiError, LeaseSnapshot, newer_resource_version};

impl TicketKeeper {
    /// Opens ticket `i`'s watch unless one is open, a failure holds it back, or its ticket is
    /// not connected yet (the first call that answers connects it).
    pub(super) fn open_watch(&mut self, i: usize, now: Mono, ctx: &mut Context<Self>) {
        let t = &self.tickets[i];
        if t.watch.is_some() || t.watch_retry_at.is_some_and(|at| now < at) {
            return;
        }
        let Some(port) = &t.port else {
            return;
        };
        self.generation += 1;
        let generation = self.generation;
        let items = port
            .watch()
            .map(move |item| TicketWatch(i, generation, Some(item)))
            .chain(futures::stream::once(
                async move { TicketWatch(i, generation, None) },
            ));
        let handle = ctx.add_stream(items);
        self.tickets[i].watch = Some((handle, generation));
        self.count(i, "watch");
    }

    pub(super) fn close_watch(&mut self, i: usize, ctx: &mut Context<Self>) {
        if let Some((handle, _)) = self.tickets[i].watch.take() {
            ctx.cancel_future(handle);
        }
    }

    /// Ticket `i`'s watch failed or ended: reads take over until it is open again, a retry
    /// period later.
    pub(super) fn watch_failed(&mut self, i: usize, error: Option<&ApiError>, ctx: &mut Context<Self>) {
        self.close_watch(i, ctx);
        let retry = self.settings.timing.retry_period;
        let t = &mut self.tickets[i];
        t.watch_retry_at = Some(self.clock.now() + retry);
        if !t.watch_failing {
            match error {
                Some(e) => tracing::info!(
                    actor = ACTOR, participant = %t.name, error = %e,
                    "ticket watch failed: reading the ticket every retry period until it is watched again"
                ),
                None => tracing::info!(
                    actor = ACTOR, participant = %t.name,
                    "ticket watch ended: reading the ticket every retry period until it is watched again"
                ),
            }
        }
        t.watch_failing = true;
    }

    /// A watch event of ticket `i`: an observation, as a read's answer would be, unless it is
    /// not newer than what we know, or the echo of our own write on a ticket we hold.
    pub(super) fn watched(&mut self, i: usize, snapshot: Option<LeaseSnapshot>) {
        let now = self.clock.now();
        let me = self.settings.me.clone();
        let before = self.seen_holder(i);
        let t = &mut self.tickets[i];
        t.watch_failing = false;
        t.answered(now);
        match snapshot {
            None => t.state.observed(None, None, now, &me),
            Some(s) => {
                let known = match &t.state.seen {
                    Seen::Record(o) => o.resource_version.as_deref(),
                    _ => None,
                };
                if !newer_resource_version(s.resource_version.as_deref(), known) {
                    return;
                }
                if t.state.held.is_some() && s.record.is_held_by(&me) {
                    return;
                }
                t.state.observed(Some(s.record), s.resource_version, now, &me);
            }
        }
        let after = self.seen_holder(i);
        if before != after && after.is_some() {
            tracing::info!(
                actor = ACTOR, participant = %self.tickets[i].name, holder = ?after, previous = ?before,
                "forge ticket holder changed"
            );
        }
    }
}
