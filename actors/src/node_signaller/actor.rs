//! The NodeSignaller's lifecycle. It holds no connection: a restart keeps the node identity and
//! the pending reload (actix reuses the struct), and only counts the restart.

use actix::{Actor, Context, Supervised};

use super::{MAILBOX_CAPACITY, NodeSignaller};

impl Actor for NodeSignaller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Supervised for NodeSignaller {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // Nothing to wait for before signalling again: signals are local and cheap.
        let _ = self.restarts.record();
    }
}
