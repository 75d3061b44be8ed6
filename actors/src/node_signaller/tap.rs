//! LeaseTap: stands between the LeaseElector and the Decider and shows the lease facts (and
//! quorum mode's ticket standing, whose forge deadline bounds the permit too) to the
//! NodeSignaller first, so the signaller knows the renew deadline before any command the
//! Decider sends on it (the permit of a starting reload is bounded by that deadline). Facts keep
//! their order: each is enqueued at the signaller, then delivered in full to the Decider, before
//! the next is taken.
//!
//! **Why the tap does not wait for the signaller.** The signaller answers nothing while it holds
//! a stop back (F20's hold, up to `STOP_GRACE`); a tap awaiting its handling kept every fact,
//! renewals included, from the Decider that long. So the fact is put in the signaller's mailbox
//! with `do_send` and the tap goes on to the Decider at once. The ordering still holds:
//!
//! - an actix mailbox is one FIFO queue shared by every sender of the actor's address; `do_send`
//!   pushes the message onto it before returning, whatever the mailbox's capacity (capacity only
//!   parks a sender that uses `send`, and such a `send` is queued after whatever was pushed
//!   before it);
//! - the push happens before the tap hands the fact to the Decider, so before the Decider can
//!   act on it: any `Reload` the Decider sends on account of the fact is pushed after it, and the
//!   signaller handles its mailbox in order (after a held stop: first the fact, then the command);
//! - the signaller runs under a `Supervisor`, which keeps the mailbox across a restart; only a
//!   stopped signaller (no restart) loses the fact, and then no command reaches it either.
//!
//! The facts that wait in the signaller's mailbox during a hold are a few renewals at most
//! (`STOP_GRACE` of them): `do_send` lets them exceed the mailbox's nominal capacity.

use actix::{Actor, AtomicResponse, Context, Handler, Recipient, WrapFuture};
use forge_core::decision::Event;

use crate::messages::Fact;

/// Facts wait here at most as long as at the Decider.
const MAILBOX: usize = 1024;

/// Forwards every [`Fact`] to the Decider, the lease facts to the NodeSignaller first.
pub struct LeaseTap {
    signaller: Recipient<Fact>,
    decider: Recipient<Fact>,
}

impl LeaseTap {
    /// A tap in front of `decider` that shows lease facts to `signaller`.
    pub fn new(signaller: Recipient<Fact>, decider: Recipient<Fact>) -> Self {
        Self { signaller, decider }
    }
}

impl Actor for LeaseTap {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Handler<Fact> for LeaseTap {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, fact: Fact, _ctx: &mut Context<Self>) -> Self::Result {
        let lease = matches!(
            fact.event,
            Event::LeaseAcquired { .. }
                | Event::LeaseRenewed { .. }
                | Event::LeaseLost { .. }
                | Event::TicketsChanged { .. }
        );
        // Enqueued now, before the Decider can see the fact (module docs); not awaited.
        if lease {
            self.signaller.do_send(fact.clone());
        }
        let decider = self.decider.clone();
        AtomicResponse::new(Box::pin(
            async move {
                if let Err(e) = decider.send(fact).await {
                    tracing::error!(error = %e, "fact not delivered to the Decider");
                }
            }
            .into_actor(self),
        ))
    }
}
