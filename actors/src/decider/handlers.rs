//! The Decider's message handlers: facts, rotations, shutdown.

use std::time::Duration;

use actix::{AsyncContext, Context, Handler};
use forge_core::decision::{Command, Event, ReloadReason};

use super::Decider;
use crate::{
    mailbox::Queued,
    messages::{Fact, Shutdown, SourcesRotated},
};

impl Handler<Fact> for Decider {
    type Result = ();

    fn handle(&mut self, fact: Fact, ctx: &mut Context<Self>) {
        match fact.event {
            Event::NodeUp if !self.state.node.up => {
                self.node_up_since = Some(tokio::time::Instant::now());
                self.last_reassert = None;
            }
            Event::NodeDown => self.node_up_since = None,
            Event::NodeFenced if self.current.forge => {
                // L1-a: the decision in force says forging, the node does not: the next plan
                // starts again (claim kept, credentials installed, a fresh permit, a reload).
                tracing::warn!(
                    "the node guard fenced the node while this pod means to forge: starting it again if still the leader"
                );
                self.current.forge = false;
            }
            _ => {}
        }
        tracing::debug!(event = ?fact.event, "fact");
        self.oldest_fact.get_or_insert(fact.observed);
        self.fold(fact.event);
        self.redecide(ctx);
    }
}

impl Handler<Queued<Fact>> for Decider {
    type Result = ();

    fn handle(&mut self, queued: Queued<Fact>, ctx: &mut Context<Self>) {
        <Self as Handler<Fact>>::handle(self, queued.into_inner(), ctx);
    }
}

impl Handler<SourcesRotated> for Decider {
    type Result = ();

    fn handle(&mut self, _: SourcesRotated, ctx: &mut Context<Self>) {
        if !self.current.forge || self.shutting_down {
            return; // a standby installs the current set when it starts forging
        }
        if !self.next_decision().forge {
            // The lease deadline may have passed while this waited (a paused sidecar): the
            // stop plan comes next, and nothing may be installed before it.
            tracing::info!("credentials rotated, but forging is about to stop: not installing them");
            self.redecide(ctx);
            return;
        }
        if self.busy {
            ctx.notify_later(SourcesRotated, Duration::from_millis(100));
            return;
        }
        tracing::info!("credentials rotated while forging: installing the new set and reloading the node");
        self.run(
            vec![
                Command::Install,
                Command::Reload {
                    reason: ReloadReason::Rotation,
                },
            ],
            super::Step::Rotation,
            ctx,
        );
    }
}

impl Handler<Shutdown> for Decider {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.publish();
        self.shutdown_now(ctx);
    }
}
