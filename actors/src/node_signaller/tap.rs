//! LeaseTap: stands between the LeaseElector and the Decider and shows the lease facts to the
//! NodeSignaller first (and quorum mode's ticket standing, whose forge deadline bounds the permit too), so the signaller knows the renew deadline before the Decider can act
//! on it (the permit of a starting reload is bounded by that deadline). Facts keep their order:
//! each is delivered, in full, before the next is taken.

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
        let (signaller, decider) = (self.signaller.clone(), self.decider.clone());
        AtomicResponse::new(Box::pin(
            async move {
                if lease && let Err(e) = signaller.send(fact.clone()).await {
                    tracing::warn!(error = %e, "lease fact not shown to the node signaller");
                }
                if let Err(e) = decider.send(fact).await {
                    tracing::error!(error = %e, "fact not delivered to the Decider");
                }
            }
            .into_actor(self),
        ))
    }
}
