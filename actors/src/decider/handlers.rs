//! The Decider's message handlers: facts, rotations, shutdown (each becomes a lifecycle input),
//! and the figures other actors send for `/status`.

use actix::{Context, Handler};
use forge_core::decision::Input;

use super::Decider;
use crate::{
    mailbox::Queued,
    messages::{Fact, Shutdown, SourcesRotated, StatusFigures},
};

impl Handler<Fact> for Decider {
    type Result = ();

    fn handle(&mut self, fact: Fact, ctx: &mut Context<Self>) {
        tracing::debug!(event = ?fact.event, "fact");
        self.oldest_fact.get_or_insert(fact.observed);
        self.input(Input::Fact(fact.event), ctx);
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
        self.input(Input::Rotated, ctx);
    }
}

impl Handler<Shutdown> for Decider {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.input(Input::ShutdownRequested, ctx);
    }
}

impl Handler<StatusFigures> for Decider {
    type Result = ();

    fn handle(&mut self, figures: StatusFigures, _: &mut Context<Self>) {
        self.keep_figures(figures);
    }
}
