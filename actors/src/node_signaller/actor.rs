//! The NodeSignaller's lifecycle. A restart keeps the node identity, the lease deadline and the
//! permit state (actix reuses the struct) but not the guard subscription (its stream belonged
//! to the old context): it is re-established.

use actix::{Actor, AsyncContext, Context, Supervised};

use super::{GUARD_RECONNECT, MAILBOX_CAPACITY, NodeSignaller};

impl Actor for NodeSignaller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.guard.is_some() {
            self.connect_guard(ctx);
            ctx.run_interval(GUARD_RECONNECT, |act, ctx| act.connect_guard(ctx));
        }
    }
}

impl Supervised for NodeSignaller {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        let _ = self.restarts.record();
        if let Some(g) = self.guard.as_mut() {
            g.connected = false;
            g.connecting = false;
            if let Some(reader) = g.reader.take() {
                reader.abort();
            }
            g.pushed.send_modify(|p| p.connected = false);
        }
        self.fencing.set(0);
    }
}
