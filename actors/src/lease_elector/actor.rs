//! The LeaseElector's lifecycle: start (mailbox bound, fact forwarder, deadline timer, then
//! watch and first read, after the restart backoff if any) and restart under a `Supervisor`.

use actix::{Actor, AsyncContext, Context, Supervised};

use super::{ACTOR, Connection, LeaseElector, MAILBOX_CAPACITY};
use crate::messages::{CommandError, CommandFailed};

impl Actor for LeaseElector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        self.start_forwarder();
        // A tenure kept across a restart still ends at its deadline, backoff or not.
        self.arm_deadline(ctx);
        let delay = std::mem::take(&mut self.restart_delay);
        if delay.is_zero() {
            self.connect(ctx);
        } else {
            ctx.run_later(delay, |act, ctx| act.connect(ctx));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::info!(actor = ACTOR, identity = %self.identity, "lease elector stopped");
    }
}

impl Supervised for LeaseElector {
    /// actix reuses this value: forget the connection (observation, call in flight, timers,
    /// which actix has dropped), keep the tenure and what was reported (module docs), and wait
    /// the backoff before reconnecting.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restart_delay = self.restarts.record();
        self.conn = Connection::default();
        self.deadline_timer = None;
        self.answer_releases(Err(CommandFailed::new(
            CommandError::ElectorRestarted,
            "the lease elector restarted before the release was written",
        )));
    }
}
